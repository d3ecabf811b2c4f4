# SPDX-License-Identifier: Apache-2.0
# MPS2+ AN505: Cortex-M33 (Armv8-M Mainline) with single-precision FPU and DSP extension.
NSN_BOARD_CORE := cortex-m33
NSN_BOARD_CPU_FLAGS := -mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16
NSN_QEMU_MACHINE := mps2-an505
NSN_QEMU_CPU := cortex-m33
