# SPDX-License-Identifier: Apache-2.0
# MPS3 AN547: Cortex-M55 with FPU and Helium (MVE integer and float), SSE-300 subsystem.
NSN_BOARD_CORE := cortex-m55
NSN_BOARD_CPU_FLAGS := -mcpu=cortex-m55 -mthumb -mfloat-abi=hard
NSN_QEMU_MACHINE := mps3-an547
NSN_QEMU_CPU := cortex-m55
