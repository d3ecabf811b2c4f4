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

/* The fused activation table indexed by the int8 output itself (activation + 128), or NULL */
static inline const int8_t *nsn_conv_act(const nsn_conv_params *params)
{
    return params->activation != NULL ? params->activation + 128 : NULL;
}

/* y (an int8 value) through the centred table act, or y when act is NULL */
static inline int32_t nsn_conv_act_apply(const int8_t *act, int32_t y)
{
    return act != NULL ? (int32_t)act[y] : y;
}

/* activation[clamp(requantize(acc, M, S) + output_offset) + 128] (no table: the clamp) */
static inline int8_t nsn_conv_out_ref(int32_t acc, int32_t multiplier, int32_t shift,
                                      const nsn_conv_params *params)
{
    int32_t out = nsn_requantize(acc, multiplier, shift);
    out = nsn_wrapping_add(out, params->output_offset);
    out = nsn_clamp(out, params->activation_min, params->activation_max);
    return (int8_t)(params->activation != NULL ? params->activation[out + 128] : out);
}

#if defined(NSN_KERNELS_MVE)

/* activation[v + 128] per lane of clamped int8 values v (VLDRB gather, predicated lanes 0) */
static inline int32x4_t nsn_conv_act_mve(const int8_t *activation, int32x4_t v, mve_pred16_t pr)
{
    return vldrbq_gather_offset_z_s32(activation, vreinterpretq_u32_s32(vaddq_n_s32(v, 128)), pr);
}

#endif /* NSN_KERNELS_MVE */

#if defined(NSN_KERNELS_DSP)

/* The DSP convolution loop shared by the int8 and 16x8 kernels: four output pixels' patches
 * expanded to int16 pairs and interleaved (for each group of four inputs k..k+3, pixel q's
 * words (x_k, x_k+2) and (x_k+1, x_k+3) at words 8j + 2q and 8j + 2q + 1), one weight row at a
 * time against all four. */
#define CONV_DSP_PIXELS 4

/* One weight word against the four pixels' pair words: 16 MACs. */
#define CONV_MAC_WORD                                                                          \
    "ldr %[w], [%[pw]], #4\n\t"                                                                \
    "sxtb16 %[wa], %[w]\n\t"                                                                   \
    "sxtb16 %[w], %[w], ror #8\n\t"                                                            \
    "ldm %[xb]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"                                            \
    "smlad %[a0], %[wa], %[x0], %[a0]\n\t"                                                     \
    "smlad %[a0], %[w], %[x1], %[a0]\n\t"                                                      \
    "smlad %[a1], %[wa], %[x2], %[a1]\n\t"                                                     \
    "smlad %[a1], %[w], %[x3], %[a1]\n\t"                                                      \
    "ldm %[xb]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"                                            \
    "smlad %[a2], %[wa], %[x0], %[a2]\n\t"                                                     \
    "smlad %[a2], %[w], %[x1], %[a2]\n\t"                                                      \
    "smlad %[a3], %[wa], %[x2], %[a3]\n\t"                                                     \
    "smlad %[a3], %[w], %[x3], %[a3]\n\t"

/* acc[q] += row . patch q over `words` weight words (4 * words inputs); returns the weight
 * pointer after them. x0..x3 are fixed ascending registers for LDM; r7 is left alone. */
static inline const int8_t *conv_dot4_dsp(const int8_t *row, const int32_t *xbuf, int32_t words,
                                   int32_t *acc)
{
    register int32_t x0 __asm("r8");
    register int32_t x1 __asm("r9");
    register int32_t x2 __asm("r10");
    register int32_t x3 __asm("r11");
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t w, wa;
    const int32_t *xb = xbuf;
    int32_t n = words >> 1;
    if ((words & 1) != 0)
    {
        __asm volatile(CONV_MAC_WORD
                       : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                         [pw] "+r"(row), [xb] "+r"(xb), [w] "=&r"(w), [wa] "=&r"(wa),
                         [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3)
                       :
                       : "memory");
    }
    if (n > 0)
    {
        __asm volatile("1:\n\t" CONV_MAC_WORD CONV_MAC_WORD "subs %[n], %[n], #1\n\t"
                       "bne 1b\n\t"
                       : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                         [pw] "+r"(row), [xb] "+r"(xb), [n] "+r"(n), [w] "=&r"(w),
                         [wa] "=&r"(wa), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2),
                         [x3] "=&r"(x3)
                       :
                       : "cc", "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    return row;
}

/* The last 1..3 weights of a row (tail = their count) against the padded last group. */
static inline void conv_tail_dsp(const int8_t *row, int32_t tail, const int32_t *xbuf, int32_t *acc)
{
    uint32_t bytes = (uint8_t)row[0]; /* little-endian word, the missing weights 0 */
    int32_t wa, wb, q;
    if (tail > 1)
    {
        bytes |= (uint32_t)(uint8_t)row[1] << 8;
    }
    if (tail > 2)
    {
        bytes |= (uint32_t)(uint8_t)row[2] << 16;
    }
    wa = __sxtb16((int32_t)bytes);
    wb = nsn_sxtab16_ror8(0, (int32_t)bytes);
    for (q = 0; q < CONV_DSP_PIXELS; ++q)
    {
        acc[q] = __smlad(wa, xbuf[2 * q], __smlad(wb, xbuf[2 * q + 1], acc[q]));
    }
}

/*
 * The short per-channel requantization of the int8 DSP conv paths (nsn_conv_s8,
 * nsn_depthwise_conv_s8), exact under bounds a call checks once (nsn_conv_rq_ok):
 * with u = 2 * acc, |u| < 2^31, multiplier m >= 0 and e = -shift in [1, 22],
 *     floor((u*m + 2^31 + q*2^32) / 2^(32+e)) = SMMLAR(u, m, q) >> e,  q = 2^(e-1) - (u < 0)
 * is nsn_requantize_dsp's one-rounding form (both sides times 2; see nsn_kernels_internal.h),
 * and zo * 2^e added to q adds the output offset zo. Per output: SMMLAR, ADD (the sign), ASR,
 * SSAT; u < 0 is the sign of acc (m = 0 gives 0 either way). Shift 0 (e = 0): q = zo with no
 * sign term, floor((u*m + 2^31) / 2^32) + zo (nsn_conv_rq_u; the hot loops take e >= 1 only).
 */
typedef struct
{
    int32_t m;
    int32_t q; /* 2^(e-1) + zo * 2^e */
    int32_t e;
} nsn_conv_rq;

/* |acc| < 2^30 for every int8 input: |bias| + patch * 128 * 256 below 2^30 (|x + offset| <=
 * 256), and the multiplier, shift and output offset in the ranges above, for every channel. */
static inline int nsn_conv_rq_ok(const nsn_per_channel_quant_params *quant, const int32_t *bias,
                                 int32_t channels, int32_t patch, int32_t output_offset)
{
    const int32_t room = (1 << 30) - patch * (1 << 15);
    int32_t c;
    if (patch > (1 << 14) || output_offset < -128 || output_offset > 127)
    {
        return 0;
    }
    for (c = 0; c < channels; ++c)
    {
        const int32_t b = bias != NULL ? bias[c] : 0;
        const int32_t s = quant->shift[c];
        if (quant->multiplier[c] < 0 || s > 0 || s < -22 || b >= room || b <= -room)
        {
            return 0;
        }
    }
    return 1;
}

static inline void nsn_conv_rq_init(nsn_conv_rq *r, int32_t m, int32_t shift, int32_t zo)
{
    r->m = m;
    r->e = -shift;
    r->q = (int32_t)((r->e > 0 ? UINT32_C(1) << (r->e - 1) : 0u) + ((uint32_t)zo << r->e));
}

/* requantize(u / 2) + zo, not yet clamped; u = 2 * acc */
static inline int32_t nsn_conv_rq_u(const nsn_conv_rq *r, int32_t u)
{
    return nsn_smmlar(u, r->m, r->q + (r->e > 0 ? (u >> 31) : 0)) >> r->e;
}

/* PKHBT / PKHTB: (lo.bottom, hi.bottom) and (lo.top, hi.top) as halfword pairs */
static inline int32_t nsn_conv_pkhbt(int32_t lo, int32_t hi)
{
    int32_t r;
    __asm("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
}

static inline int32_t nsn_conv_pkhtb(int32_t hi, int32_t lo)
{
    int32_t r;
    __asm("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(hi), "r"(lo));
    return r;
}

#endif /* NSN_KERNELS_DSP */

#endif /* NSN_CONV_INTERNAL_H */
