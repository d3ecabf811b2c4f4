# SPDX-License-Identifier: Apache-2.0
#
# Flags shared by host and ARM builds of nsconv firmware. Included by host.mk and arm.mk.
#
# Floating point: the front end must give identical bits on the host and on every board, so
#   -ffp-contract=off   no a*b+c fused into an FMA (GCC's default in GNU C modes is "fast";
#                       Cortex-M4/M7/M55 and x86-64 have FMA instructions);
#   -std=c99, float32   FLT_EVAL_METHOD 0 (no x87; x86-64 uses SSE scalar float);
#   no -ffast-math      it reassociates, and on the host links crtfastmath.o (flush to zero).
# NSN_FRONTEND_CFLAGS is added for the front end's sources only: -fno-tree-vectorize keeps
# them scalar, because MVE floating-point instructions (Cortex-M55) use the Arm "standard
# FPSCR value" (flush-to-zero) whereas scalar VFP and SSE keep subnormals.

NSN_FIRMWARE_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)

NSN_CSTD := -std=c99
NSN_WARNINGS := -Wall -Wextra -Werror -Wdouble-promotion -Wshadow -Wstrict-prototypes
NSN_FP_FLAGS := -ffp-contract=off
NSN_OPT ?= -O2

NSN_FRONTEND_DIR := $(NSN_FIRMWARE_DIR)/frontend
NSN_FRONTEND_SRCS := $(NSN_FRONTEND_DIR)/nsn_frontend.c $(NSN_FRONTEND_DIR)/nsn_rfft.c \
                     $(NSN_FRONTEND_DIR)/nsn_frontend_tables.c
NSN_FRONTEND_INCLUDES := -I$(NSN_FRONTEND_DIR)
NSN_FRONTEND_CFLAGS := -fno-tree-vectorize
# GTCRN's front end (nsn_gtcrn_frontend.c) takes a square root: -fno-math-errno makes it the
# one correctly rounded instruction (VSQRT.F32 / SQRTSS) with no libm call; the source refuses
# to compile without it.
NSN_GTCRN_FRONTEND_CFLAGS := $(NSN_FRONTEND_CFLAGS) -fno-math-errno

NSN_PORT_INCLUDES := -I$(NSN_FIRMWARE_DIR)/boards/common
