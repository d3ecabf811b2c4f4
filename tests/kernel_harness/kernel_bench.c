/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Micro-benchmark of the nsconv kernels on a board: instructions per call, counted by the port
 * counter under QEMU -icount (see firmware/boards/README.md; a proxy for cycles). Run by
 * tests/test_kernels_arm.py, which parses lines of the form
 *   bench <kernel> <key>=<value> ... instructions=<count>
 * The data are pseudo-random (a fixed LCG): the kernels do not branch on values, so the counts
 * depend only on the shapes and the alignment.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "nsn_nnfunctions.h"
#include "nsn_port.h"

static uint32_t s_seed = 12345u;

static int8_t random_s8(void)
{
    s_seed = s_seed * 1664525u + 1013904223u;
    return (int8_t)(s_seed >> 24);
}

static void fill(int8_t *p, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i)
    {
        p[i] = random_s8();
    }
}

static void *checked_malloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
    {
        printf("out of memory\n");
        exit(1);
    }
    return p;
}

/* s4: the same call with packed 4-bit weights (NSN_FC_S4_ROW_BYTES per row) and
 * nsn_fully_connected_s4; printed as `bench fc_s4 ...`. */
static void bench_fc(int32_t in, int32_t out, int32_t misalign, int32_t input_offset, int s4)
{
    const nsn_fc_dims dims = {in, out};
    const nsn_fc_params params = {input_offset, -3, -128, 127};
    const size_t row_bytes = s4 ? (size_t)NSN_FC_S4_ROW_BYTES(in) : (size_t)in;
    int8_t *weights_block = checked_malloc(row_bytes * (size_t)out + 4u);
    int8_t *weights = weights_block + misalign;
    int8_t *input = checked_malloc((size_t)in);
    int8_t *output = checked_malloc((size_t)out);
    int32_t *bias = checked_malloc((size_t)out * sizeof(int32_t));
    int32_t *multiplier = checked_malloc((size_t)out * sizeof(int32_t));
    int32_t *shift = checked_malloc((size_t)out * sizeof(int32_t));
    const int32_t scratch_size = s4 ? nsn_fully_connected_s4_get_buffer_size(&dims)
                                    : nsn_fully_connected_s8_get_buffer_size(&dims);
    nsn_status (*const fc)(const nsn_context *, const nsn_fc_params *,
                           const nsn_per_channel_quant_params *, const nsn_fc_dims *,
                           const int8_t *, const int8_t *, const int32_t *, int8_t *) =
        s4 ? nsn_fully_connected_s4 : nsn_fully_connected_s8;
    int32_t *scratch = checked_malloc((size_t)scratch_size + 4u);
    const nsn_context ctx = {scratch, scratch_size};
    const nsn_per_channel_quant_params quant = {multiplier, shift};
    int32_t c;
    uint64_t t0, count;
    nsn_status status;

    fill(weights, (int32_t)row_bytes * out);
    fill(input, in);
    for (c = 0; c < out; ++c)
    {
        bias[c] = (int32_t)random_s8() * 1000;
        multiplier[c] = (int32_t)(0x40000000u + ((uint32_t)(uint8_t)random_s8() << 20));
        shift[c] = -9 - (c & 3);
    }
    status = fc(&ctx, &params, &quant, &dims, input, weights, bias, output);
    t0 = nsn_port_instr_begin();
    status |= fc(&ctx, &params, &quant, &dims, input, weights, bias, output);
    count = nsn_port_instr_end(t0);
    printf("bench %s in=%ld out=%ld misalign=%ld input_offset=%ld status=%d instructions=%lu\n",
           s4 ? "fc_s4" : "fc", (long)in, (long)out, (long)misalign, (long)input_offset, (int)status,
           (unsigned long)count);
    free(weights_block);
    free(input);
    free(output);
    free(bias);
    free(multiplier);
    free(shift);
    free(scratch);
}

/* Parameters as qmath computes them for typical GRU tensors. */
static const nsn_add_params k_add = {
    -5, 1073741824, 0, 17, 1518500250, -1, 20, 3, 1686553674, -19, -128, 127};
static const nsn_mul_params k_mul = {128, -3, -128, 1431655765, -7, -128, 127};
static const nsn_requantize_params k_requantize = {7, -2, 1789569707, -1};

static void bench_elementwise(int32_t size)
{
    int8_t *a = checked_malloc((size_t)size);
    int8_t *b = checked_malloc((size_t)size);
    int8_t *y = checked_malloc((size_t)size);
    int8_t table[256];
    const char *names[] = {"add", "sub", "mul", "lut", "requantize", "add_broadcast"};
    int32_t k;
    fill(a, size);
    fill(b, size);
    fill(table, 256);
    for (k = 0; k < 6; ++k)
    {
        int32_t rep;
        uint64_t t0 = 0, count = 0;
        nsn_status status = NSN_OK;
        for (rep = 0; rep < 2; ++rep)
        {
            t0 = nsn_port_instr_begin();
            switch (k)
            {
            case 0:
                status |= nsn_elementwise_add_s8(&k_add, a, size, b, size, y);
                break;
            case 1:
                status |= nsn_elementwise_sub_s8(&k_add, a, size, b, size, y);
                break;
            case 2:
                status |= nsn_elementwise_mul_s8(&k_mul, a, size, b, size, y);
                break;
            case 3:
                status |= nsn_lut_s8(table, a, size, y);
                break;
            case 4:
                status |= nsn_requantize_s8(&k_requantize, a, size, y);
                break;
            default:
                status |= nsn_elementwise_add_s8(&k_add, a, 1, b, size, y);
                break;
            }
            count = nsn_port_instr_end(t0);
        }
        printf("bench %s size=%ld status=%d instructions=%lu\n", names[k], (long)size,
               (int)status, (unsigned long)count);
    }
    free(a);
    free(b);
    free(y);
}

int main(void)
{
    nsn_port_init();
    printf("bench info path=%s board=%s unit=%s\n", NSN_KERNELS_PATH, nsn_port_board_name(),
           nsn_port_count_unit());
    bench_fc(400, 400, 0, 0, 0);
    bench_fc(600, 600, 0, 0, 0);
    bench_fc(161, 400, 0, 0, 0);
    bench_fc(400, 161, 0, 0, 0);
    bench_fc(600, 161, 0, 0, 0);
    bench_fc(400, 600, 0, 0, 0);
    bench_fc(400, 400, 1, 0, 0);
    bench_fc(400, 400, 0, 17, 0);
    bench_fc(400, 400, 0, 0, 1);
    bench_fc(600, 600, 0, 0, 1);
    bench_fc(161, 400, 0, 0, 1);
    bench_fc(400, 161, 0, 0, 1);
    bench_fc(400, 400, 1, 0, 1);
    bench_elementwise(400);
    bench_elementwise(161);
    return 0;
}
