/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test driver for tests/test_boards.py: links a binary blob the size of the network weights
 * into .rodata (as generated weights would be) and prints where it landed and its FNV-1a
 * checksum, which the test compares with the file's. Build with
 *   -DNSN_WEIGHTS_BIN='"/path/blob.bin"'
 */
#include <stdint.h>
#include <stdio.h>

#ifndef NSN_WEIGHTS_BIN
#error "define NSN_WEIGHTS_BIN as the quoted path of the blob"
#endif

extern const uint8_t nsn_test_weights[];
extern const uint8_t nsn_test_weights_end[];

__asm__(".section .rodata.nsn_test_weights, \"a\", %progbits\n"
        ".balign 16\n"
        ".global nsn_test_weights\n"
        "nsn_test_weights:\n"
        ".incbin \"" NSN_WEIGHTS_BIN "\"\n"
        ".global nsn_test_weights_end\n"
        "nsn_test_weights_end:\n"
        ".text\n");

int main(void)
{
    const uint8_t *p;
    uint32_t hash = 2166136261u;
    for (p = nsn_test_weights; p != nsn_test_weights_end; ++p)
    {
        hash = (hash ^ *p) * 16777619u;
    }
    printf("weights at %p, %lu bytes, fnv1a %08lx\n", (const void *)nsn_test_weights,
           (unsigned long)(nsn_test_weights_end - nsn_test_weights), (unsigned long)hash);
    return 0;
}
