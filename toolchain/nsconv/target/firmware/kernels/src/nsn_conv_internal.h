/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the convolution kernels (private to firmware/kernels/src): argument and
 * scratch checks, tap bounds, the per-output requantization of the portable path.
 */
#ifndef NSN_CONV_INTERNAL_H
#define NSN_CONV_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nsn_kernels_internal.h"
#include "nsn_nnfunctions_conv.h"

/* The spatial and channel fields every conv call needs (groups checked by the caller). */
static inline int nsn_conv_args_ok(const nsn_conv_params *params,
                                   const nsn_per_channel_quant_params *quant,
                                   const nsn_conv_dims *dims,
                                   const void *input,
                                   const void *filter,
                                   const void *output)
{
    if (params == NULL || quant == NULL || dims == NULL || input == NULL || filter == NULL ||
        output == NULL || quant->multiplier == NULL || quant->shift == NULL)
    {
        return 0;
    }
    return dims->input_h >= 1 && dims->input_w >= 1 && dims->input_c >= 1 &&
           dims->filter_h >= 1 && dims->filter_w >= 1 && dims->output_h >= 1 &&
           dims->output_w >= 1 && dims->output_c >= 1 && params->stride_h >= 1 &&
           params->stride_w >= 1 && params->dilation_h >= 1 && params->dilation_w >= 1 &&
           params->pad_h >= 0 && params->pad_w >= 0 && dims->input_h <= (1 << 15) &&
           dims->input_w <= (1 << 15) && dims->output_h <= (1 << 15) &&
           dims->output_w <= (1 << 15) && dims->filter_h <= (1 << 15) &&
           dims->filter_w <= (1 << 15) && params->stride_h <= (1 << 15) &&
           params->stride_w <= (1 << 15) && params->dilation_h <= (1 << 15) &&
           params->dilation_w <= (1 << 15) && params->pad_h <= (1 << 15) &&
           params->pad_w <= (1 << 15);
}

/* The scratch contract of nsn_context: `need` bytes (NULL allowed when 0), 4-byte aligned,
 * size not negative. */
static inline int nsn_conv_scratch_ok(const nsn_context *ctx, int32_t need)
{
    if (ctx == NULL || ctx->buf == NULL)
    {
        return need == 0;
    }
    return ctx->size >= need && ctx->size >= 0 && ((uintptr_t)ctx->buf & 3u) == 0;
}

/* The first input row (column) of output row y, and the tap range [k0, k1) that is inside
 * the input: origin + k * dilation in [0, size). */
static inline void nsn_conv_tap_range(int32_t origin,
                                      int32_t dilation,
                                      int32_t kernel,
                                      int32_t size,
                                      int32_t *k0,
                                      int32_t *k1)
{
    int32_t lo = 0;
    int32_t hi = kernel;
    if (origin < 0)
    {
        lo = (-origin + dilation - 1) / dilation;
    }
    if (origin + (kernel - 1) * dilation >= size)
    {
        hi = (size - 1 - origin) / dilation + 1;
        if (size - 1 - origin < 0)
        {
            hi = 0;
        }
    }
    *k0 = lo;
    *k1 = hi < lo ? lo : hi;
}

/* clamp(requantize(acc, M, S) + output_offset) */
static inline int8_t nsn_conv_out_ref(int32_t acc, int32_t multiplier, int32_t shift,
                                      const nsn_conv_params *params)
{
    int32_t out = nsn_requantize(acc, multiplier, shift);
    out = nsn_wrapping_add(out, params->output_offset);
    return (int8_t)nsn_clamp(out, params->activation_min, params->activation_max);
}

#endif /* NSN_CONV_INTERNAL_H */
