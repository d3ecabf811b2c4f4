/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DEPTHWISE_CONV_2D, int8, int32 bias, per-channel requantization, any depth multiplier,
 * strides and dilations: TFLM reference_integer_ops::DepthwiseConvPerChannel for one image.
 *
 * Paths (same bits):
 *   reference  one output at a time, taps outside the input skipped.
 *   DSP        depth multiplier 1: four channels per step; one word of inputs and one of
 *              weights per tap, SXTAB16 (input offset added) / SXTB16 into pairs, SMLABB and
 *              SMLATT accumulate each channel in its own register.
 *   MVE        depth multiplier 1: four channels per vector (int32 lanes), the last ones
 *              predicated.
 * No scratch on any path.
 */
#include "nsn_nnfunctions_conv.h"

#include <stddef.h>

#include "nsn_conv_internal.h"

static void dw_reference(const nsn_conv_params *p,
                         const nsn_per_channel_quant_params *quant,
                         const nsn_conv_dims *d,
                         const int8_t *input,
                         const int8_t *filter,
                         const int32_t *bias,
                         int8_t *output)
{
    const int32_t mult = d->output_c / d->input_c;
    int32_t y, x, c, ky, kx;
    for (y = 0; y < d->output_h; ++y)
    {
        const int32_t iy0 = y * p->stride_h - p->pad_h;
        int32_t ky0, ky1;
        nsn_conv_tap_range(iy0, p->dilation_h, d->filter_h, d->input_h, &ky0, &ky1);
        for (x = 0; x < d->output_w; ++x)
        {
            const int32_t ix0 = x * p->stride_w - p->pad_w;
            int32_t kx0, kx1;
            nsn_conv_tap_range(ix0, p->dilation_w, d->filter_w, d->input_w, &kx0, &kx1);
            for (c = 0; c < d->output_c; ++c)
            {
                int32_t acc = bias != NULL ? bias[c] : 0;
                for (ky = ky0; ky < ky1; ++ky)
                {
                    for (kx = kx0; kx < kx1; ++kx)
                    {
                        const size_t at = (size_t)(iy0 + ky * p->dilation_h) * (size_t)d->input_w +
                                          (size_t)(ix0 + kx * p->dilation_w);
                        const int32_t xv = input[at * (size_t)d->input_c + (size_t)(c / mult)];
                        const int32_t wv =
                            filter[((size_t)ky * (size_t)d->filter_w + (size_t)kx) *
                                       (size_t)d->output_c + (size_t)c];
                        acc = nsn_wrapping_add(acc, wv * (xv + p->input_offset));
                    }
                }
                *output++ = nsn_conv_out_ref(acc, quant->multiplier[c], quant->shift[c], p);
            }
        }
    }
}

#if defined(NSN_KERNELS_DSP) || defined(NSN_KERNELS_MVE)

/* The taps of output pixel (y, x) inside the input: their input pixel offsets (in pixels)
 * and filter tap indices; returns their count. */
static int32_t dw_taps(const nsn_conv_params *p, const nsn_conv_dims *d, int32_t y, int32_t x,
                       int32_t *at, int32_t *tap)
{
    const int32_t iy0 = y * p->stride_h - p->pad_h;
    const int32_t ix0 = x * p->stride_w - p->pad_w;
    int32_t ky0, ky1, kx0, kx1, ky, kx, n = 0;
    nsn_conv_tap_range(iy0, p->dilation_h, d->filter_h, d->input_h, &ky0, &ky1);
    nsn_conv_tap_range(ix0, p->dilation_w, d->filter_w, d->input_w, &kx0, &kx1);
    for (ky = ky0; ky < ky1; ++ky)
    {
        for (kx = kx0; kx < kx1; ++kx)
        {
            at[n] = (iy0 + ky * p->dilation_h) * d->input_w + ix0 + kx * p->dilation_w;
            tap[n] = ky * d->filter_w + kx;
            ++n;
        }
    }
    return n;
}

/* Taps per call on the optimized paths (their offsets wait in two arrays on the stack);
 * larger filters take the portable loop. */
#define DW_MAX_TAPS 64

#endif

#if defined(NSN_KERNELS_DSP)

/* channels [c, c + 4) of one output pixel */
static void dw_quad_dsp(const int8_t *input, const int8_t *filter, int32_t channels,
                        const int32_t *at, const int32_t *tap, int32_t n, int32_t offset2,
                        int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], t;
    for (t = 0; t < n; ++t)
    {
        const int32_t xv = nsn_read_s8x4(input + (size_t)at[t] * (size_t)channels);
        const int32_t wv = nsn_read_s8x4(filter + (size_t)tap[t] * (size_t)channels);
        const int32_t xa = __sxtab16(offset2, xv);
        const int32_t xb = nsn_sxtab16_ror8(offset2, xv);
        const int32_t wa = __sxtb16(wv);
        const int32_t wb = nsn_sxtab16_ror8(0, wv);
        a0 = __smlabb(xa, wa, a0);
        a2 = __smlatt(xa, wa, a2);
        a1 = __smlabb(xb, wb, a1);
        a3 = __smlatt(xb, wb, a3);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

static void dw_dsp(const nsn_conv_params *p,
                   const nsn_per_channel_quant_params *quant,
                   const nsn_conv_dims *d,
                   const int8_t *input,
                   const int8_t *filter,
                   const int32_t *bias,
                   int8_t *output)
{
    const int32_t ch = d->output_c;
    const int32_t offset2 = (int32_t)(((uint32_t)p->input_offset & 0xFFFFu) * 0x10001u);
    int32_t at[DW_MAX_TAPS], tap[DW_MAX_TAPS];
    int32_t y, x, c, t;
    for (y = 0; y < d->output_h; ++y)
    {
        for (x = 0; x < d->output_w; ++x)
        {
            const int32_t n = dw_taps(p, d, y, x, at, tap);
            for (c = 0; c < ch; c += 4)
            {
                int32_t acc[4], j;
                const int32_t count = ch - c < 4 ? ch - c : 4;
                for (j = 0; j < 4; ++j)
                {
                    acc[j] = bias != NULL && j < count ? bias[c + j] : 0;
                }
                if (count == 4)
                {
                    dw_quad_dsp(input + c, filter + c, ch, at, tap, n, offset2, acc);
                }
                else
                {
                    for (j = 0; j < count; ++j)
                    {
                        for (t = 0; t < n; ++t)
                        {
                            acc[j] += (int32_t)filter[(size_t)tap[t] * (size_t)ch + (size_t)(c + j)] *
                                      ((int32_t)input[(size_t)at[t] * (size_t)ch + (size_t)(c + j)] +
                                       p->input_offset);
                        }
                    }
                }
                for (j = 0; j < count; ++j)
                {
                    const int32_t out = nsn_wrapping_add(
                        nsn_requantize_dsp(acc[j], quant->multiplier[c + j], quant->shift[c + j]),
                        p->output_offset);
                    *output++ = (int8_t)nsn_clamp(out, p->activation_min, p->activation_max);
                }
            }
        }
    }
}

#endif /* NSN_KERNELS_DSP */

#if defined(NSN_KERNELS_MVE)

static void dw_mve(const nsn_conv_params *p,
                   const nsn_per_channel_quant_params *quant,
                   const nsn_conv_dims *d,
                   const int8_t *input,
                   const int8_t *filter,
                   const int32_t *bias,
                   int8_t *output)
{
    const int32_t ch = d->output_c;
    const int32x4_t lo = vdupq_n_s32(p->activation_min);
    const int32x4_t hi = vdupq_n_s32(p->activation_max);
    int32_t at[DW_MAX_TAPS], tap[DW_MAX_TAPS];
    int32_t y, x, c, t;
    for (y = 0; y < d->output_h; ++y)
    {
        for (x = 0; x < d->output_w; ++x)
        {
            const int32_t n = dw_taps(p, d, y, x, at, tap);
            for (c = 0; c < ch; c += 4)
            {
                const mve_pred16_t pr = vctp32q((uint32_t)(ch - c));
                int32x4_t acc = bias != NULL ? vldrwq_z_s32(bias + c, pr) : vdupq_n_s32(0);
                for (t = 0; t < n; ++t)
                {
                    const int32x4_t xv = vldrbq_z_s32(input + (size_t)at[t] * (size_t)ch + c, pr);
                    const int32x4_t wv = vldrbq_z_s32(filter + (size_t)tap[t] * (size_t)ch + c, pr);
                    acc = vaddq_s32(acc, vmulq_s32(vaddq_n_s32(xv, p->input_offset), wv));
                }
                acc = nsn_requantize_mve(acc, vldrwq_z_s32(quant->multiplier + c, pr),
                                         vldrwq_z_s32(quant->shift + c, pr));
                acc = vaddq_n_s32(acc, p->output_offset);
                vstrbq_p_s32(output + c, vminq_s32(vmaxq_s32(acc, lo), hi), pr);
            }
            output += ch;
        }
    }
}

#endif /* NSN_KERNELS_MVE */

nsn_status nsn_depthwise_conv_s8(const nsn_context *ctx,
                                 const nsn_conv_params *params,
                                 const nsn_per_channel_quant_params *quant,
                                 const nsn_conv_dims *dims,
                                 const int8_t *input,
                                 const int8_t *filter,
                                 const int32_t *bias,
                                 int8_t *output)
{
    if (!nsn_conv_args_ok(params, quant, dims, input, filter, output) ||
        dims->output_c % dims->input_c != 0 ||
        (int64_t)dims->filter_h * dims->filter_w > NSN_CONV_MAX_PATCH ||
        params->input_offset < -NSN_FC_MAX_INPUT_OFFSET ||
        params->input_offset > NSN_FC_MAX_INPUT_OFFSET)
    {
        return NSN_ARG_ERROR;
    }
    if (!nsn_conv_scratch_ok(ctx, 0))
    {
        return NSN_SCRATCH_ERROR;
    }
#if defined(NSN_KERNELS_DSP) || defined(NSN_KERNELS_MVE)
    if (dims->output_c == dims->input_c && dims->filter_h * dims->filter_w <= DW_MAX_TAPS &&
        params->input_offset >= -128 && params->input_offset <= 128)
    {
#if defined(NSN_KERNELS_DSP)
        dw_dsp(params, quant, dims, input, filter, bias, output);
#else
        dw_mve(params, quant, dims, input, filter, bias, output);
#endif
        return NSN_OK;
    }
#endif
    dw_reference(params, quant, dims, input, filter, bias, output);
    return NSN_OK;
}
