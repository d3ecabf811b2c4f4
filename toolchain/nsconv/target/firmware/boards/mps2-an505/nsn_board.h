/* SPDX-License-Identifier: Apache-2.0 */
/* Board constants for mps2-an505 (cortex-m33); memory placement is in board.ld. */
#ifndef NSN_BOARD_H
#define NSN_BOARD_H

#define NSN_BOARD_NAME "mps2-an505"

/* Clock of SysTick with CLKSOURCE = CPU, as QEMU 7.2 models it (see board.mk). */
#define NSN_BOARD_CPU_HZ 20000000u

#endif /* NSN_BOARD_H */
