/* SPDX-License-Identifier: Apache-2.0 */
/*
 * int8 -> int8 QUANTIZE: TFLM reference_ops::Requantize. Used where a tensor must change scale
 * and zero point, e.g. a GRU state output fed back as the next step's state input.
 *
 * This file holds the portable C99 path. Optimized paths (ARM_MATH_DSP, ARM_MATH_MVEI) belong
 * here behind their feature macros, must produce the same bits, and run under the same tests.
 */
#include "nsn_nnfunctions.h"

#include <stddef.h>

nsn_status nsn_requantize_s8(const nsn_requantize_params *p,
                             const int8_t *input,
                             int32_t size,
                             int8_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL || size < 0)
    {
        return NSN_ARG_ERROR;
    }
    for (i = 0; i < size; ++i)
    {
        int32_t out = nsn_requantize((int32_t)input[i] + p->input_offset, p->multiplier, p->shift);
        out = nsn_wrapping_add(out, p->output_offset);
        output[i] = (int8_t)nsn_clamp(out, INT8_MIN, INT8_MAX);
    }
    return NSN_OK;
}
