/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cortex-M start-up shared by all boards: the vector table and Reset_Handler, which enables
 * the FPU/MVE, sets up memory and runs main with newlib's semihosting (librdimon) stdio.
 *
 * This replaces rdimon-crt0's _start on purpose: _start asks the debugger for the heap and
 * stack (SYS_HEAPINFO) and moves the stack pointer there, and QEMU 7.2 answers with its own
 * guess (mps2: top of the 16 MB PSRAM; mps3-an547: top of the 512 KB ITCM, with a heap
 * limit below our RAM, so every malloc fails). The linker script is the single source of
 * the memory layout instead; the rest of what _start does is repeated here.
 *
 * The board's linker script supplies the memory placement. See boards/README.md.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nsn_cortexm.h"
#include "nsn_semihost.h"

/* Linker script symbols */
extern uint32_t __stack;        /* initial stack pointer: top of the RAM region */
extern uint32_t __stack_limit;  /* lowest address the stack may use */
extern uint32_t __data_start__; /* .data in RAM */
extern uint32_t __data_end__;
extern uint32_t __data_load__; /* .data image in the code/const region */
extern uint32_t __bss_start__;
extern uint32_t __bss_end__;

/* newlib: librdimon (semihosting syscalls) and libc */
extern unsigned int __heap_limit; /* _sbrk refuses to grow the heap past it */
extern void initialise_monitor_handles(void);
extern void __libc_init_array(void);
extern void __libc_fini_array(void);
extern int main(int argc, char **argv);

#define MAX_ARGS 16
static char s_command_line[256];
static char *s_argv[MAX_ARGS + 1];

void Reset_Handler(void) __attribute__((naked, noreturn));
void nsn_reset_continue(void) __attribute__((noreturn, used));
void nsn_fault_entry(void); /* nsn_fault.c */
void SysTick_Handler(void); /* nsn_port_cortexm.c */

typedef union
{
    const void *stack_top;
    void (*handler)(void);
} nsn_vector;

/*
 * System exceptions only: nsconv enables no device interrupt, so the IRQ part of the table
 * is never read. Every fault and unexpected exception goes to nsn_fault_entry, which reports
 * it over semihosting and exits with NSN_PORT_FAULT_EXIT_STATUS.
 */
__attribute__((section(".vectors"), used)) const nsn_vector nsn_vector_table[16] = {
    {.stack_top = &__stack},
    {.handler = Reset_Handler},
    {.handler = nsn_fault_entry}, /* 2 NMI */
    {.handler = nsn_fault_entry}, /* 3 HardFault */
    {.handler = nsn_fault_entry}, /* 4 MemManage */
    {.handler = nsn_fault_entry}, /* 5 BusFault */
    {.handler = nsn_fault_entry}, /* 6 UsageFault */
    {.handler = nsn_fault_entry}, /* 7 SecureFault (ARMv8-M) */
    {.handler = 0},               /* 8-10 reserved */
    {.handler = 0},
    {.handler = 0},
    {.handler = nsn_fault_entry}, /* 11 SVCall */
    {.handler = nsn_fault_entry}, /* 12 DebugMonitor */
    {.handler = 0},               /* 13 reserved */
    {.handler = nsn_fault_entry}, /* 14 PendSV */
    {.handler = SysTick_Handler}, /* 15 SysTick: instruction counter wrap */
};

/*
 * First code after reset. The FPU (and on Cortex-M55 the MVE, which shares CP10/CP11) must
 * be enabled before any compiled C code runs, since the compiler may use FP/vector registers
 * anywhere, so this part is assembly.
 */
void Reset_Handler(void)
{
    __asm__ volatile("ldr r0, =0xE000ED88\n" /* CPACR */
                     "ldr r1, [r0]\n"
                     "orr r1, r1, #(0xF << 20)\n" /* CP10, CP11: full access */
                     "str r1, [r0]\n"
                     "dsb\n"
                     "isb\n"
                     "b nsn_reset_continue\n");
}

/* Splits the debugger's command line (program name first) at spaces; no quoting. */
static int split_command_line(char *line, char **argv, int max_args)
{
    int argc = 0;
    while (*line != '\0' && argc < max_args)
    {
        while (*line == ' ')
        {
            *line++ = '\0';
        }
        if (*line == '\0')
        {
            break;
        }
        argv[argc++] = line;
        while (*line != '\0' && *line != ' ')
        {
            ++line;
        }
    }
    argv[argc] = 0;
    return argc;
}

void nsn_reset_continue(void)
{
    const size_t data_bytes = (size_t)((uintptr_t)&__data_end__ - (uintptr_t)&__data_start__);
    const size_t bss_bytes = (size_t)((uintptr_t)&__bss_end__ - (uintptr_t)&__bss_start__);
    int argc;

    NSN_SCB_VTOR = (uint32_t)(uintptr_t)nsn_vector_table;

#if NSN_ARMV8M_MAIN
    /* Hardware stack limit: overflowing the stack raises a UsageFault (STKOF). */
    __asm__ volatile("msr msplim, %0" : : "r"(&__stack_limit));
#endif

    /* .data is loaded with the image into the code/const region (as from flash on a real
     * board) and copied to RAM here. */
    if (&__data_load__ != &__data_start__)
    {
        memcpy(&__data_start__, &__data_load__, data_bytes);
    }
    memset(&__bss_start__, 0, bss_bytes);
    __heap_limit = (unsigned int)(uintptr_t)&__stack_limit;

    /* Report MemManage, BusFault and UsageFault by name instead of escalating to HardFault,
     * and make integer division by zero fault instead of returning 0. */
    NSN_SCB_SHCSR |= NSN_SHCSR_MEMFAULTENA | NSN_SHCSR_BUSFAULTENA | NSN_SHCSR_USGFAULTENA;
#if NSN_ARMV8M_MAIN
    NSN_SCB_SHCSR |= NSN_SHCSR_SECUREFAULTENA;
#endif
    NSN_SCB_CCR |= NSN_CCR_DIV_0_TRP;
    __asm__ volatile("dsb\n isb" ::: "memory");

    initialise_monitor_handles(); /* stdin, stdout, stderr on the debugger console */
    argc = 0;
    if (nsn_semihost_get_cmdline(s_command_line, sizeof s_command_line) == 0)
    {
        argc = split_command_line(s_command_line, s_argv, MAX_ARGS);
    }
    atexit(__libc_fini_array);
    __libc_init_array();
    exit(main(argc, s_argv));
}
