/* SPDX-License-Identifier: Apache-2.0 */
/*
 * FULLY_CONNECTED, int8 activations and weights, int32 bias, per-channel requantization:
 * TFLM reference_integer_ops::FullyConnectedPerChannel for one input vector.
 *
 * This file holds the portable C99 path. Optimized paths (ARM_MATH_DSP, ARM_MATH_MVEI) belong
 * here behind their feature macros, must produce the same bits, and run under the same tests.
 */
#include "nsn_nnfunctions.h"

#include <stddef.h>

/* sum_i w[i] * (x[i] + input_offset); NSN_FC_MAX_INPUT_FEATURES keeps it inside int32. */
static int32_t dot_s8(const int8_t *row, const int8_t *input, int32_t input_offset, int32_t n)
{
    int32_t acc = 0;
    int32_t i;
    for (i = 0; i < n; ++i)
    {
        acc += (int32_t)row[i] * ((int32_t)input[i] + input_offset);
    }
    return acc;
}

nsn_status nsn_fully_connected_s8(const nsn_fc_params *params,
                                  const nsn_per_channel_quant_params *quant,
                                  const nsn_fc_dims *dims,
                                  const int8_t *input,
                                  const int8_t *weights,
                                  const int32_t *bias,
                                  int8_t *output)
{
    int32_t c;
    if (params == NULL || quant == NULL || dims == NULL || input == NULL || weights == NULL ||
        output == NULL || quant->multiplier == NULL || quant->shift == NULL)
    {
        return NSN_ARG_ERROR;
    }
    if (dims->input_features < 1 || dims->input_features > NSN_FC_MAX_INPUT_FEATURES ||
        dims->output_features < 1)
    {
        return NSN_ARG_ERROR;
    }

    for (c = 0; c < dims->output_features; ++c)
    {
        const int8_t *row = weights + (size_t)c * (size_t)dims->input_features;
        int32_t acc = dot_s8(row, input, params->input_offset, dims->input_features);
        if (bias != NULL)
        {
            acc = nsn_wrapping_add(acc, bias[c]);
        }
        acc = nsn_requantize(acc, quant->multiplier[c], quant->shift[c]);
        acc = nsn_wrapping_add(acc, params->output_offset);
        output[c] = (int8_t)nsn_clamp(acc, params->activation_min, params->activation_max);
    }
    return NSN_OK;
}

int32_t nsn_fully_connected_s8_get_buffer_size(const nsn_fc_dims *dims)
{
    (void)dims;
    return 0;
}
