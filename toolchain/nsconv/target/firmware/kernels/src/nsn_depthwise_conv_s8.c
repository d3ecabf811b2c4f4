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

/* The taps of one output pixel inside the input, as strided runs: `rows` runs of `cols` taps;
 * the first tap's input pixel and filter tap, and the steps between taps and between runs
 * (in elements of the NHWC input and of the [kh][kw][c] filter). */
typedef struct
{
    const int8_t *x;
    const int8_t *w;
    int32_t rows, cols;
    int32_t x_col, x_row; /* input steps: next tap in a run, next run (from its start) */
    int32_t w_row;        /* filter step between runs; within a run it is the channel count */
} dw_window;

static void dw_window_at(const nsn_conv_params *p, const nsn_conv_dims *d, const int8_t *input,
                         const int8_t *filter, int32_t y, int32_t x, dw_window *win)
{
    const int32_t iy0 = y * p->stride_h - p->pad_h;
    const int32_t ix0 = x * p->stride_w - p->pad_w;
    const int32_t ch = d->output_c;
    int32_t ky0, ky1, kx0, kx1;
    nsn_conv_tap_range(iy0, p->dilation_h, d->filter_h, d->input_h, &ky0, &ky1);
    nsn_conv_tap_range(ix0, p->dilation_w, d->filter_w, d->input_w, &kx0, &kx1);
    win->rows = ky1 - ky0;
    win->cols = kx1 - kx0;
    win->x = input + ((size_t)(iy0 + ky0 * p->dilation_h) * (size_t)d->input_w +
                      (size_t)(ix0 + kx0 * p->dilation_w)) * (size_t)ch;
    win->w = filter + ((size_t)ky0 * (size_t)d->filter_w + (size_t)kx0) * (size_t)ch;
    win->x_col = p->dilation_w * ch;
    win->x_row = p->dilation_h * d->input_w * ch;
    win->w_row = d->filter_w * ch;
}

#endif

#if defined(NSN_KERNELS_DSP)

/* One tap of four channels: x + offset and w split into (c0, c2), (c1, c3) halfword pairs;
 * SMLABB / SMLATT accumulate each channel in its own register. */
#define DW_TAP4(XP, WP)                                                                        \
    do                                                                                         \
    {                                                                                          \
        const int32_t xv_ = nsn_read_s8x4(XP);                                                 \
        const int32_t wv_ = nsn_read_s8x4(WP);                                                 \
        const int32_t xa_ = __sxtab16(offset2, xv_);                                           \
        const int32_t xb_ = nsn_sxtab16_ror8(offset2, xv_);                                    \
        const int32_t wa_ = __sxtb16(wv_);                                                     \
        const int32_t wb_ = nsn_sxtab16_ror8(0, wv_);                                          \
        a0 = __smlabb(xa_, wa_, a0);                                                           \
        a2 = __smlatt(xa_, wa_, a2);                                                           \
        a1 = __smlabb(xb_, wb_, a1);                                                           \
        a3 = __smlatt(xb_, wb_, a3);                                                           \
    } while (0)

/* acc[0..3] += channels [c, c + 4) over the window (input offset in offset2's halves). Runs of
 * three taps whose input step equals the filter step (dilation 1 along the width: GTCRN's
 * (3, 3) kernels) are unrolled with one index for both streams. */
static void dw_quad_dsp(const dw_window *win, int32_t c, int32_t ch, int32_t offset2,
                        int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], i, j;
    const int8_t *xr = win->x + c;
    const int8_t *wr = win->w + c;
    if (win->cols == 3 && win->x_col == ch)
    {
        const int32_t ch2 = 2 * ch;
        for (i = win->rows; i > 0; --i)
        {
            DW_TAP4(xr, wr);
            DW_TAP4(xr + ch, wr + ch);
            DW_TAP4(xr + ch2, wr + ch2);
            xr += win->x_row;
            wr += win->w_row;
        }
    }
    else
    {
        for (i = 0; i < win->rows; ++i)
        {
            const int8_t *xp = xr;
            const int8_t *wp = wr;
            for (j = 0; j < win->cols; ++j)
            {
                DW_TAP4(xp, wp);
                xp += win->x_col;
                wp += ch;
            }
            xr += win->x_row;
            wr += win->w_row;
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* one channel over the window (the last channels when the count is not a multiple of 4) */
static int32_t dw_one_dsp(const dw_window *win, int32_t c, int32_t ch, int32_t offset, int32_t acc)
{
    int32_t i, j;
    for (i = 0; i < win->rows; ++i)
    {
        const int8_t *xp = win->x + (size_t)i * (size_t)win->x_row + c;
        const int8_t *wp = win->w + (size_t)i * (size_t)win->w_row + c;
        for (j = 0; j < win->cols; ++j)
        {
            acc = nsn_wrapping_add(acc, (int32_t)*wp * ((int32_t)*xp + offset));
            xp += win->x_col;
            wp += ch;
        }
    }
    return acc;
}

/* clamp(requantize(acc) + output_offset) for channel c */
static inline int8_t dw_out_dsp(const nsn_conv_params *p, const nsn_per_channel_quant_params *q,
                                int32_t c, int32_t acc)
{
    const int32_t out = nsn_wrapping_add(nsn_requantize_dsp(acc, q->multiplier[c], q->shift[c]),
                                         p->output_offset);
    return (int8_t)nsn_clamp(out, p->activation_min, p->activation_max);
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
    const int32_t quads = ch & ~3;
    const int32_t offset2 = (int32_t)(((uint32_t)p->input_offset & 0xFFFFu) * 0x10001u);
    int32_t y, x, c;
    dw_window win;
    for (y = 0; y < d->output_h; ++y)
    {
        for (x = 0; x < d->output_w; ++x)
        {
            dw_window_at(p, d, input, filter, y, x, &win);
            for (c = 0; c < quads; c += 4)
            {
                int32_t acc[4] = {0, 0, 0, 0};
                if (bias != NULL)
                {
                    acc[0] = bias[c];
                    acc[1] = bias[c + 1];
                    acc[2] = bias[c + 2];
                    acc[3] = bias[c + 3];
                }
                dw_quad_dsp(&win, c, ch, offset2, acc);
                output[c] = dw_out_dsp(p, quant, c, acc[0]);
                output[c + 1] = dw_out_dsp(p, quant, c + 1, acc[1]);
                output[c + 2] = dw_out_dsp(p, quant, c + 2, acc[2]);
                output[c + 3] = dw_out_dsp(p, quant, c + 3, acc[3]);
            }
            for (; c < ch; ++c)
            {
                const int32_t acc = dw_one_dsp(&win, c, ch, p->input_offset,
                                               bias != NULL ? bias[c] : 0);
                output[c] = dw_out_dsp(p, quant, c, acc);
            }
            output += ch;
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
    int32_t y, x, c, i, j;
    dw_window win;
    for (y = 0; y < d->output_h; ++y)
    {
        for (x = 0; x < d->output_w; ++x)
        {
            dw_window_at(p, d, input, filter, y, x, &win);
            for (c = 0; c < ch; c += 4)
            {
                const mve_pred16_t pr = vctp32q((uint32_t)(ch - c));
                int32x4_t acc = bias != NULL ? vldrwq_z_s32(bias + c, pr) : vdupq_n_s32(0);
                for (i = 0; i < win.rows; ++i)
                {
                    const int8_t *xp = win.x + (size_t)i * (size_t)win.x_row + c;
                    const int8_t *wp = win.w + (size_t)i * (size_t)win.w_row + c;
                    for (j = 0; j < win.cols; ++j)
                    {
                        const int32x4_t xv = vaddq_n_s32(vldrbq_z_s32(xp, pr), p->input_offset);
                        acc = vaddq_s32(acc, vmulq_s32(xv, vldrbq_z_s32(wp, pr)));
                        xp += win.x_col;
                        wp += ch;
                    }
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
    if (dims->output_c == dims->input_c && params->input_offset >= -128 &&
        params->input_offset <= 128)
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
