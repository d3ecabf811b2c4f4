/* SPDX-License-Identifier: Apache-2.0 */
/*
 * int16 element-wise ops, TFLM reference semantics: ADD and SUB (inputs offset, shifted left by
 * 15, rescaled, summed, rescaled), MUL, QUANTIZE (Requantize) between int8 and int16, MEAN and
 * LEAKY_RELU (int8 and int16). Portable C on every core.
 */
#include "nsn_nnfunctions_s16.h"

#include <stddef.h>

#include "nsn_s16_internal.h"

/* The broadcast rule of the int8 kernels: equal sizes, or one side of size 1. */
static int sizes_ok(const void *a, int32_t n1, const void *b, int32_t n2, const void *out)
{
    return a != NULL && b != NULL && out != NULL && n1 >= 1 && n2 >= 1 &&
           (n1 == n2 || n1 == 1 || n2 == 1);
}

static int32_t add_one(const nsn_add_params *p, int32_t x1, int32_t x2, int32_t sign)
{
    const int32_t s1 = nsn_requantize((int32_t)((uint32_t)(x1 + p->input1_offset) << p->left_shift),
                                      p->input1_multiplier, p->input1_shift);
    const int32_t s2 = nsn_requantize((int32_t)((uint32_t)(x2 + p->input2_offset) << p->left_shift),
                                      p->input2_multiplier, p->input2_shift);
    const int32_t raw = sign > 0 ? nsn_wrapping_add(s1, s2) : nsn_wrapping_add(s1, -s2);
    int32_t out = nsn_requantize(raw, p->output_multiplier, p->output_shift);
    out = nsn_clamp(nsn_wrapping_add(out, p->output_offset), p->activation_min, p->activation_max);
    return nsn_clamp(out, INT16_MIN, INT16_MAX);
}

static nsn_status add_sub_s16(const nsn_add_params *p, const int16_t *in1, int32_t n1,
                              const int16_t *in2, int32_t n2, int16_t *out, int32_t sign)
{
    const int32_t n = n1 > n2 ? n1 : n2;
    int32_t i;
    if (p == NULL || !sizes_ok(in1, n1, in2, n2, out) || p->left_shift < 0 || p->left_shift > 16)
    {
        return NSN_ARG_ERROR;
    }
    for (i = 0; i < n; ++i)
    {
        out[i] = (int16_t)add_one(p, in1[n1 == 1 ? 0 : i], in2[n2 == 1 ? 0 : i], sign);
    }
    return NSN_OK;
}

nsn_status nsn_elementwise_add_s16(const nsn_add_params *p, const int16_t *input1, int32_t size1,
                                   const int16_t *input2, int32_t size2, int16_t *output)
{
    return add_sub_s16(p, input1, size1, input2, size2, output, 1);
}

nsn_status nsn_elementwise_sub_s16(const nsn_add_params *p, const int16_t *input1, int32_t size1,
                                   const int16_t *input2, int32_t size2, int16_t *output)
{
    return add_sub_s16(p, input1, size1, input2, size2, output, -1);
}

nsn_status nsn_elementwise_mul_s16(const nsn_mul_params *p, const int16_t *input1, int32_t size1,
                                   const int16_t *input2, int32_t size2, int16_t *output)
{
    const int32_t n = size1 > size2 ? size1 : size2;
    int32_t i;
    if (p == NULL || !sizes_ok(input1, size1, input2, size2, output) ||
        p->input1_offset < -65536 || p->input1_offset > 65536 || p->input2_offset < -65536 ||
        p->input2_offset > 65536)
    {
        return NSN_ARG_ERROR;
    }
    for (i = 0; i < n; ++i)
    {
        const int32_t a = input1[size1 == 1 ? 0 : i] + p->input1_offset;
        const int32_t b = input2[size2 == 1 ? 0 : i] + p->input2_offset;
        const int32_t prod = (int32_t)((uint32_t)a * (uint32_t)b);
        int32_t out = nsn_requantize(prod, p->output_multiplier, p->output_shift);
        out = nsn_wrapping_add(out, p->output_offset);
        output[i] = (int16_t)nsn_clamp(out, p->activation_min, p->activation_max);
    }
    return NSN_OK;
}

static int32_t requantize_one(const nsn_requantize_params *p, int32_t x)
{
    return nsn_wrapping_add(nsn_requantize(x + p->input_offset, p->multiplier, p->shift),
                            p->output_offset);
}

#define REQUANTIZE_CHECK(P, IN, OUT, SIZE)                                                     \
    if ((P) == NULL || (IN) == NULL || (OUT) == NULL || (SIZE) < 0 ||                          \
        (P)->input_offset < -65536 || (P)->input_offset > 65536)                               \
    {                                                                                          \
        return NSN_ARG_ERROR;                                                                  \
    }

nsn_status nsn_requantize_s8_s16(const nsn_requantize_params *p, const int8_t *input, int32_t size,
                                 int16_t *output)
{
    int32_t i;
    REQUANTIZE_CHECK(p, input, output, size)
    for (i = 0; i < size; ++i)
    {
        output[i] = (int16_t)nsn_clamp(requantize_one(p, input[i]), INT16_MIN, INT16_MAX);
    }
    return NSN_OK;
}

nsn_status nsn_requantize_s16_s8(const nsn_requantize_params *p, const int16_t *input,
                                 int32_t size, int8_t *output)
{
    int32_t i;
    REQUANTIZE_CHECK(p, input, output, size)
    for (i = 0; i < size; ++i)
    {
        output[i] = (int8_t)nsn_clamp(requantize_one(p, input[i]), INT8_MIN, INT8_MAX);
    }
    return NSN_OK;
}

nsn_status nsn_requantize_s16(const nsn_requantize_params *p, const int16_t *input, int32_t size,
                              int16_t *output)
{
    int32_t i;
    REQUANTIZE_CHECK(p, input, output, size)
    for (i = 0; i < size; ++i)
    {
        output[i] = (int16_t)nsn_clamp(requantize_one(p, input[i]), INT16_MIN, INT16_MAX);
    }
    return NSN_OK;
}

nsn_status nsn_mean_s16(const nsn_mean_params *params, int32_t outer, int32_t count,
                        int32_t inner, const int16_t *input, int16_t *output)
{
    int32_t o, i, k;
    if (params == NULL || input == NULL || output == NULL || outer < 1 || count < 1 ||
        inner < 1 || count > (1 << 15) || params->input_offset < -(1 << 16) ||
        params->input_offset > (1 << 16))
    {
        return NSN_ARG_ERROR;
    }
    for (o = 0; o < outer; ++o)
    {
        const int16_t *base = input + (size_t)o * (size_t)count * (size_t)inner;
        for (i = 0; i < inner; ++i)
        {
            int32_t sum = 0, out;
            for (k = 0; k < count; ++k)
            {
                sum += base[(size_t)k * (size_t)inner + (size_t)i];
            }
            sum = nsn_wrapping_add(sum, (int32_t)((uint32_t)params->input_offset * (uint32_t)count));
            out = nsn_wrapping_add(nsn_requantize(sum, params->multiplier, params->shift),
                                   params->output_offset);
            *output++ = (int16_t)nsn_clamp(out, INT16_MIN, INT16_MAX);
        }
    }
    return NSN_OK;
}

static int32_t leaky_one(const nsn_leaky_relu_params *p, int32_t x)
{
    const int32_t v = x - p->input_zero_point;
    const int32_t r = v >= 0 ? nsn_requantize(v, p->multiplier_identity, p->shift_identity)
                             : nsn_requantize(v, p->multiplier_alpha, p->shift_alpha);
    return nsn_wrapping_add(r, p->output_zero_point);
}

nsn_status nsn_leaky_relu_s8(const nsn_leaky_relu_params *p, const int8_t *input, int32_t size,
                             int8_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL || size < 0)
    {
        return NSN_ARG_ERROR;
    }
    for (i = 0; i < size; ++i)
    {
        output[i] = (int8_t)nsn_clamp(leaky_one(p, input[i]), INT8_MIN, INT8_MAX);
    }
    return NSN_OK;
}

nsn_status nsn_leaky_relu_s16(const nsn_leaky_relu_params *p, const int16_t *input, int32_t size,
                              int16_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL || size < 0 || p->input_zero_point < -65536 ||
        p->input_zero_point > 65536)
    {
        return NSN_ARG_ERROR;
    }
    for (i = 0; i < size; ++i)
    {
        output[i] = (int16_t)nsn_clamp(leaky_one(p, input[i]), INT16_MIN, INT16_MAX);
    }
    return NSN_OK;
}
