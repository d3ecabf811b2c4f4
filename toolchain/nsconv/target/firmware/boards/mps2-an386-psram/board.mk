# SPDX-License-Identifier: Apache-2.0
# MPS2+ AN386: Cortex-M4 with single-precision FPU and DSP extension.
NSN_BOARD_CORE := cortex-m4
NSN_BOARD_CPU_FLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
NSN_QEMU_MACHINE := mps2-an386
NSN_QEMU_CPU := cortex-m4
