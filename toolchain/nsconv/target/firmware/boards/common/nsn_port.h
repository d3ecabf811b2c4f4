/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Board port: the few services nsconv firmware needs from a board, implemented per target:
 *   boards/common/nsn_port_cortexm.c  Cortex-M (QEMU MPS2/MPS3 boards, real boards)
 *   boards/host/nsn_port_host.c       host builds (tests)
 *
 * Measuring code:
 *
 *     nsn_port_init();
 *     uint64_t t0 = nsn_port_instr_begin();
 *     work();
 *     uint64_t n = nsn_port_instr_end(t0);   // in nsn_port_count_unit()
 *
 * The count has the cost of an empty begin/end pair subtracted. What it counts depends on
 * the build (see boards/README.md):
 *   NSN_PORT_COUNTER_SYSTICK (default on Cortex-M): QEMU run with -icount shift=6, where
 *       each instruction advances virtual time by 64 ns; SysTick ticks at the board's CPU
 *       clock, so instructions = ticks * (1e9 / f_cpu) / 64. Exact to about +-1 instruction
 *       and repeatable. Meaningless without -icount (wall-clock driven).
 *   NSN_PORT_COUNTER_DWT (real silicon): DWT->CYCCNT cycles (reads 0 in QEMU 7.2).
 *   host: nanoseconds of CLOCK_MONOTONIC.
 * An instruction count is a proxy for cycles; always report which one a figure is.
 */
#ifndef NSN_PORT_H
#define NSN_PORT_H

#include <stdint.h>

/* Exit status of a program stopped by a fault handler (see nsn_fault.c). */
#define NSN_PORT_FAULT_EXIT_STATUS 125

/* Starts the counter; safe to call more than once. */
void nsn_port_init(void);

/* Opaque start value for nsn_port_instr_end. */
uint64_t nsn_port_instr_begin(void);

/* Count since begin, minus the overhead of an empty measurement (never negative). */
uint64_t nsn_port_instr_end(uint64_t begin);

/* "instructions", "cycles" or "ns" */
const char *nsn_port_count_unit(void);

/* Name of the board this was built for, e.g. "mps2-an386". */
const char *nsn_port_board_name(void);

#endif /* NSN_PORT_H */
