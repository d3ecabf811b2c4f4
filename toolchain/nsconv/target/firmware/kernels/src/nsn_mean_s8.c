/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MEAN, int8: TFLM reference_ops::QuantizedMeanOrSum (compute_sum false) over one contiguous
 * run of axes. The sum of each output's inputs, minus zero point * count, rescaled by the
 * multiplier and shift into which nsconv.quant.params.mean_params folded 1 / count. One path:
 * the op is a few hundred additions per call in the models it serves.
 */
#include "nsn_nnfunctions_conv.h"

#include <stddef.h>

nsn_status nsn_mean_s8(const nsn_mean_params *params,
                       int32_t outer,
                       int32_t count,
                       int32_t inner,
                       const int8_t *input,
                       int8_t *output)
{
    int32_t o, i, k;
    if (params == NULL || input == NULL || output == NULL || outer < 1 || count < 1 ||
        inner < 1 || count > NSN_MEAN_MAX_COUNT || params->input_offset < -(1 << 16) ||
        params->input_offset > (1 << 16))
    {
        return NSN_ARG_ERROR;
    }
    for (o = 0; o < outer; ++o)
    {
        const int8_t *base = input + (size_t)o * (size_t)count * (size_t)inner;
        for (i = 0; i < inner; ++i)
        {
            const int8_t *x = base + i;
            int32_t sum = 0;
            int32_t out;
            for (k = 0; k < count; ++k)
            {
                sum += *x;
                x += inner;
            }
            /* TFLM: temp_sum - zero_point * count, in int32 (wrapping) */
            sum = nsn_wrapping_add(sum, (int32_t)((uint32_t)params->input_offset * (uint32_t)count));
            out = nsn_requantize(sum, params->multiplier, params->shift);
            out = nsn_wrapping_add(out, params->output_offset);
            *output++ = (int8_t)nsn_clamp(out, INT8_MIN, INT8_MAX);
        }
    }
    return NSN_OK;
}
