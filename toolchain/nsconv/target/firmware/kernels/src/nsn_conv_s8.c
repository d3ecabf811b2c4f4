/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CONV_2D, int8 activations and weights, int32 bias, per-channel requantization, groups:
 * TFLM reference_integer_ops::ConvPerChannel for one image (NHWC).
 *
 * Three paths with the same bits (nsn_nnfunctions.h says how one is chosen):
 *   reference  one output at a time, taps outside the input skipped, portable C99.
 *   DSP        im2col of four output pixels at a time: each patch (one group's channels of
 *              every tap, padding taps at the input zero point) is sign-extended once into
 *              int16 pairs with the input offset added, interleaved by pixel so that one LDM
 *              loads two pixels' pairs. Per output channel, one weight word (4 weights,
 *              SXTB16 into two pairs) feeds 8 SMLAD over the four pixels: 16 MACs in 12
 *              instructions. Weights stay in TFLite's [out][kh][kw][in] layout.
 *   MVE        one output pixel at a time: the int8 patch (padding taps at the zero point)
 *              against four weight rows per pass, VMLADAVA.S8 (16 MACs per instruction) in a
 *              tail-predicated loop; the input offset enters as offset * sum(weights of the
 *              row), summed once per call into the scratch.
 * The DSP and MVE paths need -input_offset to be an int8 value (TFLM's int8 models: always);
 * otherwise they compute with the portable loop (same bits).
 */
#include "nsn_nnfunctions_conv.h"

#include <stddef.h>
#include <string.h>

#include "nsn_conv_internal.h"

#if (defined(NSN_KERNELS_DSP) || defined(NSN_KERNELS_MVE)) && !defined(__OPTIMIZE__)
#error "nsconv kernels: the dsp and mve paths need an optimized build (-O1 or higher); build with -DNSN_KERNELS_FORCE_REFERENCE to choose the portable path"
#endif

/* patch length of one group: filter_h * filter_w * input_c / groups */
static int32_t conv_patch(const nsn_conv_dims *d)
{
    return d->filter_h * d->filter_w * (d->input_c / d->groups);
}

/* the DSP row path's pixels per expanded run of columns, shapes and scratch (see below) */
#define CONV_ROW_PIXELS 16

static int conv_row_shape(const nsn_conv_dims *d)
{
    return d->filter_h == 1 && d->groups == 1 && (d->input_c & 3) == 0 &&
           d->filter_w <= 1024 && d->input_c <= 4096;
}

static int32_t conv_row_cols(const nsn_conv_dims *d)
{
    return CONV_ROW_PIXELS - 1 + d->filter_w;
}

static int32_t conv_row_bytes(const nsn_conv_dims *d)
{
    return 16 * d->output_c + 2 * d->output_c * conv_patch(d) + 2 * d->input_c * conv_row_cols(d);
}

/* sum over the taps of output pixel (y, x) inside the input, channels [cin0, cin0 + cin_g) */
static int32_t conv_dot_ref(const nsn_conv_params *p,
                            const nsn_conv_dims *d,
                            const int8_t *input,
                            const int8_t *w,
                            int32_t y,
                            int32_t x,
                            int32_t cin0)
{
    const int32_t cin_g = d->input_c / d->groups;
    const int32_t iy0 = y * p->stride_h - p->pad_h;
    const int32_t ix0 = x * p->stride_w - p->pad_w;
    int32_t ky0, ky1, kx0, kx1, ky, kx, i;
    int32_t acc = 0;
    nsn_conv_tap_range(iy0, p->dilation_h, d->filter_h, d->input_h, &ky0, &ky1);
    nsn_conv_tap_range(ix0, p->dilation_w, d->filter_w, d->input_w, &kx0, &kx1);
    for (ky = ky0; ky < ky1; ++ky)
    {
        const size_t row = (size_t)(iy0 + ky * p->dilation_h) * (size_t)d->input_w;
        for (kx = kx0; kx < kx1; ++kx)
        {
            const int8_t *xp =
                input + (row + (size_t)(ix0 + kx * p->dilation_w)) * (size_t)d->input_c + cin0;
            const int8_t *wp = w + ((size_t)ky * (size_t)d->filter_w + (size_t)kx) * (size_t)cin_g;
            for (i = 0; i < cin_g; ++i)
            {
                acc = nsn_wrapping_add(acc, (int32_t)wp[i] * ((int32_t)xp[i] + p->input_offset));
            }
        }
    }
    return acc;
}

static void conv_reference(const nsn_conv_params *p,
                           const nsn_per_channel_quant_params *quant,
                           const nsn_conv_dims *d,
                           const int8_t *input,
                           const int8_t *filter,
                           const int32_t *bias,
                           int8_t *output)
{
    const int32_t cout_g = d->output_c / d->groups;
    const int32_t cin_g = d->input_c / d->groups;
    const size_t k = (size_t)conv_patch(d);
    int32_t y, x, c;
    for (y = 0; y < d->output_h; ++y)
    {
        for (x = 0; x < d->output_w; ++x)
        {
            for (c = 0; c < d->output_c; ++c)
            {
                int32_t acc = conv_dot_ref(p, d, input, filter + (size_t)c * k, y, x,
                                           (c / cout_g) * cin_g);
                if (bias != NULL)
                {
                    acc = nsn_wrapping_add(acc, bias[c]);
                }
                *output++ = nsn_conv_out_ref(acc, quant->multiplier[c], quant->shift[c], p);
            }
        }
    }
}

#if defined(NSN_KERNELS_DSP) || defined(NSN_KERNELS_MVE)

/* n bytes, a word at a time (the library memcpy costs more than these short runs) */
static inline void conv_copy_s8(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n >= 4; n -= 4)
    {
        const int32_t v = nsn_read_s8x4(src);
        memcpy(dst, &v, sizeof v);
        src += 4;
        dst += 4;
    }
    for (; n > 0; --n)
    {
        *dst++ = *src++;
    }
}

/* The int8 patch of output pixel `pixel` (row-major over output_h x output_w), channels
 * [cin0, cin0 + cin_g) of every tap in filter order; taps outside the input, and the slack up
 * to `len`, hold `fill` (the input zero point: x + input_offset = 0 there). */
static void conv_gather_s8(const nsn_conv_params *p,
                           const nsn_conv_dims *d,
                           const int8_t *input,
                           int32_t pixel,
                           int32_t cin0,
                           int8_t fill,
                           int32_t len,
                           int8_t *dst)
{
    const int32_t cin_g = d->input_c / d->groups;
    const int32_t iy0 = (pixel / d->output_w) * p->stride_h - p->pad_h;
    const int32_t ix0 = (pixel % d->output_w) * p->stride_w - p->pad_w;
    int8_t *const end = dst + len;
    int32_t ky, kx;
    for (ky = 0; ky < d->filter_h; ++ky)
    {
        const int32_t iy = iy0 + ky * p->dilation_h;
        for (kx = 0; kx < d->filter_w; ++kx)
        {
            const int32_t ix = ix0 + kx * p->dilation_w;
            if (iy >= 0 && iy < d->input_h && ix >= 0 && ix < d->input_w)
            {
                conv_copy_s8(dst,
                             input + ((size_t)iy * (size_t)d->input_w + (size_t)ix) *
                                         (size_t)d->input_c + cin0,
                             cin_g);
            }
            else
            {
                memset(dst, fill, (size_t)cin_g);
            }
            dst += cin_g;
        }
    }
    memset(dst, fill, (size_t)(end - dst));
}

#endif

#if defined(NSN_KERNELS_DSP)

/* Four patches, interleaved (nsn_conv_internal.h: CONV_DSP_PIXELS): for each group of four
 * inputs, pixel q's two pair words (x0 + o, x2 + o), (x1 + o, x3 + o) at words 8j + 2q,
 * 8j + 2q + 1. */

static void conv_expand_dsp(const int8_t *patch, int32_t groups4, int32_t offset, int32_t *buf)
{
    const int32_t offset2 = (int32_t)(((uint32_t)offset & 0xFFFFu) * 0x10001u);
    for (; groups4 > 0; --groups4)
    {
        const int32_t v = nsn_read_s8x4(patch);
        patch += 4;
        buf[0] = __sxtab16(offset2, v);
        buf[1] = nsn_sxtab16_ror8(offset2, v);
        buf += 2 * CONV_DSP_PIXELS;
    }
}

/* The expanded patch of one pixel straight from the input, when the group's channel count is
 * a multiple of 4 (every tap starts a new word group): no int8 copy. Taps outside the input
 * expand to zero pairs. */
static void conv_expand_direct_dsp(const nsn_conv_params *p,
                                   const nsn_conv_dims *d,
                                   const int8_t *input,
                                   int32_t pixel,
                                   int32_t cin0,
                                   int32_t *buf)
{
    const int32_t groups4 = (d->input_c / d->groups) >> 2;
    const int32_t iy0 = (pixel / d->output_w) * p->stride_h - p->pad_h;
    const int32_t ix0 = (pixel % d->output_w) * p->stride_w - p->pad_w;
    int32_t ky, kx, j;
    for (ky = 0; ky < d->filter_h; ++ky)
    {
        const int32_t iy = iy0 + ky * p->dilation_h;
        for (kx = 0; kx < d->filter_w; ++kx)
        {
            const int32_t ix = ix0 + kx * p->dilation_w;
            if (iy >= 0 && iy < d->input_h && ix >= 0 && ix < d->input_w)
            {
                conv_expand_dsp(input + ((size_t)iy * (size_t)d->input_w + (size_t)ix) *
                                            (size_t)d->input_c + cin0,
                                groups4, p->input_offset, buf);
            }
            else
            {
                for (j = 0; j < groups4; ++j)
                {
                    buf[2 * CONV_DSP_PIXELS * j] = 0;
                    buf[2 * CONV_DSP_PIXELS * j + 1] = 0;
                }
            }
            buf += 2 * CONV_DSP_PIXELS * groups4;
        }
    }
}

/* out[q * stride] = act(clamp(requantize(acc[q]) + output_offset)) for the first `pixels`
 * of 4 (act: the centred activation table or NULL) */
static inline void conv_store4_dsp(const int32_t *acc, int32_t m, int32_t s,
                                   const nsn_conv_params *p, int32_t pixels, int wide,
                                   const int8_t *act, int8_t *out, int32_t stride)
{
    const int32_t zo = p->output_offset;
    int32_t q;
    if (wide && pixels == CONV_DSP_PIXELS)
    {
        const int32_t y0 = nsn_ssat8(nsn_wrapping_add(nsn_requantize_dsp(acc[0], m, s), zo));
        const int32_t y1 = nsn_ssat8(nsn_wrapping_add(nsn_requantize_dsp(acc[1], m, s), zo));
        const int32_t y2 = nsn_ssat8(nsn_wrapping_add(nsn_requantize_dsp(acc[2], m, s), zo));
        const int32_t y3 = nsn_ssat8(nsn_wrapping_add(nsn_requantize_dsp(acc[3], m, s), zo));
        out[0] = (int8_t)nsn_conv_act_apply(act, y0);
        out[stride] = (int8_t)nsn_conv_act_apply(act, y1);
        out[2 * stride] = (int8_t)nsn_conv_act_apply(act, y2);
        out[3 * stride] = (int8_t)nsn_conv_act_apply(act, y3);
        return;
    }
    for (q = 0; q < pixels; ++q)
    {
        const int32_t y = nsn_wrapping_add(nsn_requantize_dsp(acc[q], m, s), zo);
        out[(size_t)q * (size_t)stride] = (int8_t)nsn_conv_act_apply(
            act, nsn_clamp(y, p->activation_min, p->activation_max));
    }
}

/* The output channels [c0, c0 + count) of `pixels` (1..4) pixels from the expanded patches. */
static void conv_channels_dsp(const nsn_conv_params *p,
                              const nsn_per_channel_quant_params *quant,
                              const nsn_conv_dims *d,
                              const int8_t *filter,
                              const int32_t *bias,
                              const int32_t *xbuf,
                              int32_t c0,
                              int32_t count,
                              int32_t pixels,
                              int8_t *output)
{
    const int32_t k = conv_patch(d);
    const int32_t words = k >> 2;
    const int32_t *xtail = xbuf + words * 2 * CONV_DSP_PIXELS;
    const int wide = p->activation_min == INT8_MIN && p->activation_max == INT8_MAX;
    const int8_t *const act = nsn_conv_act(p);
    int32_t c;
    for (c = c0; c < c0 + count; ++c)
    {
        int32_t acc[CONV_DSP_PIXELS];
        const int32_t b = bias != NULL ? bias[c] : 0;
        const int32_t m = quant->multiplier[c];
        const int32_t s = quant->shift[c];
        const int8_t *row;
        acc[0] = acc[1] = acc[2] = acc[3] = b;
        row = conv_dot4_dsp(filter + (size_t)c * (size_t)k, xbuf, words, acc);
        if ((k & 3) != 0)
        {
            conv_tail_dsp(row, k & 3, xtail, acc);
        }
        conv_store4_dsp(acc, m, s, p, pixels, wide, act, output + c, d->output_c);
    }
}

static void conv_dsp(const nsn_conv_params *p,
                     const nsn_per_channel_quant_params *quant,
                     const nsn_conv_dims *d,
                     const int8_t *input,
                     const int8_t *filter,
                     const int32_t *bias,
                     int8_t *output,
                     int32_t *buf)
{
    const int32_t k4 = (conv_patch(d) + 3) & ~3;
    const int32_t cin_g = d->input_c / d->groups;
    const int32_t cout_g = d->output_c / d->groups;
    const int32_t pixels = d->output_h * d->output_w;
    int8_t *const patch = (int8_t *)(buf + 2 * k4); /* after 4 pixels x k4 int16 */
    int32_t p0, g, q;
    for (p0 = 0; p0 < pixels; p0 += CONV_DSP_PIXELS)
    {
        const int32_t n = pixels - p0 < CONV_DSP_PIXELS ? pixels - p0 : CONV_DSP_PIXELS;
        for (g = 0; g < d->groups; ++g)
        {
            for (q = 0; q < CONV_DSP_PIXELS; ++q)
            {
                /* missing pixels of the last block repeat the last one (results dropped) */
                const int32_t pixel = p0 + (q < n ? q : n - 1);
                if ((cin_g & 3) == 0)
                {
                    conv_expand_direct_dsp(p, d, input, pixel, g * cin_g, buf + 2 * q);
                }
                else
                {
                    conv_gather_s8(p, d, input, pixel, g * cin_g, (int8_t)-p->input_offset, k4,
                                   patch);
                    conv_expand_dsp(patch, k4 >> 2, p->input_offset, buf + 2 * q);
                }
            }
            conv_channels_dsp(p, quant, d, filter, bias, buf, g * cout_g, cout_g, n,
                              output + (size_t)p0 * (size_t)d->output_c);
        }
    }
}

/*
 * The DSP row path (conv_row_shape: filter height 1, groups 1, input channels a multiple of
 * 4; stride and dilation 1 along the width; nsn_conv_rq_ok): GTCRN's int8 convolutions. With
 * one filter row and stride 1, the patch of output pixel x is the contiguous run of input
 * columns x - pad_w .. x - pad_w + filter_w - 1, so up to CONV_ROW_PIXELS pixels' patches are one
 * run of input columns, expanded once to int16 pairs (x + offset; 0 in the padding) instead of
 * once per pixel. The weights are expanded once per call to the same pairs, interleaved per
 * block of four (two, one) output channels. Per pixel and block: one LDRD of inputs and one per
 * channel feed two SMLAD each (1 pixel x 4 channels: 16 MACs in 10 instructions, unrolled by
 * two), then the short requantization (nsn_conv_rq). Scratch: per channel {bias, m, q, e},
 * the expanded weights, the expanded columns.
 */
/* One group of four inputs against `CH` channels' weight pairs (w0, w2), (w1, w3) */
#define CONV_ROW_GROUP1 "ldrd %[x0], %[x1], [%[px]], #8\n\t"                                   \
    "ldrd %[w0], %[w1], [%[pw]], #8\n\t"                                                       \
    "smlad %[a0], %[x0], %[w0], %[a0]\n\t"                                                     \
    "smlad %[a0], %[x1], %[w1], %[a0]\n\t"
#define CONV_ROW_MORE(A) "ldrd %[w0], %[w1], [%[pw]], #8\n\t"                                 \
    "smlad %[" A "], %[x0], %[w0], %[" A "]\n\t"                                               \
    "smlad %[" A "], %[x1], %[w1], %[" A "]\n\t"
#define CONV_ROW_GROUP4 CONV_ROW_GROUP1 CONV_ROW_MORE("a1") CONV_ROW_MORE("a2") CONV_ROW_MORE("a3")
#define CONV_ROW_GROUP2 CONV_ROW_GROUP1 CONV_ROW_MORE("a1")

#define CONV_ROW_ASM(BODY, N, PX, PW)                                                          \
    __asm volatile("tst %[n], #1\n\t"                                                          \
                   "beq 2f\n\t" BODY "2:\n\t"                                                  \
                   "lsrs %[n], %[n], #1\n\t"                                                   \
                   "beq 3f\n\t"                                                                \
                   "1:\n\t" BODY BODY "subs %[n], %[n], #1\n\t"                                \
                   "bne 1b\n\t"                                                                \
                   "3:\n\t"                                                                    \
                   : [a0] "+r"(a[0]), [a1] "+r"(a[1]), [a2] "+r"(a[2]), [a3] "+r"(a[3]),       \
                     [px] "+r"(PX), [pw] "+r"(PW), [n] "+r"(N), [x0] "=&r"(x0),               \
                     [x1] "=&r"(x1), [w0] "=&r"(w0), [w1] "=&r"(w1)                            \
                   :                                                                           \
                   : "cc", "memory")

/* a[0..cb) += patch . channels' weights over n groups (cb 4, 2 or 1) */
static inline void conv_row_dot(const int32_t *px, const int32_t *pw, int32_t n, int32_t cb,
                                int32_t *a)
{
    int32_t x0, x1, w0, w1;
    if (cb == 4)
    {
        CONV_ROW_ASM(CONV_ROW_GROUP4, n, px, pw);
    }
    else if (cb == 2)
    {
        CONV_ROW_ASM(CONV_ROW_GROUP2, n, px, pw);
    }
    else
    {
        CONV_ROW_ASM(CONV_ROW_GROUP1, n, px, pw);
    }
}

/* requantize(u / 2) + zo of channel t = {2 bias, m, q, e}, e >= 1; u = 2 * acc */
static inline int32_t conv_row_out(const int32_t *t, int32_t u)
{
    return nsn_smmlar(u, t[1], t[2] + (u >> 31)) >> t[3];
}

/* the same for any e (0 included) */
static inline int32_t conv_row_out_any(const int32_t *t, int32_t u)
{
    const nsn_conv_rq rq = {t[1], t[2], t[3]};
    return nsn_conv_rq_u(&rq, u);
}

/* Four channels (table t, doubled weights pw) of n pixels, patches px + x * step words apart,
 * outputs out + x * ostride; no activation clamp, e >= 1 on all four; through the centred
 * activation table act when `fused` (a constant in each caller below). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void conv_row_quad_body(const int32_t *t, const int32_t *pw, const int32_t *px,
                                      int32_t groups4, int32_t n, int32_t step, int8_t *out,
                                      int32_t ostride, const int8_t *act, int fused)
{
#define CONV_ROW_ACT(y) (fused ? (int32_t)act[(y)] : (y))
    for (; n > 0; --n)
    {
        int32_t a[4], x0, x1, w0, w1, g = groups4;
        const int32_t *x = px, *w = pw;
        a[0] = t[0];
        a[1] = t[4];
        a[2] = t[8];
        a[3] = t[12];
        CONV_ROW_ASM(CONV_ROW_GROUP4, g, x, w);
        out[0] = (int8_t)CONV_ROW_ACT(nsn_ssat8(conv_row_out(t, a[0])));
        out[1] = (int8_t)CONV_ROW_ACT(nsn_ssat8(conv_row_out(t + 4, a[1])));
        out[2] = (int8_t)CONV_ROW_ACT(nsn_ssat8(conv_row_out(t + 8, a[2])));
        out[3] = (int8_t)CONV_ROW_ACT(nsn_ssat8(conv_row_out(t + 12, a[3])));
        px += step;
        out += ostride;
    }
#undef CONV_ROW_ACT
}

#if defined(__GNUC__)
__attribute__((noinline)) /* its own registers */
#endif
static void conv_row_quad(const int32_t *t, const int32_t *pw, const int32_t *px,
                          int32_t groups4, int32_t n, int32_t step, int8_t *out,
                          int32_t ostride)
{
    conv_row_quad_body(t, pw, px, groups4, n, step, out, ostride, NULL, 0);
}

#if defined(__GNUC__)
__attribute__((noinline)) /* its own registers */
#endif
static void conv_row_quad_act(const int32_t *t, const int32_t *pw, const int32_t *px,
                              int32_t groups4, int32_t n, int32_t step, int8_t *out,
                              int32_t ostride, const int8_t *act)
{
    conv_row_quad_body(t, pw, px, groups4, n, step, out, ostride, act, 1);
}

/* the same for two channels */
#if defined(__GNUC__)
__attribute__((noinline)) /* its own registers */
#endif
static void conv_row_pair(const int32_t *t, const int32_t *pw, const int32_t *px,
                          int32_t groups4, int32_t n, int32_t step, int8_t *out,
                          int32_t ostride, const int8_t *act)
{
    for (; n > 0; --n)
    {
        int32_t a[4], x0, x1, w0, w1, g = groups4;
        const int32_t *x = px, *w = pw;
        a[0] = t[0];
        a[1] = t[4];
        a[2] = 0;
        a[3] = 0;
        CONV_ROW_ASM(CONV_ROW_GROUP2, g, x, w);
        out[0] = (int8_t)nsn_conv_act_apply(act, nsn_ssat8(conv_row_out(t, a[0])));
        out[1] = (int8_t)nsn_conv_act_apply(act, nsn_ssat8(conv_row_out(t + 4, a[1])));
        px += step;
        out += ostride;
    }
}

/* the channel block size at channel c: 4 while four remain, then 2, then 1 */
static inline int32_t conv_row_block(int32_t c, int32_t channels)
{
    const int32_t left = channels - c;
    return left >= 4 ? 4 : (left >= 2 ? 2 : 1);
}

/* the weights of taps kx0, kx0 + kstep, ... < filter_w, as pairs per channel block:
 * [group][channel of the block][(w0, w2), (w1, w3)], doubled (the sums are 2 * acc) */
static void conv_row_weights(const nsn_conv_dims *d, const int8_t *filter, int32_t kx0,
                             int32_t kstep, int32_t *wx)
{
    const int32_t k = conv_patch(d), g4 = d->input_c >> 2;
    const int32_t run = kstep == 1 ? d->filter_w - kx0 : 1; /* taps in one run of groups */
    int32_t c, j, i, cb, kx;
    for (c = 0; c < d->output_c; c += cb)
    {
        cb = conv_row_block(c, d->output_c);
        for (kx = kx0; kx < d->filter_w; kx += kstep * run)
        {
            for (j = kx * g4; j < (kx + run) * g4; ++j)
            {
                for (i = 0; i < cb; ++i)
                {
                    const int32_t v =
                        nsn_read_s8x4(filter + (size_t)(c + i) * (size_t)k + 4 * j);
                    const int32_t lo = __sxtb16(v), hi = nsn_sxtab16_ror8(0, v);
                    *wx++ = __sadd16(lo, lo);
                    *wx++ = __sadd16(hi, hi);
                }
            }
        }
    }
}

/* table[c] = {2 bias, m, q, e}; returns whether every e >= 1 */
static int conv_row_table(const nsn_conv_params *p, const nsn_per_channel_quant_params *quant,
                          const nsn_conv_dims *d, const int32_t *bias, int32_t *table)
{
    int all = 1;
    int32_t c;
    for (c = 0; c < d->output_c; ++c)
    {
        nsn_conv_rq rq;
        nsn_conv_rq_init(&rq, quant->multiplier[c], quant->shift[c], p->output_offset);
        table[4 * c] = bias != NULL ? 2 * bias[c] : 0; /* |bias| < 2^30: nsn_conv_rq_ok */
        table[4 * c + 1] = rq.m;
        table[4 * c + 2] = rq.q;
        table[4 * c + 3] = rq.e;
        all = all && rq.e > 0;
    }
    return all;
}

/* input columns [ix0, ix0 + count) of row xrow (NULL: outside) expanded: per group of four
 * channels (x0 + o, x2 + o), (x1 + o, x3 + o); columns outside the input 0 */
static void conv_row_expand(const nsn_conv_dims *d, const int8_t *xrow, int32_t ix0,
                            int32_t count, int32_t colstep, int32_t offset, int32_t *buf)
{
    const int32_t offset2 = (int32_t)(((uint32_t)offset & 0xFFFFu) * 0x10001u);
    const int32_t groups4 = d->input_c >> 2;
    int32_t ix, j;
    for (ix = ix0; ix < ix0 + count * colstep; ix += colstep)
    {
        if (xrow != NULL && ix >= 0 && ix < d->input_w)
        {
            const int8_t *x = xrow + (size_t)ix * (size_t)d->input_c;
            for (j = 0; j < groups4; ++j)
            {
                const int32_t v = nsn_read_s8x4(x + 4 * j);
                buf[0] = __sxtab16(offset2, v);
                buf[1] = nsn_sxtab16_ror8(offset2, v);
                buf += 2;
            }
        }
        else
        {
            memset(buf, 0, (size_t)groups4 * 8u);
            buf += 2 * groups4;
        }
    }
}

/* All output channels of n pixels from their expanded patches px + x * step words apart;
 * wide: no activation clamp and e >= 1 on every channel. */
static void conv_row_pixels(const nsn_conv_params *p, const nsn_conv_dims *d,
                            const int32_t *table, const int32_t *wx, const int32_t *px,
                            int32_t n, int32_t step, int wide, int32_t groups4,
                            int32_t ostride, int8_t *out)
{
    const int32_t oc = d->output_c;
    const int32_t lo = p->activation_min, hi = p->activation_max;
    const int8_t *const act = nsn_conv_act(p);
    int32_t c = 0, i, cb, x;
    if (wide)
    {
        for (; c + 4 <= oc; c += 4)
        {
            if (act != NULL)
            {
                conv_row_quad_act(table + 4 * c, wx, px, groups4, n, step, out + c, ostride, act);
            }
            else
            {
                conv_row_quad(table + 4 * c, wx, px, groups4, n, step, out + c, ostride);
            }
            wx += 8 * groups4;
        }
        if (c + 2 <= oc)
        {
            conv_row_pair(table + 4 * c, wx, px, groups4, n, step, out + c, ostride, act);
            wx += 4 * groups4;
            c += 2;
        }
    }
    for (; c < oc; c += cb)
    {
        cb = conv_row_block(c, oc);
        for (x = 0; x < n; ++x)
        {
            int32_t a[4];
            for (i = 0; i < cb; ++i)
            {
                a[i] = table[4 * (c + i)];
            }
            conv_row_dot(px + x * step, wx, groups4, cb, a);
            for (i = 0; i < cb; ++i)
            {
                out[x * ostride + c + i] = (int8_t)nsn_conv_act_apply(
                    act, nsn_clamp(conv_row_out_any(table + 4 * (c + i), a[i]), lo, hi));
            }
        }
        wx += 2 * cb * groups4;
    }
}

/* The zero-stuffed input of a transposed convolution (GTCRN's decoder): 0 or 1 when every
 * column of that parity holds the input zero point in every channel (its products are 0, so
 * the taps on it can be skipped exactly), else -1. Checked on the data, once per call. */
static int32_t conv_row_stuffed(const nsn_conv_dims *d, const int8_t *xrow, int32_t offset)
{
    const uint32_t z4 = (uint32_t)(uint8_t)(int8_t)-offset * 0x01010101u;
    const int32_t words = d->input_c >> 2;
    int32_t parity, ix, j;
    for (parity = 1; parity >= 0; --parity)
    {
        int ok = 1;
        for (ix = parity; ok && ix < d->input_w; ix += 2)
        {
            const int8_t *x = xrow + (size_t)ix * (size_t)d->input_c;
            for (j = 0; ok && j < words; ++j)
            {
                ok = (uint32_t)nsn_read_s8x4(x + 4 * j) == z4;
            }
        }
        if (ok)
        {
            return parity;
        }
    }
    return -1;
}

/* The stuffed row (zero columns of parity `zero`, no padding, one output row): per chunk, only
 * the other columns expanded; pixels whose first tap is on a data column take taps 0, 2, ..
 * (weights w0), the others taps 1, 3, .. (w1), each phase with its pixels two apart. */
static void conv_row_sparse(const nsn_conv_params *p, const nsn_conv_dims *d,
                            const int32_t *table, const int32_t *w0, const int32_t *w1,
                            const int8_t *xrow, int32_t zero, int wide, int32_t *cols,
                            int8_t *output)
{
    const int32_t step = d->input_c / 2, g4 = d->input_c >> 2, oc = d->output_c;
    const int32_t data = 1 - zero, kw = d->filter_w;
    int32_t x0;
    for (x0 = 0; x0 < d->output_w; x0 += CONV_ROW_PIXELS)
    {
        const int32_t n = d->output_w - x0 < CONV_ROW_PIXELS ? d->output_w - x0 : CONV_ROW_PIXELS;
        const int32_t c0 = x0 + ((data - x0) & 1); /* first data column of the chunk */
        const int32_t last = x0 + n - 2 + kw;       /* last column the chunk reads */
        const int32_t e0 = c0 - x0, e1 = 1 - e0;    /* first pixel of each phase */
        if (last >= c0)
        {
            conv_row_expand(d, xrow, c0, (last - c0) / 2 + 1, 2, p->input_offset, cols);
        }
        if (e0 < n)
        {
            conv_row_pixels(p, d, table, w0, cols, (n - e0 + 1) >> 1, step, wide,
                            ((kw + 1) >> 1) * g4, 2 * oc, output + (size_t)(x0 + e0) * (size_t)oc);
        }
        if (e1 < n && kw > 1)
        {
            conv_row_pixels(p, d, table, w1, cols + (e1 + 1 - e0) / 2 * step, (n - e1 + 1) >> 1,
                            step, wide, (kw >> 1) * g4, 2 * oc,
                            output + (size_t)(x0 + e1) * (size_t)oc);
        }
    }
}

static void conv_row_dsp(const nsn_conv_params *p, const nsn_per_channel_quant_params *quant,
                         const nsn_conv_dims *d, const int8_t *input, const int8_t *filter,
                         const int32_t *bias, int8_t *output, int32_t *buf)
{
    int32_t *const table = buf;
    int32_t *const wx = table + 4 * d->output_c;
    int32_t *const cols = wx + (d->output_c * conv_patch(d)) / 2;
    const int32_t step = d->input_c / 2; /* words per expanded column */
    const int wide = conv_row_table(p, quant, d, bias, table) && p->activation_min == INT8_MIN &&
                     p->activation_max == INT8_MAX; /* the unrolled blocks take e >= 1 */
    int32_t y, x0;
    if (d->output_h == 1 && d->input_h == 1 && p->pad_h == 0 && p->pad_w == 0 &&
        d->filter_w >= 2 && d->input_w >= 8)
    {
        const int32_t zero = conv_row_stuffed(d, input, p->input_offset);
        if (zero >= 0)
        {
            int32_t *const w1 = wx + ((d->filter_w + 1) >> 1) * d->output_c * d->input_c / 2;
            conv_row_weights(d, filter, 0, 2, wx);
            conv_row_weights(d, filter, 1, 2, w1);
            conv_row_sparse(p, d, table, wx, w1, input, zero, wide, cols, output);
            return;
        }
    }
    conv_row_weights(d, filter, 0, 1, wx);
    for (y = 0; y < d->output_h; ++y)
    {
        const int32_t iy = y * p->stride_h - p->pad_h;
        const int8_t *xrow = iy >= 0 && iy < d->input_h
                                 ? input + (size_t)iy * (size_t)d->input_w * (size_t)d->input_c
                                 : NULL;
        for (x0 = 0; x0 < d->output_w; x0 += CONV_ROW_PIXELS)
        {
            const int32_t n = d->output_w - x0 < CONV_ROW_PIXELS ? d->output_w - x0
                                                                  : CONV_ROW_PIXELS;
            conv_row_expand(d, xrow, x0 - p->pad_w, n - 1 + d->filter_w, 1, p->input_offset,
                            cols);
            conv_row_pixels(p, d, table, wx, cols, n, step, wide, conv_patch(d) >> 2,
                            d->output_c,
                            output + ((size_t)y * (size_t)d->output_w + (size_t)x0) *
                                         (size_t)d->output_c);
        }
    }
}

#endif /* NSN_KERNELS_DSP */

#if defined(NSN_KERNELS_MVE)

/* sums[c] = input_offset * sum of row c, once per call */
static void conv_row_sums_mve(const int8_t *filter, int32_t k, int32_t rows, int32_t offset,
                              int32_t *sums)
{
    int32_t c, i;
    for (c = 0; c < rows; ++c)
    {
        int32_t s = 0;
        for (i = 0; i < k; i += 16)
        {
            const mve_pred16_t pr = vctp8q((uint32_t)(k - i));
            s = vaddvaq_p_s8(s, vldrbq_z_s8(filter + i, pr), pr);
        }
        sums[c] = s * offset;
        filter += k;
    }
}

/* acc[j] += row j . patch for four rows `stride` bytes apart */
#if defined(__GNUC__)
__attribute__((noinline)) /* its own registers: the accumulators stay in them */
#endif
static void conv_dot4_mve(const int8_t *row, int32_t stride, const int8_t *patch, int32_t k,
                          int32_t *acc)
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, i;
    for (i = 0; i < k; i += 16)
    {
        const mve_pred16_t pr = vctp8q((uint32_t)(k - i));
        const int8x16_t x = vldrbq_z_s8(patch + i, pr);
        a0 = vmladavaq_p_s8(a0, x, vldrbq_z_s8(row + i, pr), pr);
        a1 = vmladavaq_p_s8(a1, x, vldrbq_z_s8(row + stride + i, pr), pr);
        a2 = vmladavaq_p_s8(a2, x, vldrbq_z_s8(row + 2 * stride + i, pr), pr);
        a3 = vmladavaq_p_s8(a3, x, vldrbq_z_s8(row + 3 * stride + i, pr), pr);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* acc[0..1] = rows 0 and 1 (`stride` bytes apart) . patch */
static void conv_dot2_mve(const int8_t *row, int32_t stride, const int8_t *patch, int32_t k,
                          int32_t *acc)
{
    int32_t a0 = 0, a1 = 0, i;
    for (i = 0; i < k; i += 16)
    {
        const mve_pred16_t pr = vctp8q((uint32_t)(k - i));
        const int8x16_t x = vldrbq_z_s8(patch + i, pr);
        a0 = vmladavaq_p_s8(a0, x, vldrbq_z_s8(row + i, pr), pr);
        a1 = vmladavaq_p_s8(a1, x, vldrbq_z_s8(row + stride + i, pr), pr);
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* output channels [c0, c0 + count) of one pixel from its int8 patch */
static void conv_channels_mve(const nsn_conv_params *p,
                              const nsn_per_channel_quant_params *quant,
                              const int8_t *filter,
                              const int32_t *bias,
                              const int32_t *sums,
                              const int8_t *patch,
                              int32_t k,
                              int32_t c0,
                              int32_t count,
                              int8_t *output)
{
    const int32x4_t lo = vdupq_n_s32(p->activation_min);
    const int32x4_t hi = vdupq_n_s32(p->activation_max);
    int32_t j;
    for (j = 0; j < count; j += 4)
    {
        const int32_t c = c0 + j;
        const int32_t left = count - j;
        const mve_pred16_t pr = vctp32q((uint32_t)left);
        int32_t acc[4] = {0, 0, 0, 0};
        int32x4_t v;
        if (left >= 4)
        {
            conv_dot4_mve(filter + (size_t)c * (size_t)k, k, patch, k, acc);
        }
        else
        {
            /* the last one to three rows: two together, then one alone */
            int32_t r = 0;
            if (left >= 2)
            {
                conv_dot2_mve(filter + (size_t)c * (size_t)k, k, patch, k, acc);
                r = 2;
            }
            if (r < left)
            {
                int32_t one[2];
                conv_dot2_mve(filter + (size_t)(c + r) * (size_t)k, 0, patch, k, one);
                acc[r] = one[0];
            }
        }
        v = vaddq_s32(vldrwq_s32(acc), vldrwq_z_s32(sums + c, pr));
        if (bias != NULL)
        {
            v = vaddq_s32(v, vldrwq_z_s32(bias + c, pr));
        }
        v = nsn_requantize_mve(v, vldrwq_z_s32(quant->multiplier + c, pr),
                               vldrwq_z_s32(quant->shift + c, pr));
        v = vminq_s32(vmaxq_s32(vaddq_n_s32(v, p->output_offset), lo), hi);
        if (p->activation != NULL)
        {
            v = nsn_conv_act_mve(p->activation, v, pr);
        }
        vstrbq_p_s32(output + c, v, pr);
    }
}

static void conv_mve(const nsn_conv_params *p,
                     const nsn_per_channel_quant_params *quant,
                     const nsn_conv_dims *d,
                     const int8_t *input,
                     const int8_t *filter,
                     const int32_t *bias,
                     int8_t *output,
                     int32_t *buf)
{
    const int32_t k = conv_patch(d);
    const int32_t cin_g = d->input_c / d->groups;
    const int32_t cout_g = d->output_c / d->groups;
    const int32_t pixels = d->output_h * d->output_w;
    int32_t *const sums = buf;
    int8_t *const patch = (int8_t *)(buf + d->output_c);
    int32_t pix, g;
    conv_row_sums_mve(filter, k, d->output_c, p->input_offset, sums);
    for (pix = 0; pix < pixels; ++pix)
    {
        for (g = 0; g < d->groups; ++g)
        {
            /* one filter row, one group, dilation 1: the patch is a run of input columns;
             * read in place when all of it is inside the input */
            const int32_t iy = (pix / d->output_w) * p->stride_h - p->pad_h;
            const int32_t ix = (pix % d->output_w) * p->stride_w - p->pad_w;
            const int8_t *run = patch;
            if (d->filter_h == 1 && d->groups == 1 && p->dilation_w == 1 && iy >= 0 &&
                iy < d->input_h && ix >= 0 && ix + d->filter_w <= d->input_w)
            {
                run = input + ((size_t)iy * (size_t)d->input_w + (size_t)ix) * (size_t)d->input_c;
            }
            else
            {
                conv_gather_s8(p, d, input, pix, g * cin_g, (int8_t)-p->input_offset, k, patch);
            }
            conv_channels_mve(p, quant, filter, bias, sums, run, k, g * cout_g, cout_g,
                              output + (size_t)pix * (size_t)d->output_c);
        }
    }
}

#endif /* NSN_KERNELS_MVE */

int32_t nsn_conv_s8_get_buffer_size_dsp(const nsn_conv_dims *dims)
{
    int32_t k4;
    if (dims == NULL || dims->groups < 1 || dims->filter_h < 1 || dims->filter_w < 1 ||
        dims->input_c < dims->groups)
    {
        return 0;
    }
    k4 = (conv_patch(dims) + 3) & ~3;
    if (conv_row_shape(dims) && conv_row_bytes(dims) > 9 * k4)
    {
        return conv_row_bytes(dims); /* the row path's, or the four patches' */
    }
    return 2 * 4 * k4 + k4; /* four int16 patches, one int8 gather */
}

int32_t nsn_conv_s8_get_buffer_size_mve(const nsn_conv_dims *dims)
{
    if (dims == NULL || dims->groups < 1 || dims->filter_h < 1 || dims->filter_w < 1 ||
        dims->input_c < dims->groups || dims->output_c < 1)
    {
        return 0;
    }
    return 4 * dims->output_c + ((conv_patch(dims) + 3) & ~3);
}

int32_t nsn_conv_s8_get_buffer_size_ref(const nsn_conv_dims *dims)
{
    (void)dims;
    return 0;
}

int32_t nsn_conv_s8_get_buffer_size(const nsn_conv_dims *dims)
{
#if defined(NSN_KERNELS_DSP)
    return nsn_conv_s8_get_buffer_size_dsp(dims);
#elif defined(NSN_KERNELS_MVE)
    return nsn_conv_s8_get_buffer_size_mve(dims);
#else
    return nsn_conv_s8_get_buffer_size_ref(dims);
#endif
}

nsn_status nsn_conv_s8(const nsn_context *ctx,
                       const nsn_conv_params *params,
                       const nsn_per_channel_quant_params *quant,
                       const nsn_conv_dims *dims,
                       const int8_t *input,
                       const int8_t *filter,
                       const int32_t *bias,
                       int8_t *output)
{
    if (!nsn_conv_args_ok(params, quant, dims, input, filter, output) || dims->groups < 1 ||
        dims->input_c % dims->groups != 0 || dims->output_c % dims->groups != 0 ||
        (int64_t)dims->filter_h * dims->filter_w * (dims->input_c / dims->groups) >
            NSN_CONV_MAX_PATCH ||
        params->input_offset < -NSN_FC_MAX_INPUT_OFFSET ||
        params->input_offset > NSN_FC_MAX_INPUT_OFFSET)
    {
        return NSN_ARG_ERROR;
    }
    if (!nsn_conv_scratch_ok(ctx, nsn_conv_s8_get_buffer_size(dims)))
    {
        return NSN_SCRATCH_ERROR;
    }
#if defined(NSN_KERNELS_DSP) || defined(NSN_KERNELS_MVE)
    if (params->input_offset >= -127 && params->input_offset <= 128)
    {
#if defined(NSN_KERNELS_DSP)
        if (conv_row_shape(dims) && params->stride_w == 1 && params->dilation_w == 1 &&
            nsn_conv_rq_ok(quant, bias, dims->output_c, conv_patch(dims), params->output_offset))
        {
            conv_row_dsp(params, quant, dims, input, filter, bias, output, (int32_t *)ctx->buf);
            return NSN_OK;
        }
        conv_dsp(params, quant, dims, input, filter, bias, output, (int32_t *)ctx->buf);
#else
        conv_mve(params, quant, dims, input, filter, bias, output, (int32_t *)ctx->buf);
#endif
        return NSN_OK;
    }
#endif
    conv_reference(params, quant, dims, input, filter, bias, output);
    return NSN_OK;
}
