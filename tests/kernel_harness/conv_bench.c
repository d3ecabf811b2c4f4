/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Micro-benchmark of the convolution kernels on a board: instructions per call of GTCRN's
 * convolution shapes, counted by the port counter under QEMU -icount. Run by
 * tests/test_kernels_conv_arm.py, which parses lines
 *   bench <kernel> shape=<...> macs=<n> status=<s> instructions=<count>
 * Pseudo-random data: the kernels do not branch on values.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "nsn_nnfunctions_s16.h"
#include "nsn_port.h"

static uint32_t s_seed = 777u;

static int8_t random_s8(void)
{
    s_seed = s_seed * 1664525u + 1013904223u;
    return (int8_t)(s_seed >> 24);
}

static void *filled(size_t n)
{
    int8_t *p = malloc(n > 0 ? n : 1);
    size_t i;
    if (p == NULL)
    {
        printf("out of memory\n");
        exit(1);
    }
    for (i = 0; i < n; ++i)
    {
        p[i] = random_s8();
    }
    return p;
}

/* pad_w: GTCRN's frequency padding folded into the call; groups 0 = depthwise */
static void bench(const char *name, int32_t h, int32_t w, int32_t c, int32_t oc, int32_t kh,
                  int32_t kw, int32_t sw, int32_t dh, int32_t pad_w, int32_t groups)
{
    const int depthwise = groups == 0;
    const int32_t ow = (w + 2 * pad_w - kw) / sw + 1;
    const int32_t oh = h - (kh - 1) * dh;
    const nsn_conv_dims dims = {h, w, c, kh, kw, oh, ow, oc, depthwise ? 1 : groups};
    const nsn_conv_params params = {5, -3, 1, sw, 0, pad_w, dh, 1, -128, 127, NULL};
    const int32_t patch = depthwise ? kh * kw : kh * kw * c / groups;
    const long macs = (long)oh * ow * oc * patch;
    int8_t *input = filled((size_t)(h * w * c));
    int8_t *filter = filled((size_t)(patch * oc));
    int8_t *output = malloc((size_t)(oh * ow * oc));
    int32_t *bias = malloc((size_t)oc * sizeof(int32_t));
    int32_t *mult = malloc((size_t)oc * sizeof(int32_t));
    int32_t *shift = malloc((size_t)oc * sizeof(int32_t));
    const int32_t size = depthwise ? nsn_depthwise_conv_s8_get_buffer_size(&dims)
                                   : nsn_conv_s8_get_buffer_size(&dims);
    int32_t *scratch = malloc((size_t)size + 4u);
    const nsn_context ctx = {scratch, size};
    const nsn_per_channel_quant_params quant = {mult, shift};
    nsn_status status;
    uint64_t t0, count;
    int32_t i;
    for (i = 0; i < oc; ++i)
    {
        bias[i] = (int32_t)random_s8() * 100;
        mult[i] = (int32_t)(0x40000000u + ((uint32_t)(uint8_t)random_s8() << 20));
        shift[i] = -7 - (i & 3);
    }
    t0 = nsn_port_instr_begin();
    status = depthwise
                 ? nsn_depthwise_conv_s8(&ctx, &params, &quant, &dims, input, filter, bias, output)
                 : nsn_conv_s8(&ctx, &params, &quant, &dims, input, filter, bias, output);
    count = nsn_port_instr_end(t0);
    printf("bench %s shape=%ldx%ldx%ld->%ldx%ldx%ld,k%ldx%ld,s%ld,d%ld,g%ld macs=%ld status=%d "
           "instructions=%lu\n",
           name, (long)h, (long)w, (long)c, (long)oh, (long)ow, (long)oc, (long)kh, (long)kw,
           (long)sw, (long)dh, (long)groups, macs, (int)status, (unsigned long)count);
    free(input);
    free(filter);
    free(output);
    free(bias);
    free(mult);
    free(shift);
    free(scratch);
}

/* 16x8 CONV_2D (groups 1) or, with h == w == 1 and kw == 1, FULLY_CONNECTED on one vector */
static void bench16(const char *name, int32_t w, int32_t c, int32_t oc, int32_t kw, int32_t sw,
                    int32_t pad_w, int fc)
{
    const int32_t ow = (w + 2 * pad_w - kw) / sw + 1;
    const nsn_conv_dims dims = {1, w, c, 1, kw, 1, ow, oc, 1};
    const nsn_conv_params params = {0, 0, 1, sw, 0, pad_w, 1, 1, -32768, 32767, NULL};
    const nsn_fc_params fcp = {0, 0, -32768, 32767};
    const nsn_fc_dims fcd = {c, oc};
    const long macs = (long)ow * oc * kw * c;
    int16_t *input = filled((size_t)(w * c) * 2u);
    int8_t *filter = filled((size_t)(kw * c * oc));
    int16_t *output = malloc((size_t)(ow * oc) * 2u);
    int64_t *bias = malloc((size_t)oc * sizeof(int64_t));
    int32_t *mult = malloc((size_t)oc * sizeof(int32_t));
    int32_t *shift = malloc((size_t)oc * sizeof(int32_t));
    const int32_t size = fc ? 0 : nsn_conv_s16_get_buffer_size(&dims);
    int32_t *scratch = malloc((size_t)size + 4u);
    const nsn_context ctx = {scratch, size};
    const nsn_per_channel_quant_params quant = {mult, shift};
    nsn_status status;
    uint64_t t0, count;
    int32_t i;
    for (i = 0; i < oc; ++i)
    {
        bias[i] = (int64_t)random_s8() * 1000;
        mult[i] = (int32_t)(0x40000000u + ((uint32_t)(uint8_t)random_s8() << 20));
        shift[i] = -9 - (i & 3);
    }
    t0 = nsn_port_instr_begin();
    status = fc ? nsn_fully_connected_s16(NULL, &fcp, &quant, &fcd, input, filter, bias, output)
                : nsn_conv_s16(&ctx, &params, &quant, &dims, input, filter, bias, output);
    count = nsn_port_instr_end(t0);
    printf("bench %s shape=1x%ldx%ld->1x%ldx%ld,k1x%ld,s%ld macs=%ld status=%d instructions=%lu\n",
           name, (long)w, (long)c, (long)ow, (long)oc, (long)kw, (long)sw, macs, (int)status,
           (unsigned long)count);
    free(input);
    free(filter);
    free(output);
    free(bias);
    free(mult);
    free(shift);
    free(scratch);
}

/* 16x8 DEPTHWISE_CONV_2D, (3, 3) over h frames with time dilation dh, frequency padding 1 */
static void bench_dw16(int32_t h, int32_t w, int32_t c, int32_t dh)
{
    const int32_t oh = h - 2 * dh;
    const nsn_conv_dims dims = {h, w, c, 3, 3, oh, w, c, 1};
    const nsn_conv_params params = {0, 0, 1, 1, 0, 1, dh, 1, -32768, 32767, NULL};
    const long macs = (long)oh * w * c * 9;
    int16_t *input = filled((size_t)(h * w * c) * 2u);
    int8_t *filter = filled((size_t)(9 * c));
    int16_t *output = malloc((size_t)(oh * w * c) * 2u);
    int64_t *bias = malloc((size_t)c * sizeof(int64_t));
    int32_t *mult = malloc((size_t)c * sizeof(int32_t));
    int32_t *shift = malloc((size_t)c * sizeof(int32_t));
    const nsn_per_channel_quant_params quant = {mult, shift};
    nsn_status status;
    uint64_t t0, count;
    int32_t i;
    for (i = 0; i < c; ++i)
    {
        bias[i] = (int64_t)random_s8() * 1000;
        mult[i] = (int32_t)(0x40000000u + ((uint32_t)(uint8_t)random_s8() << 20));
        shift[i] = -9 - (i & 3);
    }
    t0 = nsn_port_instr_begin();
    status = nsn_depthwise_conv_s16(NULL, &params, &quant, &dims, input, filter, bias, output);
    count = nsn_port_instr_end(t0);
    printf("bench depthwise16 shape=%ldx%ldx%ld->%ldx%ldx%ld,k3x3,d%ld macs=%ld status=%d "
           "instructions=%lu\n",
           (long)h, (long)w, (long)c, (long)oh, (long)w, (long)c, (long)dh, macs, (int)status,
           (unsigned long)count);
    free(input);
    free(filter);
    free(output);
    free(bias);
    free(mult);
    free(shift);
}

int main(void)
{
    nsn_port_init();
    printf("bench info path=%s board=%s unit=%s\n", NSN_KERNELS_PATH, nsn_port_board_name(),
           nsn_port_count_unit());
    bench("conv", 1, 129, 9, 16, 1, 5, 2, 1, 2, 1);   /* encoder conv 1 */
    bench("conv", 1, 65, 16, 16, 1, 5, 2, 1, 2, 2);   /* encoder conv 2, 2 groups */
    bench("conv", 1, 33, 24, 16, 1, 1, 1, 1, 0, 1);   /* GTConvBlock pointwise in */
    bench("conv", 1, 33, 16, 8, 1, 1, 1, 1, 0, 1);    /* GTConvBlock pointwise out */
    bench("conv", 1, 69, 16, 16, 1, 5, 1, 1, 0, 2);   /* decoder grouped */
    bench("conv", 1, 133, 16, 2, 1, 5, 1, 1, 0, 1);   /* decoder last */
    bench("depthwise", 3, 33, 16, 16, 3, 3, 1, 1, 1, 0);  /* dilation 1 */
    bench("depthwise", 5, 33, 16, 16, 3, 3, 1, 2, 1, 0);  /* dilation 2 */
    bench("depthwise", 11, 33, 16, 16, 3, 3, 1, 5, 1, 0); /* dilation 5 */
    bench16("conv16", 129, 9, 16, 5, 2, 2, 0);   /* encoder conv 1, int16 */
    bench16("conv16", 65, 8, 8, 5, 2, 2, 0);     /* encoder conv 2 (one group's half), int16 */
    bench16("conv16", 3, 192, 64, 1, 1, 0, 0);   /* the ERB band FC, 3 rows, int16 */
    bench16("conv16", 33, 8, 16, 3, 1, 1, 0);    /* SFE + pointwise (1, 3), int16 */
    bench16("conv16", 33, 16, 8, 1, 1, 0, 0);    /* pointwise out, int16 */
    bench16("conv16", 33, 16, 48, 1, 1, 0, 0);   /* a batched GRU gate FC (33 rows) */
    bench16("fc16", 1, 16, 48, 1, 1, 0, 1);      /* a GRU hidden-state FC, one vector */
    bench_dw16(3, 33, 16, 1);
    bench_dw16(11, 33, 16, 5);
    return 0;
}
