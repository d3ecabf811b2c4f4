# SPDX-License-Identifier: Apache-2.0
#
# Host (x86-64 gcc) build of nsconv firmware sources, for tests:
#   $(NSN_HOST_CC) $(NSN_HOST_CFLAGS) $(includes) $(srcs) $(NSN_HOST_PORT_SRCS) -o prog
# NSN_HOST_SANITIZE_FLAGS adds AddressSanitizer and UBSan (any finding aborts).

include $(dir $(lastword $(MAKEFILE_LIST)))common.mk

NSN_HOST_CC ?= gcc
# SSE scalar float is already the x86-64 default; spelled out because x87 would break
# bit-exactness (and FLT_EVAL_METHOD is checked in nsn_rfft.h).
NSN_HOST_ARCH_FLAGS := $(if $(filter x86_64,$(shell uname -m)),-msse2 -mfpmath=sse)
NSN_HOST_CFLAGS := $(NSN_CSTD) $(NSN_OPT) -g $(NSN_WARNINGS) $(NSN_FP_FLAGS) $(NSN_HOST_ARCH_FLAGS)
NSN_HOST_SANITIZE_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
                           -fno-omit-frame-pointer
NSN_HOST_PORT_SRCS := $(NSN_FIRMWARE_DIR)/boards/host/nsn_port_host.c
NSN_HOST_INCLUDES := $(NSN_PORT_INCLUDES)
