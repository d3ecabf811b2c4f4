/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Element-wise ADD, SUB and MUL on int8, with TFLM's arithmetic (reference_integer_ops AddFunc,
 * SubElementwise, MulElementwise) and broadcasting of a one-element operand (e.g. `1 - z`).
 *
 * This file holds the portable C99 path. Optimized paths (ARM_MATH_DSP, ARM_MATH_MVEI) belong
 * here behind their feature macros, must produce the same bits, and run under the same tests.
 */
#include "nsn_nnfunctions.h"

#include <stddef.h>

/* Output size and per-operand index strides (0 = broadcast); 0 when the sizes do not match. */
static int32_t broadcast(int32_t size1, int32_t size2, int32_t *stride1, int32_t *stride2)
{
    if (size1 < 1 || size2 < 1 || (size1 != size2 && size1 != 1 && size2 != 1))
    {
        return 0;
    }
    *stride1 = (size1 == 1 && size2 != 1) ? 0 : 1;
    *stride2 = (size2 == 1 && size1 != 1) ? 0 : 1;
    return size1 > size2 ? size1 : size2;
}

/* One input of ADD/SUB brought to the common scale: (x + offset) * 2^left_shift * M * 2^S. */
static int32_t rescale_input(
    int8_t x, int32_t offset, int32_t left_shift, int32_t multiplier, int32_t shift)
{
    const int32_t shifted = ((int32_t)x + offset) * (1 << left_shift);
    return nsn_requantize(shifted, multiplier, shift);
}

/* sign = 1 for ADD, -1 for SUB; the rescaled inputs are below 2^29 in magnitude, so neither the
 * product nor the sum can overflow. */
static nsn_status add_sub(const nsn_add_params *p,
                          const int8_t *input1,
                          int32_t size1,
                          const int8_t *input2,
                          int32_t size2,
                          int8_t *output,
                          int32_t sign)
{
    int32_t stride1 = 0;
    int32_t stride2 = 0;
    int32_t size;
    int32_t i;
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL)
    {
        return NSN_ARG_ERROR;
    }
    size = broadcast(size1, size2, &stride1, &stride2);
    if (size == 0)
    {
        return NSN_ARG_ERROR;
    }
    for (i = 0; i < size; ++i)
    {
        const int32_t a = rescale_input(input1[i * stride1], p->input1_offset, p->left_shift,
                                        p->input1_multiplier, p->input1_shift);
        const int32_t b = rescale_input(input2[i * stride2], p->input2_offset, p->left_shift,
                                        p->input2_multiplier, p->input2_shift);
        int32_t out = nsn_requantize(a + sign * b, p->output_multiplier, p->output_shift);
        out += p->output_offset;
        output[i] = (int8_t)nsn_clamp(out, p->activation_min, p->activation_max);
    }
    return NSN_OK;
}

nsn_status nsn_elementwise_add_s8(const nsn_add_params *p,
                                  const int8_t *input1,
                                  int32_t size1,
                                  const int8_t *input2,
                                  int32_t size2,
                                  int8_t *output)
{
    return add_sub(p, input1, size1, input2, size2, output, 1);
}

nsn_status nsn_elementwise_sub_s8(const nsn_add_params *p,
                                  const int8_t *input1,
                                  int32_t size1,
                                  const int8_t *input2,
                                  int32_t size2,
                                  int8_t *output)
{
    return add_sub(p, input1, size1, input2, size2, output, -1);
}

nsn_status nsn_elementwise_mul_s8(const nsn_mul_params *p,
                                  const int8_t *input1,
                                  int32_t size1,
                                  const int8_t *input2,
                                  int32_t size2,
                                  int8_t *output)
{
    int32_t stride1 = 0;
    int32_t stride2 = 0;
    int32_t size;
    int32_t i;
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL)
    {
        return NSN_ARG_ERROR;
    }
    size = broadcast(size1, size2, &stride1, &stride2);
    if (size == 0)
    {
        return NSN_ARG_ERROR;
    }
    for (i = 0; i < size; ++i)
    {
        /* |(x1 + o1) * (x2 + o2)| <= 255 * 255: no overflow before the requantization */
        const int32_t prod = ((int32_t)input1[i * stride1] + p->input1_offset) *
                             ((int32_t)input2[i * stride2] + p->input2_offset);
        int32_t out = nsn_requantize(prod, p->output_multiplier, p->output_shift);
        out = nsn_wrapping_add(out, p->output_offset);
        output[i] = (int8_t)nsn_clamp(out, p->activation_min, p->activation_max);
    }
    return NSN_OK;
}
