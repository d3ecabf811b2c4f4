/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 16x8 CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: int16 activations (zero point 0), int8
 * per-channel weights, int64 bias, int64 sums, TFLM's int64 MultiplyByQuantizedMultiplier
 * (reference_integer_ops ConvPerChannel / DepthwiseConvPerChannel / FullyConnectedPerChannel
 * for int16).
 *
 * Portable paths on every core. (A product of an int8 weight and an int16 input is at most
 * 2^22 in magnitude, so sums of up to 511 products fit int32: the optimized loops below use
 * 32-bit multiply-accumulates there and add the int64 bias after.)
 */
#include "nsn_nnfunctions_s16.h"

#include <stddef.h>

#include "nsn_conv_internal.h"
#include "nsn_s16_internal.h"

/* clamp(requantize64(acc)) to the activation range */
static inline int16_t s16_out(int64_t acc, int32_t m, int32_t s, int32_t lo, int32_t hi)
{
    return (int16_t)nsn_clamp(nsn_requantize_s64(acc, m, s), lo, hi);
}

static int64_t conv16_dot_ref(const nsn_conv_params *p,
                              const nsn_conv_dims *d,
                              const int16_t *input,
                              const int8_t *w,
                              int32_t y,
                              int32_t x,
                              int32_t cin0)
{
    const int32_t cin_g = d->input_c / d->groups;
    const int32_t iy0 = y * p->stride_h - p->pad_h;
    const int32_t ix0 = x * p->stride_w - p->pad_w;
    int32_t ky0, ky1, kx0, kx1, ky, kx, i;
    int64_t acc = 0;
    nsn_conv_tap_range(iy0, p->dilation_h, d->filter_h, d->input_h, &ky0, &ky1);
    nsn_conv_tap_range(ix0, p->dilation_w, d->filter_w, d->input_w, &kx0, &kx1);
    for (ky = ky0; ky < ky1; ++ky)
    {
        const size_t row = (size_t)(iy0 + ky * p->dilation_h) * (size_t)d->input_w;
        for (kx = kx0; kx < kx1; ++kx)
        {
            const int16_t *xp =
                input + (row + (size_t)(ix0 + kx * p->dilation_w)) * (size_t)d->input_c + cin0;
            const int8_t *wp = w + ((size_t)ky * (size_t)d->filter_w + (size_t)kx) * (size_t)cin_g;
            for (i = 0; i < cin_g; ++i)
            {
                acc += (int32_t)wp[i] * (int32_t)xp[i];
            }
        }
    }
    return acc;
}

static int conv16_args_ok(const nsn_conv_params *params,
                          const nsn_per_channel_quant_params *quant,
                          const nsn_conv_dims *dims,
                          const void *input,
                          const void *filter,
                          const void *output)
{
    return nsn_conv_args_ok(params, quant, dims, input, filter, output) &&
           params->input_offset == 0 && params->output_offset == 0 &&
           (int64_t)dims->filter_h * dims->filter_w * dims->input_c <= NSN_CONV_MAX_PATCH;
}

int32_t nsn_conv_s16_get_buffer_size_ref(const nsn_conv_dims *dims)
{
    (void)dims;
    return 0;
}

int32_t nsn_conv_s16_get_buffer_size_dsp(const nsn_conv_dims *dims)
{
    (void)dims;
    return 0;
}

int32_t nsn_conv_s16_get_buffer_size_mve(const nsn_conv_dims *dims)
{
    (void)dims;
    return 0;
}

int32_t nsn_conv_s16_get_buffer_size(const nsn_conv_dims *dims)
{
    return nsn_conv_s16_get_buffer_size_ref(dims);
}

nsn_status nsn_conv_s16(const nsn_context *ctx,
                        const nsn_conv_params *params,
                        const nsn_per_channel_quant_params *quant,
                        const nsn_conv_dims *dims,
                        const int16_t *input,
                        const int8_t *filter,
                        const int64_t *bias,
                        int16_t *output)
{
    int32_t y, x, c, cout_g, cin_g;
    size_t k;
    if (!conv16_args_ok(params, quant, dims, input, filter, output) || dims->groups < 1 ||
        dims->input_c % dims->groups != 0 || dims->output_c % dims->groups != 0)
    {
        return NSN_ARG_ERROR;
    }
    if (!nsn_conv_scratch_ok(ctx, nsn_conv_s16_get_buffer_size(dims)))
    {
        return NSN_SCRATCH_ERROR;
    }
    cout_g = dims->output_c / dims->groups;
    cin_g = dims->input_c / dims->groups;
    k = (size_t)dims->filter_h * (size_t)dims->filter_w * (size_t)cin_g;
    for (y = 0; y < dims->output_h; ++y)
    {
        for (x = 0; x < dims->output_w; ++x)
        {
            for (c = 0; c < dims->output_c; ++c)
            {
                int64_t acc = conv16_dot_ref(params, dims, input, filter + (size_t)c * k, y, x,
                                             (c / cout_g) * cin_g);
                acc += bias != NULL ? bias[c] : 0;
                *output++ = s16_out(acc, quant->multiplier[c], quant->shift[c],
                                    params->activation_min, params->activation_max);
            }
        }
    }
    return NSN_OK;
}

nsn_status nsn_depthwise_conv_s16(const nsn_context *ctx,
                                  const nsn_conv_params *params,
                                  const nsn_per_channel_quant_params *quant,
                                  const nsn_conv_dims *d,
                                  const int16_t *input,
                                  const int8_t *filter,
                                  const int64_t *bias,
                                  int16_t *output)
{
    int32_t y, x, c, ky, kx, mult;
    if (!conv16_args_ok(params, quant, d, input, filter, output) ||
        d->output_c % d->input_c != 0)
    {
        return NSN_ARG_ERROR;
    }
    if (!nsn_conv_scratch_ok(ctx, 0))
    {
        return NSN_SCRATCH_ERROR;
    }
    mult = d->output_c / d->input_c;
    for (y = 0; y < d->output_h; ++y)
    {
        const int32_t iy0 = y * params->stride_h - params->pad_h;
        int32_t ky0, ky1;
        nsn_conv_tap_range(iy0, params->dilation_h, d->filter_h, d->input_h, &ky0, &ky1);
        for (x = 0; x < d->output_w; ++x)
        {
            const int32_t ix0 = x * params->stride_w - params->pad_w;
            int32_t kx0, kx1;
            nsn_conv_tap_range(ix0, params->dilation_w, d->filter_w, d->input_w, &kx0, &kx1);
            for (c = 0; c < d->output_c; ++c)
            {
                int64_t acc = bias != NULL ? bias[c] : 0;
                for (ky = ky0; ky < ky1; ++ky)
                {
                    for (kx = kx0; kx < kx1; ++kx)
                    {
                        const size_t at =
                            (size_t)(iy0 + ky * params->dilation_h) * (size_t)d->input_w +
                            (size_t)(ix0 + kx * params->dilation_w);
                        acc += (int32_t)filter[((size_t)ky * (size_t)d->filter_w + (size_t)kx) *
                                                   (size_t)d->output_c + (size_t)c] *
                               (int32_t)input[at * (size_t)d->input_c + (size_t)(c / mult)];
                    }
                }
                *output++ = s16_out(acc, quant->multiplier[c], quant->shift[c],
                                    params->activation_min, params->activation_max);
            }
        }
    }
    return NSN_OK;
}

nsn_status nsn_fully_connected_s16(const nsn_context *ctx,
                                   const nsn_fc_params *params,
                                   const nsn_per_channel_quant_params *quant,
                                   const nsn_fc_dims *dims,
                                   const int16_t *input,
                                   const int8_t *weights,
                                   const int64_t *bias,
                                   int16_t *output)
{
    int32_t c, i;
    if (params == NULL || quant == NULL || dims == NULL || input == NULL || weights == NULL ||
        output == NULL || quant->multiplier == NULL || quant->shift == NULL ||
        dims->input_features < 1 || dims->input_features > NSN_FC_MAX_INPUT_FEATURES ||
        dims->output_features < 1 || params->input_offset != 0 || params->output_offset != 0)
    {
        return NSN_ARG_ERROR;
    }
    if (!nsn_conv_scratch_ok(ctx, 0))
    {
        return NSN_SCRATCH_ERROR;
    }
    for (c = 0; c < dims->output_features; ++c)
    {
        const int8_t *row = weights + (size_t)c * (size_t)dims->input_features;
        int64_t acc = bias != NULL ? bias[c] : 0;
        for (i = 0; i < dims->input_features; ++i)
        {
            acc += (int32_t)row[i] * (int32_t)input[i];
        }
        output[c] = s16_out(acc, quant->multiplier[c], quant->shift[c], params->activation_min,
                            params->activation_max);
    }
    return NSN_OK;
}
