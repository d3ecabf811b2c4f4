# SPDX-License-Identifier: Apache-2.0
#
# Cortex-M build for one board (NSN_BOARD = mps2-an386 | mps2-an500 | mps2-an505 | mps3-an547) and the
# QEMU command that runs it:
#   $(NSN_ARM_CC) $(NSN_ARM_CFLAGS) $(NSN_ARM_INCLUDES) $(srcs) $(NSN_ARM_BOARD_SRCS) \
#       $(NSN_ARM_LDFLAGS) -o prog.elf $(NSN_ARM_LDLIBS)
#   $(NSN_QEMU_RUN) -kernel prog.elf -append "args"
# The board's CPU flags and QEMU machine come from boards/$(NSN_BOARD)/board.mk; they must
# match toolchain/nsconv/boards.py (tests/test_boards.py checks it).

include $(dir $(lastword $(MAKEFILE_LIST)))common.mk

ifeq ($(NSN_BOARD),)
$(error NSN_BOARD is not set (mps2-an386, mps2-an500, mps2-an505 or mps3-an547))
endif
NSN_BOARD_DIR := $(NSN_FIRMWARE_DIR)/boards/$(NSN_BOARD)
ifeq ($(wildcard $(NSN_BOARD_DIR)/board.mk),)
$(error unknown board $(NSN_BOARD): no $(NSN_BOARD_DIR)/board.mk)
endif
include $(NSN_BOARD_DIR)/board.mk

NSN_ARM_CC ?= arm-none-eabi-gcc
NSN_ARM_CFLAGS := $(NSN_CSTD) $(NSN_OPT) -g $(NSN_WARNINGS) $(NSN_FP_FLAGS) \
                  $(NSN_BOARD_CPU_FLAGS) -ffunction-sections -fdata-sections
NSN_ARM_INCLUDES := -I$(NSN_BOARD_DIR) $(NSN_PORT_INCLUDES)
# rdimon: newlib with semihosting syscalls (stdio and fopen on host files, argv, exit status).
NSN_ARM_LDFLAGS := $(NSN_BOARD_CPU_FLAGS) --specs=rdimon.specs \
                   -L$(NSN_FIRMWARE_DIR)/boards/common -T$(NSN_BOARD_DIR)/board.ld \
                   -Wl,--gc-sections
NSN_ARM_LDLIBS := -lc -lrdimon
NSN_ARM_BOARD_SRCS := $(addprefix $(NSN_FIRMWARE_DIR)/boards/common/,\
                      nsn_startup.c nsn_fault.c nsn_semihost.c nsn_port_cortexm.c)

# Instruction counting needs -icount (see boards/README.md); the timeout turns a hang into a
# failure.
NSN_QEMU ?= qemu-system-arm
NSN_QEMU_TIMEOUT ?= 120
NSN_QEMU_RUN := timeout $(NSN_QEMU_TIMEOUT) $(NSN_QEMU) -M $(NSN_QEMU_MACHINE) \
                -cpu $(NSN_QEMU_CPU) -nographic -monitor none \
                -semihosting-config enable=on,target=native -icount shift=6
