/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cortex-M port: instruction counting under QEMU (SysTick + -icount) or cycle counting on
 * silicon (DWT->CYCCNT), selected at build time; see nsn_port.h and boards/README.md.
 */
#include "nsn_port.h"

#include "nsn_board.h"
#include "nsn_cortexm.h"

#if !defined(NSN_PORT_COUNTER_DWT) && !defined(NSN_PORT_COUNTER_SYSTICK)
#define NSN_PORT_COUNTER_SYSTICK 1
#endif

void SysTick_Handler(void); /* in the vector table (nsn_startup.c) */

static uint64_t s_overhead; /* count of an empty begin/end pair */
static int s_initialised;

const char *nsn_port_board_name(void)
{
    return NSN_BOARD_NAME;
}

#if defined(NSN_PORT_COUNTER_DWT)

/*
 * Real boards: DWT->CYCCNT counts core clock cycles (32 bits: intervals up to 2^32 cycles,
 * about 20 s at 200 MHz). It needs DEMCR.TRCENA; Cortex-M7 also needs the DWT unlocked.
 * QEMU 7.2 implements CYCCNT as always 0.
 */
static uint64_t counter_now(void)
{
    return NSN_DWT_CYCCNT;
}

static uint64_t counter_elapsed(uint64_t begin, uint64_t end)
{
    return (uint32_t)((uint32_t)end - (uint32_t)begin); /* modulo 2^32 */
}

static void counter_start(void)
{
    NSN_SCB_DEMCR |= NSN_DEMCR_TRCENA;
    NSN_DWT_LAR = NSN_DWT_LAR_KEY;
    NSN_DWT_CYCCNT = 0;
    NSN_DWT_CTRL |= NSN_DWT_CTRL_CYCCNTENA;
}

static uint64_t counter_to_count(uint64_t cycles)
{
    return cycles;
}

const char *nsn_port_count_unit(void)
{
    return "cycles";
}

/* In the vector table; SysTick stays off in this configuration. */
void SysTick_Handler(void)
{
}

#else /* SysTick under QEMU -icount */

/*
 * SysTick counts down from 2^24 - 1 at the CPU clock; its wrap interrupt extends it to 64
 * bits. Under -icount shift=6 every instruction advances virtual time by 64 ns, so
 * instructions = ticks * (1e9 / NSN_BOARD_CPU_HZ) / 64 = ticks * 15625000 / NSN_BOARD_CPU_HZ
 * (5/8 at 25 MHz on MPS2; 125/256 at 32 MHz on MPS3 AN547).
 */
static volatile uint32_t s_wraps;

void SysTick_Handler(void)
{
    s_wraps += 1;
}

static uint64_t counter_now(void)
{
    uint32_t high;
    uint32_t low;
    uint32_t pending;
    do
    {
        high = s_wraps;
        low = NSN_SYST_CVR;
        pending = NSN_SCB_ICSR & NSN_ICSR_PENDSTSET;
    } while (high != s_wraps);
    /* Wrapped, but the interrupt has not run yet (QEMU takes it at the next block): a large
     * reading belongs to the next period. Must be called with interrupts enabled. */
    if (pending != 0 && low > NSN_SYST_MAX / 2)
    {
        high += 1;
    }
    return ((uint64_t)high << 24) + (NSN_SYST_MAX - low);
}

static uint64_t counter_elapsed(uint64_t begin, uint64_t end)
{
    return end - begin;
}

static void counter_start(void)
{
    NSN_SYST_CSR = 0;
    NSN_SYST_RVR = NSN_SYST_MAX;
    NSN_SYST_CVR = 0; /* any write clears it; the count restarts from RVR */
    s_wraps = 0;
    NSN_SYST_CSR = NSN_SYST_CSR_ENABLE | NSN_SYST_CSR_TICKINT | NSN_SYST_CSR_CLKSOURCE_CPU;
}

static uint64_t counter_to_count(uint64_t ticks)
{
    return (ticks * 15625000u + NSN_BOARD_CPU_HZ / 2u) / NSN_BOARD_CPU_HZ;
}

const char *nsn_port_count_unit(void)
{
    return "instructions";
}

#endif

void nsn_port_init(void)
{
    uint64_t smallest = UINT64_MAX;
    int i;
    if (s_initialised)
    {
        return;
    }
    counter_start();
    /* Overhead of an empty measurement through the public API: the smallest of a few. */
    s_overhead = 0;
    for (i = 0; i < 4; ++i)
    {
        const uint64_t count = nsn_port_instr_end(nsn_port_instr_begin());
        if (count < smallest)
        {
            smallest = count;
        }
    }
    s_overhead = smallest;
    s_initialised = 1;
}

uint64_t nsn_port_instr_begin(void)
{
    return counter_now();
}

uint64_t nsn_port_instr_end(uint64_t begin)
{
    const uint64_t count = counter_to_count(counter_elapsed(begin, counter_now()));
    return count > s_overhead ? count - s_overhead : 0;
}
