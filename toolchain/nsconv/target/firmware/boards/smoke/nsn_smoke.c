/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Board smoke test, run in QEMU by tests/test_boards.py:
 *   nsn_smoke hello        prints the board and the memory layout, exits 0
 *   nsn_smoke file PATH    reads a host file through semihosting, prints its size and a checksum
 *   nsn_smoke count N      counts a loop of exactly 2*N instructions, twice
 *   nsn_smoke fault-bus    loads from an unmapped address: BusFault
 *   nsn_smoke fault-udf    executes a permanently undefined instruction: UsageFault
 *   nsn_smoke fault-div0   integer division by zero (trapped): UsageFault
 *   nsn_smoke exit N       exits with status N
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsn_port.h"

extern const char __stack;
extern const char __end__;
extern const char __data_start__;
extern const char __data_load__;

/* An address with nothing mapped on any of the three boards (QEMU raises a bus error). */
#define UNMAPPED_ADDRESS 0xF0000000u

static const uint8_t k_const_table[1024] = {1, 2, 3};

/* Exactly 2 * n instructions (n >= 1): SUBS and BNE per iteration. */
static void known_loop(uint32_t n)
{
    __asm__ volatile("1:\n"
                     "subs %0, %0, #1\n"
                     "bne 1b\n"
                     : "+r"(n)
                     :
                     : "cc");
}

static int cmd_hello(void)
{
    printf("hello from %s\n", nsn_port_board_name());
    printf("const at %p, data at %p (loaded from %p), heap from %p, stack top %p\n",
           (const void *)k_const_table, (const void *)&__data_start__, (const void *)&__data_load__,
           (const void *)&__end__, (const void *)&__stack);
    return 0;
}

static int cmd_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned long size = 0;
    uint32_t sum = 0;
    int c;
    if (f == NULL)
    {
        printf("cannot open %s\n", path);
        return 1;
    }
    while ((c = fgetc(f)) != EOF)
    {
        sum = sum * 31u + (uint32_t)c;
        size += 1;
    }
    fclose(f);
    printf("file %s: %lu bytes, checksum %08lx\n", path, size, (unsigned long)sum);
    return 0;
}

static int cmd_count(uint32_t n)
{
    int i;
    nsn_port_init();
    for (i = 0; i < 2; ++i)
    {
        const uint64_t begin = nsn_port_instr_begin();
        known_loop(n);
        printf("count %lu %s for %lu\n", (unsigned long)nsn_port_instr_end(begin),
               nsn_port_count_unit(), (unsigned long)(2u * n));
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc >= 2 ? argv[1] : "hello";
    if (strcmp(cmd, "hello") == 0)
    {
        return cmd_hello();
    }
    if (strcmp(cmd, "file") == 0 && argc == 3)
    {
        return cmd_file(argv[2]);
    }
    if (strcmp(cmd, "count") == 0 && argc == 3)
    {
        return cmd_count((uint32_t)strtoul(argv[2], NULL, 10));
    }
    if (strcmp(cmd, "fault-bus") == 0)
    {
        printf("reading %08x\n", UNMAPPED_ADDRESS);
        fflush(stdout);
        return (int)*(volatile uint32_t *)(uintptr_t)UNMAPPED_ADDRESS;
    }
    if (strcmp(cmd, "fault-udf") == 0)
    {
        __asm__ volatile("udf #0");
        return 0;
    }
    if (strcmp(cmd, "fault-div0") == 0)
    {
        volatile int zero = 0;
        return 100 / zero;
    }
    if (strcmp(cmd, "exit") == 0 && argc == 3)
    {
        exit(atoi(argv[2]));
    }
    printf("usage: nsn_smoke hello|file PATH|count N|fault-bus|fault-udf|fault-div0|exit N\n");
    return 2;
}
