/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 16x8 CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: int16 activations (zero point 0), int8
 * per-channel weights, int64 bias, int64 sums, TFLM's int64 MultiplyByQuantizedMultiplier
 * (reference_integer_ops ConvPerChannel / DepthwiseConvPerChannel / FullyConnectedPerChannel
 * for int16).
 *
 * A product of an int8 weight and an int16 input is at most 2^22 in magnitude, so sums of up
 * to 511 products are exact in int32: the DSP paths accumulate in 32 bits (SMLAD) and add the
 * int64 bias after; longer rows take the portable loop.
 *   CONV_2D, DSP: the int8 kernel's four-pixel loop (nsn_conv_internal.h): each patch gathered
 *     as int16 (padding taps 0) and split into (x0, x2), (x1, x3) pairs by PKHBT / PKHTB, so
 *     that SXTB16 weight pairs meet them in SMLAD: 16 MACs per 12 instructions.
 *   FULLY_CONNECTED, DSP: two rows per pass; the weight pairs are reordered by PKHBT / PKHTB to
 *     meet the input's natural pairs (no scratch).
 *   DEPTHWISE_CONV_2D, DSP (depth multiplier 1, channels a multiple of 4): four channels per
 *     step, input pairs as they lie, weight pairs repacked, SMLABB / SMLATT per channel.
 *   MVE: portable.
 */
#include "nsn_nnfunctions_s16.h"

#include <stddef.h>
#include <string.h>

#include "nsn_conv_internal.h"
#include "nsn_s16_internal.h"

#if (defined(NSN_KERNELS_DSP) || defined(NSN_KERNELS_MVE)) && !defined(__OPTIMIZE__)
#error "nsconv kernels: the dsp and mve paths need an optimized build (-O1 or higher); build with -DNSN_KERNELS_FORCE_REFERENCE to choose the portable path"
#endif

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
           params->activation == NULL &&
           (int64_t)dims->filter_h * dims->filter_w * dims->input_c <= NSN_CONV_MAX_PATCH;
}

/* the patch length of a CONV_2D group */
static int32_t conv16_patch(const nsn_conv_dims *d)
{
    return d->filter_h * d->filter_w * (d->input_c / d->groups);
}

#define CONV16_MAX_SUM 511 /* products per int32 sum on the DSP paths */

#if defined(NSN_KERNELS_DSP)

/* nsn_requantize_s64(acc + bias, m, s) with the channel's constants computed once:
 * reduced multiplier rm, t = 15 - s and k = bias * rm + 2^(t - 1) (all modulo 2^64, as TFLM's
 * int64 arithmetic wraps). Per output one 32x32 -> 64 multiply-accumulate, and the low word
 * of the 64-bit value shifted right by t taken from its two halves. */
typedef struct
{
    int32_t rm;
    int32_t t;
    uint64_t k;
} s16_req;

static inline void s16_req_init(s16_req *r, int64_t bias, int32_t m, int32_t s)
{
    r->rm = m < 0x7FFF0000 ? (m + (1 << 15)) >> 16 : 0x7FFF;
    r->t = 15 - s;
    r->k = (uint64_t)bias * (uint64_t)(int64_t)r->rm + (UINT64_C(1) << (r->t - 1));
}

static inline int16_t s16_req_apply(const s16_req *r, int32_t acc, int32_t lo, int32_t hi)
{
    uint32_t xl = (uint32_t)r->k;
    uint32_t xh = (uint32_t)(r->k >> 32);
    int32_t v;
    /* (xh:xl) += acc * rm, one SMLAL (GCC widens the int64 product to a 64x64 multiply) */
    __asm("smlal %0, %1, %2, %3" : "+r"(xl), "+r"(xh) : "r"(acc), "r"(r->rm));
    v = r->t < 32 ? (int32_t)((xl >> r->t) | (xh << (32 - r->t))) : (int32_t)xh >> (r->t - 32);
    return (int16_t)nsn_clamp(v, lo, hi);
}

#endif /* NSN_KERNELS_DSP */

#if defined(NSN_KERNELS_DSP) || defined(NSN_KERNELS_MVE)

static inline int32_t read_s16x2(const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The int16 patch of output pixel `pixel`, channels [cin0, cin0 + cin_g) of every tap; taps
 * outside the input and the slack up to len hold 0 (the int16 zero point). */
static void conv16_gather(const nsn_conv_params *p, const nsn_conv_dims *d, const int16_t *input,
                          int32_t pixel, int32_t cin0, int32_t len, int16_t *dst)
{
    const int32_t cin_g = d->input_c / d->groups;
    const int32_t iy0 = (pixel / d->output_w) * p->stride_h - p->pad_h;
    const int32_t ix0 = (pixel % d->output_w) * p->stride_w - p->pad_w;
    int16_t *const end = dst + len;
    int32_t ky, kx, i;
    for (ky = 0; ky < d->filter_h; ++ky)
    {
        const int32_t iy = iy0 + ky * p->dilation_h;
        for (kx = 0; kx < d->filter_w; ++kx)
        {
            const int32_t ix = ix0 + kx * p->dilation_w;
            if (iy >= 0 && iy < d->input_h && ix >= 0 && ix < d->input_w)
            {
                const int16_t *src =
                    input + ((size_t)iy * (size_t)d->input_w + (size_t)ix) * (size_t)d->input_c +
                    cin0;
                for (i = 0; i + 2 <= cin_g; i += 2) /* two values per word */
                {
                    const int32_t v = read_s16x2(src + i);
                    memcpy(dst + i, &v, sizeof v);
                }
                if (i < cin_g)
                {
                    dst[i] = src[i];
                }
            }
            else
            {
                for (i = 0; i < cin_g; ++i)
                {
                    dst[i] = 0;
                }
            }
            dst += cin_g;
        }
    }
    while (dst < end)
    {
        *dst++ = 0;
    }
}

/* The patch of output pixel (y, x) where it lies in the input as it is (one group, one kernel
 * row, taps inside, and the element read past an odd patch still inside the input), or NULL */
static inline const int16_t *conv16_direct(const nsn_conv_params *p, const nsn_conv_dims *d,
                                           const int16_t *input, int32_t y, int32_t x, int32_t len)
{
    const int32_t iy = y * p->stride_h - p->pad_h;
    const int32_t ix = x * p->stride_w - p->pad_w;
    size_t at;
    if (d->groups != 1 || d->filter_h != 1 || (d->filter_w > 1 && p->dilation_w != 1) ||
        iy < 0 || iy >= d->input_h || ix < 0 || ix + d->filter_w > d->input_w)
    {
        return NULL;
    }
    at = ((size_t)iy * (size_t)d->input_w + (size_t)ix) * (size_t)d->input_c;
    if (at + (size_t)len > (size_t)d->input_h * (size_t)d->input_w * (size_t)d->input_c)
    {
        return NULL;
    }
    return input + at;
}

/* The 16x8 requantization in 32 bits, where it is exact: with the bias in the int32 sum
 * (|bias| + patch * 2^22 < 2^31) and 16 <= t = 15 - shift <= 31,
 *     ((acc + bias) * rm + 2^(t-1)) >> t = SMMULR(acc + bias, rm * 2^(32 - t))
 * (rm <= 0x7FFF, so rm * 2^16 fits; |acc + bias| * rm < 2^46, so the int32 result is not
 * truncated; SMMULR adds 2^31 to the 64-bit product and keeps its high word). */
/* Channel c's rm * 2^(32 - t) and int32 bias; 0 when outside the bounds above */
static int s16_req32_one(const nsn_per_channel_quant_params *quant, const int64_t *bias,
                         int32_t c, int32_t patch, int32_t *rm_shifted, int32_t *bias32)
{
    const int64_t b_max = (INT64_C(1) << 31) - ((int64_t)patch << 22);
    const int32_t m = quant->multiplier[c];
    const int32_t t = 15 - quant->shift[c];
    const int64_t b = bias != NULL ? bias[c] : 0;
    const int32_t rm = m < 0x7FFF0000 ? (m + (1 << 15)) >> 16 : 0x7FFF;
    if (t < 16 || t > 31 || rm < 0 || b <= -b_max || b >= b_max)
    {
        *rm_shifted = 0;
        *bias32 = 0;
        return 0;
    }
    *rm_shifted = (int32_t)((uint32_t)rm << (32 - t));
    *bias32 = (int32_t)b;
    return 1;
}

static inline int32_t s16_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* s16_req32_one for up to four channels; ok = 0 when a channel is outside: s16_req then. */
typedef struct
{
    int32_t rm[4];
    int32_t bias[4];
    int ok;
} s16_req32;

static void s16_req32_init(s16_req32 *r, const nsn_per_channel_quant_params *quant,
                           const int64_t *bias, int32_t c0, int32_t nch, int32_t patch)
{
    int32_t q;
    r->ok = 1;
    for (q = 0; q < 4; ++q)
    {
        r->ok &= s16_req32_one(quant, bias, c0 + (q < nch ? q : 0), patch, &r->rm[q],
                               &r->bias[q]);
    }
    for (q = 0; q < 4 && !r->ok; ++q)
    {
        r->bias[q] = 0; /* the int64 way adds the bias itself */
    }
}

#endif /* NSN_KERNELS_DSP || NSN_KERNELS_MVE */

#if defined(NSN_KERNELS_DSP)

/* groups4 groups of four int16 -> (x0, x2), (x1, x3) words, 2 * CONV_DSP_PIXELS words apart */
static void conv16_expand(const int16_t *x, int32_t groups4, int32_t *buf)
{
    for (; groups4 > 0; --groups4)
    {
        const int32_t x01 = read_s16x2(x);
        const int32_t x23 = read_s16x2(x + 2);
        x += 4;
        buf[0] = nsn_conv_pkhbt(x01, x23);
        buf[1] = nsn_conv_pkhtb(x23, x01);
        buf += 2 * CONV_DSP_PIXELS;
    }
}

/* Channels [c0, c0 + nch) (nch <= 4, rows k weights apart from row0) widened for
 * conv16_dot1x4: for each pair j of the patch, four words (w[2j], w[2j + 1]) of channels
 * c0 .. c0 + 3; a weight past an odd end, and the channels from nch on, are 0. */
static void conv16_widen4(const int8_t *row0, int32_t k, int32_t nch, int32_t *wbuf)
{
    const int32_t pairs = (k + 1) >> 1;
    int32_t q, j;
    for (q = 0; q < 4; ++q)
    {
        const int8_t *row = row0 + (size_t)q * (size_t)k;
        int32_t *dst = wbuf + q;
        if (q >= nch)
        {
            for (j = 0; j < pairs; ++j)
            {
                dst[4 * j] = 0;
            }
            continue;
        }
        for (j = 0; j + 4 <= k; j += 4) /* (w0, w2), (w1, w3) -> (w0, w1), (w2, w3) */
        {
            const int32_t w = nsn_read_s8x4(row + j);
            const int32_t e = __sxtb16(w), o = nsn_sxtab16_ror8(0, w);
            dst[2 * j] = nsn_conv_pkhbt(e, o);
            dst[2 * j + 4] = nsn_conv_pkhtb(o, e);
        }
        for (; j < k; j += 2)
        {
            const int32_t hi = j + 1 < k ? row[j + 1] : 0;
            dst[2 * j] = (int32_t)((uint32_t)(uint16_t)row[j] | ((uint32_t)hi << 16));
        }
    }
}

/* One input pair against the four channels' weight pairs: 8 MACs. */
#define CONV16_MAC_PAIR                                                                        \
    "ldr %[x], [%[px]], #4\n\t"                                                                \
    "ldm %[pw]!, {%[w0], %[w1], %[w2], %[w3]}\n\t"                                            \
    "smlad %[a0], %[w0], %[x], %[a0]\n\t"                                                      \
    "smlad %[a1], %[w1], %[x], %[a1]\n\t"                                                      \
    "smlad %[a2], %[w2], %[x], %[a2]\n\t"                                                      \
    "smlad %[a3], %[w3], %[x], %[a3]\n\t"

/* acc[q] += sum over `pairs` input pairs (natural order, any 2-byte alignment) of the widened
 * weights of channel q (conv16_widen4). w0..w3 are fixed ascending registers for LDM. */
static inline void conv16_dot1x4(const int16_t *px, const int32_t *pw, int32_t pairs,
                                 int32_t *acc)
{
    register int32_t w0 __asm("r8");
    register int32_t w1 __asm("r9");
    register int32_t w2 __asm("r10");
    register int32_t w3 __asm("r11");
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], x;
    int32_t n = pairs >> 1;
    if ((pairs & 1) != 0)
    {
        __asm volatile(CONV16_MAC_PAIR
                       : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                         [px] "+r"(px), [pw] "+r"(pw), [x] "=&r"(x), [w0] "=&r"(w0),
                         [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3)
                       :
                       : "memory");
    }
    if (n > 0)
    {
        __asm volatile("1:\n\t" CONV16_MAC_PAIR CONV16_MAC_PAIR "subs %[n], %[n], #1\n\t"
                       "bne 1b\n\t"
                       : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                         [px] "+r"(px), [pw] "+r"(pw), [n] "+r"(n), [x] "=&r"(x),
                         [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3)
                       :
                       : "cc", "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Two input pairs (one LDRD: x 4-byte aligned) against the four channels' weight pairs */
#define CONV16_MAC_2PAIRS                                                                      \
    "ldrd %[x], %[y], [%[px]], #8\n\t"                                                         \
    "ldm %[pw]!, {%[w0], %[w1], %[w2], %[w3]}\n\t"                                            \
    "smlad %[a0], %[w0], %[x], %[a0]\n\t"                                                      \
    "smlad %[a1], %[w1], %[x], %[a1]\n\t"                                                      \
    "smlad %[a2], %[w2], %[x], %[a2]\n\t"                                                      \
    "smlad %[a3], %[w3], %[x], %[a3]\n\t"                                                      \
    "ldm %[pw]!, {%[w0], %[w1], %[w2], %[w3]}\n\t"                                            \
    "smlad %[a0], %[w0], %[y], %[a0]\n\t"                                                      \
    "smlad %[a1], %[w1], %[y], %[a1]\n\t"                                                      \
    "smlad %[a2], %[w2], %[y], %[a2]\n\t"                                                      \
    "smlad %[a3], %[w3], %[y], %[a3]\n\t"

/* conv16_dot1x4 for a 4-byte aligned patch: two pairs per load, four per iteration */
static inline void conv16_dot1x4_aligned(const int16_t *px, const int32_t *pw, int32_t pairs,
                                         int32_t *acc)
{
    register int32_t w0 __asm("r8");
    register int32_t w1 __asm("r9");
    register int32_t w2 __asm("r10");
    register int32_t w3 __asm("r11");
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], x, y;
    int32_t n = pairs >> 2;
    if (n > 0)
    {
        __asm volatile("1:\n\t" CONV16_MAC_2PAIRS CONV16_MAC_2PAIRS "subs %[n], %[n], #1\n\t"
                       "bne 1b\n\t"
                       : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                         [px] "+r"(px), [pw] "+r"(pw), [n] "+r"(n), [x] "=&r"(x), [y] "=&r"(y),
                         [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3)
                       :
                       : "cc", "memory");
    }
    if ((pairs & 2) != 0)
    {
        __asm volatile(CONV16_MAC_2PAIRS
                       : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                         [px] "+r"(px), [pw] "+r"(pw), [x] "=&r"(x), [y] "=&r"(y),
                         [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3)
                       :
                       : "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    if ((pairs & 1) != 0)
    {
        conv16_dot1x4(px, pw, 1, acc);
    }
}

/* out[q] = the requantized acc[q] (the bias in it), q < nch */
static inline void s16_req32_store(const s16_req32 *r, const int32_t *acc, int32_t nch,
                                   const nsn_conv_params *p, int16_t *out)
{
    int32_t q;
    if (nch == 4 && p->activation_min == INT16_MIN && p->activation_max == INT16_MAX)
    {
        out[0] = (int16_t)nsn_ssat16(s16_smmulr(acc[0], r->rm[0]));
        out[1] = (int16_t)nsn_ssat16(s16_smmulr(acc[1], r->rm[1]));
        out[2] = (int16_t)nsn_ssat16(s16_smmulr(acc[2], r->rm[2]));
        out[3] = (int16_t)nsn_ssat16(s16_smmulr(acc[3], r->rm[3]));
        return;
    }
    for (q = 0; q < nch; ++q)
    {
        const int32_t v = nsn_ssat16(s16_smmulr(acc[q], r->rm[q]));
        out[q] = (int16_t)nsn_clamp(v, p->activation_min, p->activation_max);
    }
}

/* out[q] = the requantized acc[q] (no bias in it), q < nch: the int64 way */
static void s16_req_store(const s16_req *r, const int32_t *acc, int32_t nch,
                          const nsn_conv_params *p, int16_t *out)
{
    int32_t q;
    for (q = 0; q < nch; ++q)
    {
        out[q] = s16_req_apply(&r[q], acc[q], p->activation_min, p->activation_max);
    }
}

/* The first and the end output column whose patches conv16_direct would return, row y */
static void conv16_direct_cols(const nsn_conv_params *p, const nsn_conv_dims *d, int32_t y,
                               int32_t len, int32_t *x0, int32_t *x1)
{
    const int32_t iy = y * p->stride_h - p->pad_h;
    const int32_t rest = (d->input_h - iy) * d->input_w * d->input_c - len; /* ix * C <= rest */
    int32_t hi;
    *x0 = (p->pad_w + p->stride_w - 1) / p->stride_w;
    *x1 = *x0;
    if (d->groups != 1 || d->filter_h != 1 || (d->filter_w > 1 && p->dilation_w != 1) ||
        iy < 0 || iy >= d->input_h || rest < 0)
    {
        return;
    }
    hi = d->input_w - d->filter_w; /* ix <= hi */
    hi = rest / d->input_c < hi ? rest / d->input_c : hi;
    if (hi + p->pad_w >= 0)
    {
        *x1 = (hi + p->pad_w) / p->stride_w + 1;
        *x1 = *x1 < d->output_w ? *x1 : d->output_w;
        *x1 = *x1 > *x0 ? *x1 : *x0;
    }
}

/* count output pixels of four channels (full int16 range, s16_req32), patches `step`
 * elements apart from x: the common case of conv16_wide_block, kept apart so that the
 * compiler keeps its state in registers. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void conv16_run4(const int16_t *x, size_t step, int32_t count, const int32_t *w,
                        int32_t pairs, const s16_req32 *r, int16_t *out, size_t out_step)
{
    const int aligned = ((uintptr_t)x & 3u) == 0 && (step & 1u) == 0;
    for (; count > 0; --count)
    {
        int32_t acc[4];
        acc[0] = r->bias[0];
        acc[1] = r->bias[1];
        acc[2] = r->bias[2];
        acc[3] = r->bias[3];
        if (aligned)
        {
            conv16_dot1x4_aligned(x, w, pairs, acc);
        }
        else
        {
            conv16_dot1x4(x, w, pairs, acc);
        }
        {
            /* int16 pairs (SSAT #16 keeps the PKHBT halves exact), two word stores */
            const int32_t lo = nsn_conv_pkhbt(nsn_ssat16(s16_smmulr(acc[0], r->rm[0])),
                                       nsn_ssat16(s16_smmulr(acc[1], r->rm[1])));
            const int32_t hi = nsn_conv_pkhbt(nsn_ssat16(s16_smmulr(acc[2], r->rm[2])),
                                       nsn_ssat16(s16_smmulr(acc[3], r->rm[3])));
            memcpy(out, &lo, sizeof lo);
            memcpy(out + 2, &hi, sizeof hi);
        }
        x += step;
        out += out_step;
    }
}

/* One block of nch <= 4 channels of group g, weights widened in buf: every output pixel. */
static void conv16_wide_block(const nsn_conv_params *p, const nsn_conv_dims *d,
                              const int16_t *input, const s16_req *r, const s16_req32 *r32,
                              int32_t g, int32_t nch, int32_t *buf, int16_t *out)
{
    const int32_t pairs = (conv16_patch(d) + 1) >> 1;
    const size_t step = (size_t)p->stride_w * (size_t)d->input_c;
    int16_t *const patch = (int16_t *)(buf + 4 * pairs);
    const int fast = r32->ok && nch == 4 && p->activation_min == INT16_MIN &&
                     p->activation_max == INT16_MAX;
    int32_t y, x, x0, x1;
    for (y = 0; y < d->output_h; ++y)
    {
        const int16_t *row = input;
        conv16_direct_cols(p, d, y, 2 * pairs, &x0, &x1);
        if (x1 > x0) /* the patch of column x0, then step by step */
        {
            row += ((size_t)(y * p->stride_h - p->pad_h) * (size_t)d->input_w +
                    (size_t)(x0 * p->stride_w - p->pad_w)) * (size_t)d->input_c;
        }
        if (fast && x1 > x0)
        {
            conv16_run4(row, step, x1 - x0, buf, pairs, r32, out + (size_t)x0 * (size_t)d->output_c,
                        (size_t)d->output_c);
        }
        for (x = 0; x < d->output_w; ++x)
        {
            const int16_t *xp = patch;
            if (fast && x == x0 && x1 > x0)
            {
                out += (size_t)(x1 - x0) * (size_t)d->output_c;
                x = x1 - 1;
                continue;
            }
            int32_t acc[4] = {r32->bias[0], r32->bias[1], r32->bias[2], r32->bias[3]};
            if (x >= x0 && x < x1)
            {
                xp = row + (size_t)(x - x0) * step;
            }
            else
            {
                conv16_gather(p, d, input, y * d->output_w + x, g * (d->input_c / d->groups),
                              2 * pairs, patch);
            }
            conv16_dot1x4(xp, buf, pairs, acc);
            if (r32->ok)
            {
                s16_req32_store(r32, acc, nch, p, out);
            }
            else
            {
                s16_req_store(r, acc, nch, p, out);
            }
            out += d->output_c;
        }
    }
}

/* One pixel at a time against four channels whose weights are widened once (conv16_widen4):
 * for many pixels per weight. Scratch: 4 * pairs words of weights, then a gathered patch. */
static void conv16_wide_dsp(const nsn_conv_params *p, const nsn_per_channel_quant_params *quant,
                            const nsn_conv_dims *d, const int16_t *input, const int8_t *filter,
                            const int64_t *bias, int16_t *output, int32_t *buf)
{
    const int32_t k = conv16_patch(d);
    const int32_t cout_g = d->output_c / d->groups;
    int32_t c0, q, nch;
    for (c0 = 0; c0 < d->output_c; c0 += nch) /* a group's last block may be short */
    {
        const int32_t g = c0 / cout_g;
        s16_req r[4];
        s16_req32 r32;
        nch = (g + 1) * cout_g - c0 < 4 ? (g + 1) * cout_g - c0 : 4;
        conv16_widen4(filter + (size_t)c0 * (size_t)k, k, nch, buf);
        for (q = 0; q < nch; ++q)
        {
            s16_req_init(&r[q], bias != NULL ? bias[c0 + q] : 0, quant->multiplier[c0 + q],
                         quant->shift[c0 + q]);
        }
        s16_req32_init(&r32, quant, bias, c0, nch, k);
        conv16_wide_block(p, d, input, r, &r32, g, nch, buf, output + c0);
    }
}

/* One weight word against three pixels' pair words (the 4-pixel layout, the fourth pixel's
 * two words skipped): 12 MACs. */
#define CONV16_MAC3_WORD                                                                       \
    "ldr %[w], [%[pw]], #4\n\t"                                                                \
    "sxtb16 %[wa], %[w]\n\t"                                                                   \
    "sxtb16 %[w], %[w], ror #8\n\t"                                                            \
    "ldm %[xb]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"                                            \
    "smlad %[a0], %[wa], %[x0], %[a0]\n\t"                                                     \
    "smlad %[a0], %[w], %[x1], %[a0]\n\t"                                                      \
    "smlad %[a1], %[wa], %[x2], %[a1]\n\t"                                                     \
    "smlad %[a1], %[w], %[x3], %[a1]\n\t"                                                      \
    "ldrd %[x0], %[x1], [%[xb]], #16\n\t"                                                      \
    "smlad %[a2], %[wa], %[x0], %[a2]\n\t"                                                     \
    "smlad %[a2], %[w], %[x1], %[a2]\n\t"

/* conv_dot4_dsp for three pixels: acc[0..2] += row . patch q over `words` weight words */
static inline const int8_t *conv16_dot3_dsp(const int8_t *row, const int32_t *xbuf,
                                            int32_t words, int32_t *acc)
{
    register int32_t x0 __asm("r8");
    register int32_t x1 __asm("r9");
    register int32_t x2 __asm("r10");
    register int32_t x3 __asm("r11");
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2];
    int32_t w, wa;
    const int32_t *xb = xbuf;
    int32_t n = words >> 1;
    if ((words & 1) != 0)
    {
        __asm volatile(CONV16_MAC3_WORD
                       : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [pw] "+r"(row),
                         [xb] "+r"(xb), [w] "=&r"(w), [wa] "=&r"(wa), [x0] "=&r"(x0),
                         [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3)
                       :
                       : "memory");
    }
    if (n > 0)
    {
        __asm volatile("1:\n\t" CONV16_MAC3_WORD CONV16_MAC3_WORD "subs %[n], %[n], #1\n\t"
                       "bne 1b\n\t"
                       : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [pw] "+r"(row),
                         [xb] "+r"(xb), [n] "+r"(n), [w] "=&r"(w), [wa] "=&r"(wa),
                         [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3)
                       :
                       : "cc", "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    return row;
}

/* Channels [c0, c1) of three pixels (patch k a multiple of 4, full int16 range, 32-bit
 * requantization): the batched FC of three rows, kept apart so that the compiler keeps its
 * state in registers. Returns the first channel outside s16_req32_one's bounds (or c1). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int32_t conv16_rows3(const nsn_per_channel_quant_params *quant, const int64_t *bias,
                            const int8_t *filter, int32_t k, const int32_t *buf, int32_t c0,
                            int32_t c1, int16_t *out, size_t step)
{
    int32_t c;
    for (c = c0; c < c1; ++c)
    {
        int32_t rm, acc[3];
        if (!s16_req32_one(quant, bias, c, k, &rm, &acc[0]))
        {
            break;
        }
        acc[1] = acc[2] = acc[0];
        (void)conv16_dot3_dsp(filter + (size_t)c * (size_t)k, buf, k >> 2, acc);
        out[c] = (int16_t)nsn_ssat16(s16_smmulr(acc[0], rm));
        out[step + (size_t)c] = (int16_t)nsn_ssat16(s16_smmulr(acc[1], rm));
        out[2 * step + (size_t)c] = (int16_t)nsn_ssat16(s16_smmulr(acc[2], rm));
    }
    return c;
}

/* Channels [c0, c1) of a block of n <= 4 pixels whose patches are expanded in buf */
static void conv16_block4(const nsn_conv_params *p, const nsn_per_channel_quant_params *quant,
                          const nsn_conv_dims *d, const int8_t *filter, const int64_t *bias,
                          const int32_t *buf, int32_t c0, int32_t c1, int32_t n, int16_t *out)
{
    const int32_t k = conv16_patch(d);
    int32_t c = c0, q;
    if (n == 3 && (k & 3) == 0 && p->activation_min == INT16_MIN && p->activation_max == INT16_MAX)
    {
        c = conv16_rows3(quant, bias, filter, k, buf, c0, c1, out, (size_t)d->output_c);
    }
    for (; c < c1; ++c)
    {
        int32_t rm, b, acc[CONV_DSP_PIXELS];
        const int ok = s16_req32_one(quant, bias, c, k, &rm, &b);
        const int8_t *row;
        acc[0] = acc[1] = acc[2] = acc[3] = b;
        row = n == 3 ? conv16_dot3_dsp(filter + (size_t)c * (size_t)k, buf, k >> 2, acc)
                     : conv_dot4_dsp(filter + (size_t)c * (size_t)k, buf, k >> 2, acc);
        if ((k & 3) != 0)
        {
            conv_tail_dsp(row, k & 3, buf + (k >> 2) * 2 * CONV_DSP_PIXELS, acc);
        }
        if (ok)
        {
            for (q = 0; q < n; ++q)
            {
                out[(size_t)q * (size_t)d->output_c + (size_t)c] = (int16_t)nsn_clamp(
                    nsn_ssat16(s16_smmulr(acc[q], rm)), p->activation_min, p->activation_max);
            }
            continue;
        }
        {
            s16_req r;
            s16_req_init(&r, bias != NULL ? bias[c] : 0, quant->multiplier[c], quant->shift[c]);
            for (q = 0; q < n; ++q)
            {
                out[(size_t)q * (size_t)d->output_c + (size_t)c] =
                    s16_req_apply(&r, acc[q], p->activation_min, p->activation_max);
            }
        }
    }
}

/* Four pixels at a time (their patches expanded to (x0, x2), (x1, x3) pairs) against one
 * weight row: for few pixels per weight. */
static void conv16_dsp(const nsn_conv_params *p, const nsn_per_channel_quant_params *quant,
                       const nsn_conv_dims *d, const int16_t *input, const int8_t *filter,
                       const int64_t *bias, int16_t *output, int32_t *buf)
{
    const int32_t k = conv16_patch(d);
    const int32_t k4 = (k + 3) & ~3;
    const int32_t cin_g = d->input_c / d->groups;
    const int32_t cout_g = d->output_c / d->groups;
    const int32_t pixels = d->output_h * d->output_w;
    int16_t *const patch = (int16_t *)(buf + 2 * k4);
    int32_t p0, g, q;
    for (p0 = 0; p0 < pixels; p0 += CONV_DSP_PIXELS)
    {
        const int32_t n = pixels - p0 < CONV_DSP_PIXELS ? pixels - p0 : CONV_DSP_PIXELS;
        for (g = 0; g < d->groups; ++g)
        {
            for (q = 0; q < CONV_DSP_PIXELS; ++q)
            {
                const int32_t pixel = p0 + (q < n ? q : n - 1);
                const int16_t *xp = (k & 3) == 0 ? conv16_direct(p, d, input, pixel / d->output_w,
                                                                 pixel % d->output_w, k)
                                                 : NULL;
                if (xp == NULL)
                {
                    conv16_gather(p, d, input, pixel, g * cin_g, k4, patch);
                    xp = patch;
                }
                conv16_expand(xp, k4 >> 2, buf + 2 * q);
            }
            conv16_block4(p, quant, d, filter, bias, buf, g * cout_g, (g + 1) * cout_g, n,
                          output + (size_t)p0 * (size_t)d->output_c);
        }
    }
}

/* two rows against the natural input pairs: weight words reordered to (w0, w1), (w2, w3) */
static void fc16_rows_dsp(const int8_t *r0, const int8_t *r1, const int16_t *x, int32_t n,
                          int32_t *acc0, int32_t *acc1)
{
    int32_t a0 = 0, a1 = 0, i;
    for (i = 0; i + 4 <= n; i += 4)
    {
        const int32_t x01 = read_s16x2(x + i);
        const int32_t x23 = read_s16x2(x + i + 2);
        const int32_t w0 = nsn_read_s8x4(r0 + i);
        const int32_t w1 = nsn_read_s8x4(r1 + i);
        const int32_t e0 = __sxtb16(w0), o0 = nsn_sxtab16_ror8(0, w0);
        const int32_t e1 = __sxtb16(w1), o1 = nsn_sxtab16_ror8(0, w1);
        a0 = __smlad(nsn_conv_pkhbt(e0, o0), x01, a0);
        a0 = __smlad(nsn_conv_pkhtb(o0, e0), x23, a0);
        a1 = __smlad(nsn_conv_pkhbt(e1, o1), x01, a1);
        a1 = __smlad(nsn_conv_pkhtb(o1, e1), x23, a1);
    }
    for (; i < n; ++i)
    {
        a0 += (int32_t)r0[i] * x[i];
        a1 += (int32_t)r1[i] * x[i];
    }
    *acc0 = a0;
    *acc1 = a1;
}

/* depthwise, channels [c, c + 4) of one output pixel over rows x cols taps from the first
 * tap inside the input (xbase, wbase):
 * input pairs (x_c, x_c+1) as they lie, weight bytes split and repacked into the same pairs;
 * SMLABB / SMLATT keep each channel in its own sum */
static void dw16_quad_dsp(const nsn_conv_params *p, const nsn_conv_dims *d, const int16_t *xbase,
                          const int8_t *wbase, int32_t rows, int32_t cols, int32_t *acc)
{
    const int32_t ch = d->output_c;
    const int32_t x_col = p->dilation_w * ch;
    const int32_t x_row = p->dilation_h * d->input_w * ch;
    const int32_t w_row = d->filter_w * ch;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], ky, kx;
    for (ky = rows; ky > 0; --ky)
    {
        const int16_t *xp = xbase;
        const int8_t *wp = wbase;
        for (kx = cols; kx > 0; --kx)
        {
            const int32_t w = nsn_read_s8x4(wp);
            const int32_t e = __sxtb16(w), o = nsn_sxtab16_ror8(0, w);
            const int32_t x01 = read_s16x2(xp), x23 = read_s16x2(xp + 2);
            const int32_t w01 = nsn_conv_pkhbt(e, o), w23 = nsn_conv_pkhtb(o, e);
            a0 = __smlabb(x01, w01, a0);
            a1 = __smlatt(x01, w01, a1);
            a2 = __smlabb(x23, w23, a2);
            a3 = __smlatt(x23, w23, a3);
            xp += x_col;
            wp += ch;
        }
        xbase += x_row;
        wbase += w_row;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* depth multiplier 1, channels a multiple of 4, at most CONV16_MAX_SUM taps */
static void dw16_dsp(const nsn_conv_params *p, const nsn_per_channel_quant_params *quant,
                     const nsn_conv_dims *d, const int16_t *input, const int8_t *filter,
                     const int64_t *bias, int16_t *output)
{
    const int32_t ch = d->output_c;
    int32_t y, x, c, j;
    for (y = 0; y < d->output_h; ++y)
    {
        const int32_t iy0 = y * p->stride_h - p->pad_h;
        int32_t ky0, ky1;
        nsn_conv_tap_range(iy0, p->dilation_h, d->filter_h, d->input_h, &ky0, &ky1);
        for (x = 0; x < d->output_w; ++x)
        {
            const int32_t ix0 = x * p->stride_w - p->pad_w;
            int32_t kx0, kx1;
            const int16_t *xbase = input;
            const int8_t *wbase = filter;
            nsn_conv_tap_range(ix0, p->dilation_w, d->filter_w, d->input_w, &kx0, &kx1);
            if (ky1 > ky0 && kx1 > kx0)
            {
                xbase += ((size_t)(iy0 + ky0 * p->dilation_h) * (size_t)d->input_w +
                          (size_t)(ix0 + kx0 * p->dilation_w)) * (size_t)ch;
                wbase += ((size_t)ky0 * (size_t)d->filter_w + (size_t)kx0) * (size_t)ch;
            }
            for (c = 0; c < ch; c += 4)
            {
                int32_t acc[4] = {0, 0, 0, 0};
                if (ky1 > ky0 && kx1 > kx0)
                {
                    dw16_quad_dsp(p, d, xbase + c, wbase + c, ky1 - ky0, kx1 - kx0, acc);
                }
                for (j = 0; j < 4; ++j)
                {
                    s16_req r;
                    s16_req_init(&r, bias != NULL ? bias[c + j] : 0, quant->multiplier[c + j],
                                 quant->shift[c + j]);
                    output[c + j] = s16_req_apply(&r, acc[j], p->activation_min, p->activation_max);
                }
            }
            output += ch;
        }
    }
}

#endif /* NSN_KERNELS_DSP */

#if defined(NSN_KERNELS_MVE)

/* Four channels' sums over one patch of k <= CONV16_MAX_SUM int16 (any alignment; exact in
 * int32): eight lanes per step, VLDRB.S16 widening the weights, VMLADAVA, a predicated tail;
 * rows k weights apart, nch <= 4 of them. */
static void conv16_dot4_mve(const int16_t *x, const int8_t *w, int32_t k, int32_t nch,
                            int32_t *acc)
{
    const int8_t *w1 = w + (nch > 1 ? k : 0);
    const int8_t *w2 = w + (nch > 2 ? 2 * k : 0);
    const int8_t *w3 = w + (nch > 3 ? 3 * k : 0);
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int32_t i;
    for (i = 0; i + 8 <= k; i += 8)
    {
        const int16x8_t xv = vldrhq_s16(x + i);
        a0 = vmladavaq_s16(a0, xv, vldrbq_s16(w + i));
        a1 = vmladavaq_s16(a1, xv, vldrbq_s16(w1 + i));
        a2 = vmladavaq_s16(a2, xv, vldrbq_s16(w2 + i));
        a3 = vmladavaq_s16(a3, xv, vldrbq_s16(w3 + i));
    }
    if (i < k)
    {
        const mve_pred16_t pred = vctp16q((uint32_t)(k - i));
        const int16x8_t xv = vldrhq_z_s16(x + i, pred);
        a0 = vmladavaq_p_s16(a0, xv, vldrbq_z_s16(w + i, pred), pred);
        a1 = vmladavaq_p_s16(a1, xv, vldrbq_z_s16(w1 + i, pred), pred);
        a2 = vmladavaq_p_s16(a2, xv, vldrbq_z_s16(w2 + i, pred), pred);
        a3 = vmladavaq_p_s16(a3, xv, vldrbq_z_s16(w3 + i, pred), pred);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Output channel c of a patch of k: in 32 bits where s16_req32_one allows (the exact sum
 * then fits int32), the int64 way otherwise */
static inline int16_t conv16_out_mve(const nsn_per_channel_quant_params *quant,
                                     const int64_t *bias, int32_t c, int32_t k, int32_t acc,
                                     int32_t lo, int32_t hi)
{
    int32_t rm, b;
    if (s16_req32_one(quant, bias, c, k, &rm, &b))
    {
        return (int16_t)nsn_clamp(nsn_ssat16(s16_smmulr(acc + b, rm)), lo, hi);
    }
    return s16_out((int64_t)acc + (bias != NULL ? bias[c] : 0), quant->multiplier[c],
                   quant->shift[c], lo, hi);
}

/* Four channels (nch of them) of group g for every output pixel; patches read in place where
 * conv16_direct allows, otherwise gathered into the scratch (k int16). */
static void conv16_block_mve(const nsn_conv_params *p, const nsn_per_channel_quant_params *quant,
                             const nsn_conv_dims *d, const int16_t *input, const int8_t *w,
                             const int64_t *bias, int32_t c0, int32_t nch, int16_t *out,
                             int16_t *patch)
{
    const int32_t k = conv16_patch(d);
    const int32_t g = c0 / (d->output_c / d->groups);
    s16_req32 r;
    int32_t y, x, q;
    s16_req32_init(&r, quant, bias, c0, nch, k);
    for (y = 0; y < d->output_h; ++y)
    {
        for (x = 0; x < d->output_w; ++x)
        {
            const int16_t *xp = conv16_direct(p, d, input, y, x, k);
            int32_t acc[4];
            if (xp == NULL)
            {
                conv16_gather(p, d, input, y * d->output_w + x, g * (d->input_c / d->groups), k,
                              patch);
                xp = patch;
            }
            conv16_dot4_mve(xp, w, k, nch, acc);
            for (q = 0; q < nch; ++q)
            {
                out[q] = r.ok ? (int16_t)nsn_clamp(
                                    nsn_ssat16(s16_smmulr(acc[q] + r.bias[q], r.rm[q])),
                                    p->activation_min, p->activation_max)
                              : conv16_out_mve(quant, bias, c0 + q, k, acc[q], p->activation_min,
                                               p->activation_max);
            }
            out += d->output_c;
        }
    }
}

static void conv16_mve(const nsn_conv_params *p, const nsn_per_channel_quant_params *quant,
                       const nsn_conv_dims *d, const int16_t *input, const int8_t *filter,
                       const int64_t *bias, int16_t *output, int16_t *patch)
{
    const int32_t k = conv16_patch(d);
    const int32_t cout_g = d->output_c / d->groups;
    int32_t c0, nch;
    for (c0 = 0; c0 < d->output_c; c0 += nch) /* a group's last block may be short */
    {
        const int32_t end = (c0 / cout_g + 1) * cout_g;
        nch = end - c0 < 4 ? end - c0 : 4;
        conv16_block_mve(p, quant, d, input, filter + (size_t)c0 * (size_t)k, bias, c0, nch,
                         output + c0, patch);
    }
}

#endif /* NSN_KERNELS_MVE */

int32_t nsn_conv_s16_get_buffer_size_ref(const nsn_conv_dims *dims)
{
    (void)dims;
    return 0;
}

int32_t nsn_conv_s16_get_buffer_size_dsp(const nsn_conv_dims *dims)
{
    if (dims == NULL || dims->groups < 1 || dims->filter_h < 1 || dims->filter_w < 1 ||
        dims->input_c < dims->groups)
    {
        return 0;
    }
    /* four interleaved int16 patches and one int16 gather */
    return 10 * ((conv16_patch(dims) + 3) & ~3);
}

int32_t nsn_conv_s16_get_buffer_size_mve(const nsn_conv_dims *dims)
{
    if (dims == NULL || dims->groups < 1 || dims->filter_h < 1 || dims->filter_w < 1 ||
        dims->input_c < dims->groups)
    {
        return 0;
    }
    /* one gathered int16 patch */
    return 2 * ((conv16_patch(dims) + 3) & ~3);
}

int32_t nsn_conv_s16_get_buffer_size(const nsn_conv_dims *dims)
{
#if defined(NSN_KERNELS_DSP)
    return nsn_conv_s16_get_buffer_size_dsp(dims);
#elif defined(NSN_KERNELS_MVE)
    return nsn_conv_s16_get_buffer_size_mve(dims);
#else
    return nsn_conv_s16_get_buffer_size_ref(dims);
#endif
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
#if defined(NSN_KERNELS_DSP)
    if (conv16_patch(dims) <= CONV16_MAX_SUM)
    {
        /* weights widened once pay off over many pixels; few pixels take the 4-pixel blocks */
        const int32_t pixels = dims->output_h * dims->output_w;
        if (pixels >= CONV_DSP_PIXELS && 2 * pixels >= dims->output_c / dims->groups)
        {
            conv16_wide_dsp(params, quant, dims, input, filter, bias, output, (int32_t *)ctx->buf);
        }
        else
        {
            conv16_dsp(params, quant, dims, input, filter, bias, output, (int32_t *)ctx->buf);
        }
        return NSN_OK;
    }
#elif defined(NSN_KERNELS_MVE)
    if (conv16_patch(dims) <= CONV16_MAX_SUM)
    {
        conv16_mve(params, quant, dims, input, filter, bias, output, (int16_t *)ctx->buf);
        return NSN_OK;
    }
#endif
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
#if defined(NSN_KERNELS_DSP)
    if (d->output_c == d->input_c && (d->output_c & 3) == 0 &&
        (int64_t)d->filter_h * d->filter_w <= CONV16_MAX_SUM)
    {
        dw16_dsp(params, quant, d, input, filter, bias, output);
        return NSN_OK;
    }
#endif
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
#if defined(NSN_KERNELS_DSP)
    if (dims->input_features <= CONV16_MAX_SUM)
    {
        const int32_t n = dims->input_features;
        for (c = 0; c < dims->output_features; c += 2)
        {
            const int32_t c1 = c + 1 < dims->output_features ? c + 1 : c;
            int32_t a0, a1;
            fc16_rows_dsp(weights + (size_t)c * (size_t)n, weights + (size_t)c1 * (size_t)n,
                          input, n, &a0, &a1);
            output[c] = s16_out(a0 + (bias != NULL ? bias[c] : 0), quant->multiplier[c],
                                quant->shift[c], params->activation_min, params->activation_max);
            output[c1] = s16_out(a1 + (bias != NULL ? bias[c1] : 0), quant->multiplier[c1],
                                 quant->shift[c1], params->activation_min, params->activation_max);
        }
        return NSN_OK;
    }
#elif defined(NSN_KERNELS_MVE)
    for (c = 0; c < dims->output_features && dims->input_features <= CONV16_MAX_SUM; c += 4)
    {
        const int32_t nch = dims->output_features - c < 4 ? dims->output_features - c : 4;
        int32_t acc[4];
        conv16_dot4_mve(input, weights + (size_t)c * (size_t)dims->input_features,
                        dims->input_features, nch, acc);
        for (i = 0; i < nch; ++i)
        {
            output[c + i] = conv16_out_mve(quant, bias, c + i, dims->input_features, acc[i],
                                           params->activation_min, params->activation_max);
        }
    }
    if (dims->input_features <= CONV16_MAX_SUM)
    {
        return NSN_OK;
    }
#endif
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
