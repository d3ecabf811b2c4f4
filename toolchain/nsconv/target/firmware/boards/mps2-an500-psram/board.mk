# SPDX-License-Identifier: Apache-2.0
# MPS2+ AN500: Cortex-M7 with double-precision FPU.
NSN_BOARD_CORE := cortex-m7
NSN_BOARD_CPU_FLAGS := -mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16
NSN_QEMU_MACHINE := mps2-an500
NSN_QEMU_CPU := cortex-m7
