/* SPDX-License-Identifier: Apache-2.0 */
/* Board constants for mps2-an386 (cortex-m4); memory placement is in board.ld. */
#ifndef NSN_BOARD_H
#define NSN_BOARD_H

#define NSN_BOARD_NAME "mps2-an386-psram"

/* Clock of SysTick with CLKSOURCE = CPU, as QEMU 7.2 models it (see board.mk). */
#define NSN_BOARD_CPU_HZ 25000000u

#endif /* NSN_BOARD_H */
