/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Contract of the streaming API (firmware/app/nsn_stream.h), built for the host against an
 * exported project by tests/test_firmware.py. Prints "stream api ok" and exits 0, or names
 * the first broken promise and exits 1.
 */
#include <stdio.h>
#include <string.h>

#include "nsn_stream.h"

#define CHECK(cond)                                                                                \
    do                                                                                             \
    {                                                                                              \
        if (!(cond))                                                                               \
        {                                                                                          \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                             \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static nsn_stream_t g_stream;
static nsn_stream_t g_copy;

static int all_zero(const int16_t *x, int n)
{
    int i;
    for (i = 0; i < n; ++i)
    {
        if (x[i] != 0)
        {
            return 0;
        }
    }
    return 1;
}

int main(void)
{
    int16_t in[NSN_STREAM_HOP];
    int16_t out[NSN_STREAM_HOP];
    int16_t first[NSN_STREAM_HOP];
    const int last = NSN_NUM_EXITS - 1;
    int i;

    for (i = 0; i < NSN_STREAM_HOP; ++i)
    {
        /* a loud, varied signal: a sawtooth with some odd harmonics */
        in[i] = (int16_t)((i * 397) % 20000 - 10000 + (i % 7) * 900);
    }

    CHECK(nsn_stream_init(NULL) == NSN_STREAM_ERR_ARGUMENT);
    CHECK(nsn_stream_init(&g_stream) == NSN_STREAM_OK);
    CHECK(g_stream.steps == 0 && g_stream.last_exit == -1);

    /* exit names */
    CHECK(nsn_stream_exit_id(nsn_exit_names[0]) == 0);
    CHECK(nsn_stream_exit_id(nsn_exit_names[last]) == last);
    CHECK(nsn_stream_exit_id("no-such-exit") == -1);
    CHECK(nsn_stream_exit_id(NULL) == -1);

    /* bad arguments change nothing */
    memcpy(&g_copy, &g_stream, sizeof g_copy);
    CHECK(nsn_stream_process(&g_stream, in, -1, out) == NSN_STREAM_ERR_ARGUMENT);
    CHECK(nsn_stream_process(&g_stream, in, NSN_NUM_EXITS, out) == NSN_STREAM_ERR_ARGUMENT);
    CHECK(nsn_stream_process(&g_stream, NULL, 0, out) == NSN_STREAM_ERR_ARGUMENT);
    CHECK(nsn_stream_process(&g_stream, in, 0, NULL) == NSN_STREAM_ERR_ARGUMENT);
    CHECK(nsn_stream_process(NULL, in, 0, out) == NSN_STREAM_ERR_ARGUMENT);
    CHECK(memcmp(&g_copy, &g_stream, sizeof g_copy) == 0);

    /* the first call primes: no network step, zeros out */
    memset(out, 0x55, sizeof out);
    CHECK(nsn_stream_process(&g_stream, in, last, out) == NSN_STREAM_PRIMING);
    CHECK(all_zero(out, NSN_STREAM_HOP));
    CHECK(g_stream.steps == 0 && g_stream.counts.network == 0);

    /* then one network step per call, at the exit asked for */
    CHECK(nsn_stream_process(&g_stream, in, 0, out) == NSN_STREAM_OK);
    CHECK(g_stream.steps == 1 && g_stream.last_exit == 0);
    CHECK(!all_zero(out, NSN_STREAM_HOP));
    memcpy(first, out, sizeof first);
    CHECK(nsn_stream_process(&g_stream, in, last, out) == NSN_STREAM_OK);
    CHECK(g_stream.steps == 2 && g_stream.last_exit == last);

    /* flush gives the overlap-add tail once, then zeros */
    nsn_stream_flush(&g_stream, out);
    CHECK(!all_zero(out, NSN_STREAM_HOP));
    nsn_stream_flush(&g_stream, out);
    CHECK(all_zero(out, NSN_STREAM_HOP));
    nsn_stream_flush(NULL, out);
    nsn_stream_flush(&g_stream, NULL);

    /* reset starts a new recording: the same input gives the same output again */
    CHECK(nsn_stream_reset(&g_stream) == NSN_STREAM_OK);
    CHECK(g_stream.steps == 0 && g_stream.last_exit == -1);
    CHECK(nsn_stream_process(&g_stream, in, last, out) == NSN_STREAM_PRIMING);
    CHECK(nsn_stream_process(&g_stream, in, 0, out) == NSN_STREAM_OK);
    CHECK(memcmp(out, first, sizeof first) == 0);

    printf("stream api ok\n");
    return 0;
}
