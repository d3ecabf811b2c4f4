/* SPDX-License-Identifier: Apache-2.0 */
/* Host port (tests): the counter is CLOCK_MONOTONIC in nanoseconds. */
#define _POSIX_C_SOURCE 199309L

#include <time.h>

#include "nsn_port.h"

static uint64_t s_overhead;
static int s_initialised;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void nsn_port_init(void)
{
    if (!s_initialised)
    {
        const uint64_t t0 = now_ns();
        s_overhead = now_ns() - t0;
        s_initialised = 1;
    }
}

uint64_t nsn_port_instr_begin(void)
{
    return now_ns();
}

uint64_t nsn_port_instr_end(uint64_t begin)
{
    const uint64_t elapsed = now_ns() - begin;
    return elapsed > s_overhead ? elapsed - s_overhead : 0;
}

const char *nsn_port_count_unit(void)
{
    return "ns";
}

const char *nsn_port_board_name(void)
{
    return "host";
}
