# SPDX-License-Identifier: Apache-2.0
#
# Builds one small program for the host or a board, and runs it (QEMU for boards):
#
#   make -f firmware/mk/program.mk NSN_TARGET=host|<board> OUT=dir PROG=name \
#        SRCS="a.c b.c" [INCLUDES="-Idir"] [EXTRA_CFLAGS=...] [SANITIZE=1] [all|run ARGS=...]
#
# Output: $(OUT)/$(PROG) for the host, $(OUT)/$(PROG).elf for a board. `make ... print-VAR`
# prints a variable (tests use it to compare flags with toolchain/nsconv/boards.py).

NSN_TARGET ?= host
OUT ?= build/$(NSN_TARGET)
PROG ?= prog
SRCS ?=
INCLUDES ?=
EXTRA_CFLAGS ?=
ARGS ?=

ifeq ($(NSN_TARGET),host)
include $(dir $(lastword $(MAKEFILE_LIST)))host.mk
NSN_PROGRAM := $(OUT)/$(PROG)
NSN_PROGRAM_CFLAGS := $(NSN_HOST_CFLAGS) $(if $(SANITIZE),$(NSN_HOST_SANITIZE_FLAGS))
$(NSN_PROGRAM): $(SRCS) $(NSN_HOST_PORT_SRCS)
	@mkdir -p $(OUT)
	$(NSN_HOST_CC) $(NSN_PROGRAM_CFLAGS) $(EXTRA_CFLAGS) $(INCLUDES) $(NSN_HOST_INCLUDES) \
	    $^ -o $@
run: $(NSN_PROGRAM)
	$(NSN_PROGRAM) $(ARGS)
else
NSN_BOARD := $(NSN_TARGET)
include $(dir $(lastword $(MAKEFILE_LIST)))arm.mk
NSN_PROGRAM := $(OUT)/$(PROG).elf
$(NSN_PROGRAM): $(SRCS) $(NSN_ARM_BOARD_SRCS)
	@mkdir -p $(OUT)
	$(NSN_ARM_CC) $(NSN_ARM_CFLAGS) $(EXTRA_CFLAGS) $(INCLUDES) $(NSN_ARM_INCLUDES) $^ \
	    $(NSN_ARM_LDFLAGS) -Wl,-Map=$(OUT)/$(PROG).map -o $@ $(NSN_ARM_LDLIBS)
run: $(NSN_PROGRAM)
	$(NSN_QEMU_RUN) -kernel $(NSN_PROGRAM) $(if $(ARGS),-append "$(ARGS)")
endif

all: $(NSN_PROGRAM)
.DEFAULT_GOAL := all
.PHONY: all run

print-%:
	@echo '$($*)'
