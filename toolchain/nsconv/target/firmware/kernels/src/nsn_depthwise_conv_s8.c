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
#include <string.h>

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

/* act(clamp(requantize(acc) + output_offset)) for channel c (act: centred table or NULL) */
static inline int8_t dw_out_dsp(const nsn_conv_params *p, const nsn_per_channel_quant_params *q,
                                int32_t c, int32_t acc, const int8_t *act)
{
    const int32_t out = nsn_wrapping_add(nsn_requantize_dsp(acc, q->multiplier[c], q->shift[c]),
                                         p->output_offset);
    return (int8_t)nsn_conv_act_apply(act, nsn_clamp(out, p->activation_min, p->activation_max));
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
    const int8_t *const act = nsn_conv_act(p);
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
                output[c] = dw_out_dsp(p, quant, c, acc[0], act);
                output[c + 1] = dw_out_dsp(p, quant, c + 1, acc[1], act);
                output[c + 2] = dw_out_dsp(p, quant, c + 2, acc[2], act);
                output[c + 3] = dw_out_dsp(p, quant, c + 3, acc[3], act);
            }
            for (; c < ch; ++c)
            {
                const int32_t acc = dw_one_dsp(&win, c, ch, p->input_offset,
                                               bias != NULL ? bias[c] : 0);
                output[c] = dw_out_dsp(p, quant, c, acc, act);
            }
            output += ch;
        }
    }
}

/*
 * The DSP fast path (nsn_depthwise_conv_s8_get_buffer_size > 0: depth multiplier 1, channels a
 * multiple of 4, filter width 3, stride and dilation 1 along the width): per four channels
 * and output row, the filter_h input rows are transposed once into the scratch as int16 rows
 * of one channel (x + input_offset, 0 in the padding), so that two adjacent columns of one
 * channel are one word: SMLAD takes two taps of a row at once. Four outputs of one channel
 * per block: per filter row five loads (columns x..x+5 as three aligned and two unaligned
 * words), the row's weight pair words and eight SMLAD / SMLABB / SMLATB for 12 MACs. The
 * weights enter doubled (int16), so the sum is 2 * acc, as nsn_conv_rq_u takes it.
 */
static int32_t dw_fast_cols(const nsn_conv_dims *d)
{
    return ((d->output_w + 3) & ~3) + 2;
}

static int dw_fast_shape(const nsn_conv_dims *d)
{
    return d->output_c == d->input_c && (d->input_c & 3) == 0 && d->filter_w == 3 &&
           d->filter_h <= 64 && d->output_w <= 4096;
}

/* (c0, c2) and (c1, c3) of four channels at input column ix as int16 + offset; 0 outside */
static inline void dw_fast_col(const nsn_conv_dims *d, const int8_t *xrow, int32_t ix,
                               int32_t offset2, int32_t *lo, int32_t *hi)
{
    if (xrow == NULL || ix < 0 || ix >= d->input_w)
    {
        *lo = 0;
        *hi = 0;
        return;
    }
    *lo = __sxtab16(offset2, nsn_read_s8x4(xrow + (size_t)ix * (size_t)d->input_c));
    *hi = nsn_sxtab16_ror8(offset2, nsn_read_s8x4(xrow + (size_t)ix * (size_t)d->input_c));
}

/* Columns j, j + 1 of four channels' rows: t[k * stride + j / 2] (words) */
static inline void dw_fast_put(int32_t *t, int32_t stride, int32_t l0, int32_t h0, int32_t l1,
                               int32_t h1)
{
    t[0] = nsn_conv_pkhbt(l0, l1);
    t[stride] = nsn_conv_pkhbt(h0, h1);
    t[2 * stride] = nsn_conv_pkhtb(l1, l0);
    t[3 * stride] = nsn_conv_pkhtb(h1, h0);
}

/* n column pairs of four channels from x (ch bytes between columns) into the words t[0..n)
 * of the first channel's row and the same words of the three others, sb bytes apart. */
static void dw_fast_pairs(const int8_t *x, int32_t ch, int32_t n, int32_t offset2, int32_t *t,
                          int32_t sb)
{
    int32_t *t2 = (int32_t *)(void *)((uint8_t *)t + 2 * sb);
    int32_t l0, h0, l1, h1, b;
    __asm volatile("1:\n\t"
                   "ldr %[h0], [%[x]]\n\t"
                   "ldr %[h1], [%[x], %[ch]]\n\t"
                   "add %[x], %[x], %[ch], lsl #1\n\t"
                   "sxtab16 %[l0], %[o], %[h0]\n\t"
                   "sxtab16 %[h0], %[o], %[h0], ror #8\n\t"
                   "sxtab16 %[l1], %[o], %[h1]\n\t"
                   "sxtab16 %[h1], %[o], %[h1], ror #8\n\t"
                   "pkhbt %[b], %[h0], %[h1], lsl #16\n\t"
                   "pkhtb %[h1], %[h1], %[h0], asr #16\n\t"
                   "pkhbt %[h0], %[l0], %[l1], lsl #16\n\t"
                   "pkhtb %[l1], %[l1], %[l0], asr #16\n\t"
                   "str %[b], [%[t], %[sb]]\n\t"
                   "str %[h0], [%[t]], #4\n\t"
                   "str %[h1], [%[t2], %[sb]]\n\t"
                   "str %[l1], [%[t2]], #4\n\t"
                   "subs %[n], %[n], #1\n\t"
                   "bne 1b\n\t"
                   : [x] "+r"(x), [t] "+r"(t), [t2] "+r"(t2), [n] "+r"(n), [l0] "=&r"(l0),
                     [h0] "=&r"(h0), [l1] "=&r"(l1), [h1] "=&r"(h1), [b] "=&r"(b)
                   : [ch] "r"(ch), [o] "r"(offset2), [sb] "r"(sb)
                   : "cc", "memory");
}

/* One input row (NULL: outside the input) of four channels into the words t[k * stride + j/2],
 * int16 columns j = ix + pad_w in [0, cols); columns outside the input are 0. */
static void dw_fast_transpose(const nsn_conv_dims *d, const int8_t *xrow, int32_t pad_w,
                              int32_t offset2, int32_t *t, int32_t stride)
{
    const int32_t cols = dw_fast_cols(d);
    const int32_t ch = d->input_c;
    int32_t j = 0, l0, h0, l1, h1;
    for (; j < cols && (j < pad_w || xrow == NULL); j += 2)
    {
        dw_fast_col(d, xrow, j - pad_w, offset2, &l0, &h0);
        dw_fast_col(d, xrow, j + 1 - pad_w, offset2, &l1, &h1);
        dw_fast_put(t + j / 2, stride, l0, h0, l1, h1);
    }
    if (j < cols && j + 1 - pad_w < d->input_w)
    {
        const int32_t end = cols < d->input_w + pad_w - 1 ? cols : d->input_w + pad_w - 1;
        const int32_t n = (end - j + 1) >> 1; /* column pairs inside the input */
        if (n > 0)
        {
            dw_fast_pairs(xrow + (size_t)(j - pad_w) * (size_t)ch, ch, n, offset2, t + j / 2,
                          4 * stride);
            j += 2 * n;
        }
    }
    for (; j < cols; j += 2)
    {
        dw_fast_col(d, xrow, j - pad_w, offset2, &l0, &h0);
        dw_fast_col(d, xrow, j + 1 - pad_w, offset2, &l1, &h1);
        dw_fast_put(t + j / 2, stride, l0, h0, l1, h1);
    }
}

/* acc[0..3] += four outputs over `rows` filter rows, in C */
static void dw_fast_block(const int32_t *rp, int32_t cols2, const int32_t *wp, int32_t rows,
                          int32_t *acc)
{
    const uint8_t *r8 = (const uint8_t *)rp;
    int32_t r;
    for (r = 0; r < rows; ++r)
    {
        int32_t xa, xb, xc, xu1, xu3;
        memcpy(&xa, r8, 4);
        memcpy(&xb, r8 + 4, 4);
        memcpy(&xc, r8 + 8, 4);
        memcpy(&xu1, r8 + 2, 4);
        memcpy(&xu3, r8 + 6, 4);
        acc[0] = __smlabb(xb, wp[1], __smlad(xa, wp[0], acc[0]));
        acc[1] = __smlatb(xb, wp[1], __smlad(xu1, wp[0], acc[1]));
        acc[2] = __smlabb(xc, wp[1], __smlad(xb, wp[0], acc[2]));
        acc[3] = __smlatb(xc, wp[1], __smlad(xu3, wp[0], acc[3]));
        r8 += cols2;
        wp += 2;
    }
}

/* One filter row of a block of four outputs in dw_fast_channel3's loop: columns x..x+5 as
 * three aligned words (LDM) and two unaligned ones, the row's weight pair words (LDRD from
 * [cx + WOFF]), 12 MACs; then the next row. */
#define DW_FAST_ROWC(WOFF)                                                                     \
    "ldm %[rp], {%[xa], %[xb], %[xc]}\n\t"                                                    \
    "ldrd %[w01], %[w2], [%[cx], #" WOFF "]\n\t"                                               \
    "smlad %[a0], %[xa], %[w01], %[a0]\n\t"                                                    \
    "smlabb %[a0], %[xb], %[w2], %[a0]\n\t"                                                    \
    "smlad %[a2], %[xb], %[w01], %[a2]\n\t"                                                    \
    "smlabb %[a2], %[xc], %[w2], %[a2]\n\t"                                                    \
    "smlatb %[a1], %[xb], %[w2], %[a1]\n\t"                                                    \
    "smlatb %[a3], %[xc], %[w2], %[a3]\n\t"                                                    \
    "ldr %[xu], [%[rp], #2]\n\t"                                                               \
    "smlad %[a1], %[xu], %[w01], %[a1]\n\t"                                                    \
    "ldr %[xu], [%[rp], #6]\n\t"                                                               \
    "smlad %[a3], %[xu], %[w01], %[a3]\n\t"                                                    \
    "add %[rp], %[rp], %[cols2]\n\t"

/* requantize a (2 acc) with m, q, e in xa, xb, xc; SSAT */
#define DW_FAST_RQ(A)                                                                          \
    "add %[w01], %[xb], %[" A "], asr #31\n\t"                                                 \
    "smmlar %[" A "], %[" A "], %[xa], %[w01]\n\t"                                             \
    "asr %[" A "], %[" A "], %[xc]\n\t"                                                        \
    "ssat %[" A "], #8, %[" A "]\n\t"

/* the four results through the centred activation table (in xu, word 3 of the state) */
#define DW_FAST_ACT                                                                            \
    "ldrb %[a0], [%[xu], %[a0]]\n\t"                                                           \
    "ldrb %[a1], [%[xu], %[a1]]\n\t"                                                           \
    "ldrb %[a2], [%[xu], %[a2]]\n\t"                                                           \
    "ldrb %[a3], [%[xu], %[a3]]\n\t"

/* dw_fast_channel3's loop over the full blocks of four outputs; ACT: "" or DW_FAST_ACT */
#define DW_FAST_LOOP(ACT)                                                                      \
    __asm volatile("1:\n\t"                                                                    \
                   "ldr %[a0], [%[cx], #28]\n\t"                                               \
                   "mov %[a1], %[a0]\n\t"                                                      \
                   "mov %[a2], %[a0]\n\t"                                                      \
                   "mov %[a3], %[a0]\n\t"                                                      \
                   DW_FAST_ROWC("32") DW_FAST_ROWC("40") DW_FAST_ROWC("48")                    \
                   "sub %[rp], %[rp], %[cols2], lsl #1\n\t"                                    \
                   "sub %[rp], %[rp], %[cols2]\n\t"                                            \
                   "add %[rp], %[rp], #8\n\t"                                                  \
                   "ldm %[cx], {%[xa], %[xb], %[xc], %[xu]}\n\t"                               \
                   DW_FAST_RQ("a0") DW_FAST_RQ("a1") DW_FAST_RQ("a2") DW_FAST_RQ("a3")         \
                   ACT                                                                         \
                   "ldrd %[w01], %[w2], [%[cx], #16]\n\t"                                      \
                   "strb %[a0], [%[w01]]\n\t"                                                  \
                   "strb %[a1], [%[w01], %[w2]]\n\t"                                           \
                   "add %[w01], %[w01], %[w2], lsl #1\n\t"                                     \
                   "strb %[a2], [%[w01]]\n\t"                                                  \
                   "strb %[a3], [%[w01], %[w2]]\n\t"                                           \
                   "add %[w01], %[w01], %[w2], lsl #1\n\t"                                     \
                   "str %[w01], [%[cx], #16]\n\t"                                              \
                   "ldr %[xu], [%[cx], #24]\n\t"                                               \
                   "cmp %[rp], %[xu]\n\t"                                                      \
                   "bne 1b\n\t"                                                                \
                   : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3),           \
                     [rp] "+r"(rp), [xa] "=&r"(xa), [xb] "=&r"(xb), [xc] "=&r"(xc),           \
                     [xu] "=&r"(xu), [w01] "=&r"(w01), [w2] "=&r"(w2)                        \
                   : [cx] "r"(cx), [cols2] "r"(cols2)                                         \
                   : "cc", "memory")

/* dw_fast_channel3's state, read by its loop: words 0..7, then the weight pairs */
typedef struct
{
    int32_t m, q, e;
    const int8_t *act; /* the centred activation table or NULL (loaded with m, q, e) */
    int8_t *out;
    int32_t ch;
    const int32_t *end; /* the first column word after the full blocks */
    int32_t b2;
    int32_t w[6]; /* [(2 w0, 2 w1), (2 w2, 0)] per filter row */
} dw_fast_state;

/* The outputs of one channel with three filter rows and no activation clamp, out[x * ch] for
 * x < outputs: full blocks of four in one asm loop (MACs, requantization, stores: no spills),
 * the last 1..3 outputs in C. */
#if defined(__GNUC__)
__attribute__((noinline)) /* its own registers */
#endif
static void dw_fast_channel3(const int32_t *t, int32_t cols2, const int32_t *wp, int32_t b2,
                             const nsn_conv_rq *rq, int32_t outputs, int32_t ch, int8_t *out,
                             const int8_t *act)
{
    dw_fast_state st;
    const int32_t *rp = t;
    int32_t i;
    st.m = rq->m;
    st.q = rq->q;
    st.e = rq->e;
    st.b2 = b2;
    st.out = out;
    st.ch = ch;
    st.end = t + 2 * (outputs >> 2);
    st.act = act;
    for (i = 0; i < 6; ++i)
    {
        st.w[i] = wp[i];
    }
    if (outputs >= 4)
    {
        register int32_t xa __asm("r8");
        register int32_t xb __asm("r9");
        register int32_t xc __asm("r10");
        register int32_t xu __asm("r11");
        int32_t a0, a1, a2, a3, w01, w2;
        const dw_fast_state *cx = &st;
        if (act != NULL)
        {
            DW_FAST_LOOP(DW_FAST_ACT);
        }
        else
        {
            DW_FAST_LOOP("");
        }
    }
    if ((outputs & 3) != 0)
    {
        int32_t acc[4] = {b2, b2, b2, b2};
        dw_fast_block(rp, cols2, wp, 3, acc);
        for (i = 0; i < (outputs & 3); ++i)
        {
            st.out[(size_t)i * (size_t)ch] =
                (int8_t)nsn_conv_act_apply(act, nsn_ssat8(nsn_conv_rq_u(rq, acc[i])));
        }
    }
}

/* One channel of one output row: t = its filter_h transposed rows (words), wp = its weight
 * pairs [(2 w0, 2 w1), (2 w2, 0)] per filter row; out[x * ch] for x < output_w, through the
 * centred activation table act (or NULL). */
static void dw_fast_channel(const nsn_conv_params *p, const nsn_conv_dims *d, const int32_t *t,
                            const int32_t *wp, int32_t b2, const nsn_conv_rq *rq, int8_t *out,
                            const int8_t *act)
{
    const int32_t cols2 = 2 * dw_fast_cols(d), ow = d->output_w, fh = d->filter_h;
    const int32_t ch = d->output_c, lo = p->activation_min, hi = p->activation_max;
    int32_t x = 0, q;
    if (fh == 3 && lo == INT8_MIN && hi == INT8_MAX && rq->e > 0)
    {
        dw_fast_channel3(t, cols2, wp, b2, rq, ow, ch, out, act);
        return;
    }
    for (; x < ow; x += 4)
    {
        int32_t acc[4] = {b2, b2, b2, b2};
        dw_fast_block(t + x / 2, cols2, wp, fh, acc);
        for (q = 0; q < 4 && x + q < ow; ++q)
        {
            out[(size_t)(x + q) * (size_t)ch] =
                (int8_t)nsn_conv_act_apply(act, nsn_clamp(nsn_conv_rq_u(rq, acc[q]), lo, hi));
        }
    }
}

/* weight pairs of channels [c, c + 4) into wp[k][row][2], doubled */
static void dw_fast_weights(const nsn_conv_dims *d, const int8_t *filter, int32_t c, int32_t *wp)
{
    const int32_t ch = d->output_c;
    int32_t k, r;
    for (k = 0; k < 4; ++k)
    {
        for (r = 0; r < d->filter_h; ++r)
        {
            const int8_t *f = filter + (size_t)r * 3u * (size_t)ch + (size_t)(c + k);
            *wp++ = (int32_t)(((uint32_t)(2 * f[ch]) << 16) | ((uint32_t)(2 * f[0]) & 0xFFFFu));
            *wp++ = (int32_t)((uint32_t)(2 * f[2 * ch]) & 0xFFFFu);
        }
    }
}

static void dw_fast_dsp(const nsn_conv_params *p, const nsn_per_channel_quant_params *quant,
                        const nsn_conv_dims *d, const int8_t *input, const int8_t *filter,
                        const int32_t *bias, int8_t *output, int32_t *buf)
{
    const int32_t ch = d->output_c, fh = d->filter_h;
    const int32_t row = dw_fast_cols(d) / 2; /* words per transposed row */
    const int32_t stride = fh * row;         /* words between the channels' rows */
    const int32_t offset2 = (int32_t)(((uint32_t)p->input_offset & 0xFFFFu) * 0x10001u);
    int32_t *const wp = buf;
    int32_t *const t = buf + 8 * fh;
    const int8_t *const act = nsn_conv_act(p);
    int32_t y, c, r, k;
    for (y = 0; y < d->output_h; ++y)
    {
        int8_t *const orow = output + (size_t)y * (size_t)d->output_w * (size_t)ch;
        for (c = 0; c < ch; c += 4)
        {
            for (r = 0; r < fh; ++r)
            {
                const int32_t iy = y * p->stride_h - p->pad_h + r * p->dilation_h;
                const int8_t *xrow = iy >= 0 && iy < d->input_h
                                         ? input + (size_t)iy * (size_t)d->input_w * (size_t)ch + c
                                         : NULL;
                dw_fast_transpose(d, xrow, p->pad_w, offset2, t + r * row, stride);
            }
            dw_fast_weights(d, filter, c, wp);
            for (k = 0; k < 4; ++k)
            {
                nsn_conv_rq rq;
                nsn_conv_rq_init(&rq, quant->multiplier[c + k], quant->shift[c + k],
                                 p->output_offset);
                dw_fast_channel(p, d, t + k * stride, wp + 2 * fh * k,
                                bias != NULL ? 2 * bias[c + k] : 0, &rq, orow + c + k, act);
            }
        }
    }
}

#endif /* NSN_KERNELS_DSP */

#if defined(NSN_KERNELS_MVE)

/* Four channels [c, c + 4) of a full 3-wide window (every tap inside the input; channels a
 * multiple of 4, no predication): acc + sum over the taps of w * x (the input offset is in
 * acc already, as offset * sum(w)). */
static inline int32x4_t dw_full3_mve(const dw_window *win, int32_t c, int32_t ch, int32x4_t acc)
{
    int32_t i;
    for (i = 0; i < win->rows; ++i)
    {
        const int8_t *xp = win->x + (size_t)i * (size_t)win->x_row + c;
        const int8_t *wp = win->w + (size_t)i * (size_t)win->w_row + c;
        acc = vaddq_s32(acc, vmulq_s32(vldrbq_s32(xp), vldrbq_s32(wp)));
        acc = vaddq_s32(acc, vmulq_s32(vldrbq_s32(xp + win->x_col), vldrbq_s32(wp + ch)));
        acc = vaddq_s32(acc, vmulq_s32(vldrbq_s32(xp + 2 * win->x_col), vldrbq_s32(wp + 2 * ch)));
    }
    return acc;
}

/* base[c] = bias[c] + input_offset * (sum of channel c's weights), for full windows */
static void dw_base_mve(const nsn_conv_params *p, const nsn_conv_dims *d, const int8_t *filter,
                        const int32_t *bias, int32_t *base)
{
    const int32_t taps = d->filter_h * d->filter_w;
    int32_t c, t;
    for (c = 0; c < d->output_c; ++c)
    {
        int32_t sw = 0;
        for (t = 0; t < taps; ++t)
        {
            sw += filter[(size_t)t * (size_t)d->output_c + (size_t)c];
        }
        base[c] = (bias != NULL ? bias[c] : 0) + p->input_offset * sw;
    }
}

#define DW_MVE_BASE_MAX 64 /* channels of the full-window path (its sums on the stack) */

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
    const int fast = d->filter_w == 3 && (ch & 3) == 0 && ch <= DW_MVE_BASE_MAX;
    int32_t base[DW_MVE_BASE_MAX];
    int32_t y, x, c, i, j;
    dw_window win;
    if (fast)
    {
        dw_base_mve(p, d, filter, bias, base);
    }
    for (y = 0; y < d->output_h; ++y)
    {
        for (x = 0; x < d->output_w; ++x)
        {
            dw_window_at(p, d, input, filter, y, x, &win);
            for (c = 0; c < ch; c += 4)
            {
                const mve_pred16_t pr = vctp32q((uint32_t)(ch - c));
                int32x4_t acc = bias != NULL ? vldrwq_z_s32(bias + c, pr) : vdupq_n_s32(0);
                if (fast && win.rows == d->filter_h && win.cols == 3)
                {
                    acc = dw_full3_mve(&win, c, ch, vldrwq_s32(base + c));
                    i = win.rows; /* done */
                }
                else
                {
                    i = 0;
                }
                for (; i < win.rows; ++i)
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
                acc = vminq_s32(vmaxq_s32(vaddq_n_s32(acc, p->output_offset), lo), hi);
                if (p->activation != NULL)
                {
                    acc = nsn_conv_act_mve(p->activation, acc, pr);
                }
                vstrbq_p_s32(output + c, acc, pr);
            }
            output += ch;
        }
    }
}

#endif /* NSN_KERNELS_MVE */

int32_t nsn_depthwise_conv_s8_get_buffer_size_dsp(const nsn_conv_dims *dims)
{
#if defined(NSN_KERNELS_DSP)
    if (dims != NULL && dims->input_c >= 1 && dims->filter_h >= 1 && dims->output_w >= 1 &&
        dw_fast_shape(dims))
    {
        return 4 * dims->filter_h * (8 + 2 * dw_fast_cols(dims));
    }
#else
    (void)dims;
#endif
    return 0;
}

int32_t nsn_depthwise_conv_s8_get_buffer_size(const nsn_conv_dims *dims)
{
#if defined(NSN_KERNELS_DSP)
    return nsn_depthwise_conv_s8_get_buffer_size_dsp(dims);
#else
    (void)dims;
    return 0;
#endif
}

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
    if (!nsn_conv_scratch_ok(ctx, nsn_depthwise_conv_s8_get_buffer_size(dims)))
    {
        return NSN_SCRATCH_ERROR;
    }
#if defined(NSN_KERNELS_DSP) || defined(NSN_KERNELS_MVE)
    if (dims->output_c == dims->input_c && params->input_offset >= -128 &&
        params->input_offset <= 128)
    {
#if defined(NSN_KERNELS_DSP)
        if (dw_fast_shape(dims) && params->stride_w == 1 && params->dilation_w == 1 &&
            nsn_conv_rq_ok(quant, bias, dims->output_c, 3 * dims->filter_h,
                           params->output_offset))
        {
            dw_fast_dsp(params, quant, dims, input, filter, bias, output, (int32_t *)ctx->buf);
            return NSN_OK;
        }
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
