/* SPDX-License-Identifier: Apache-2.0 */
/*
 * int16 element-wise ops, TFLM reference semantics: ADD and SUB (inputs offset, shifted left by
 * 15, rescaled, summed, rescaled), MUL, QUANTIZE (Requantize) between int8 and int16, MEAN and
 * LEAKY_RELU (int8 and int16). Portable C on every core, plus:
 *   QUANTIZE from int16 (to int8 or int16) and int16 LEAKY_RELU: DSP, one SMLAWB + shift +
 *     SSAT per element (nsn_rescale16 in nsn_s16_internal.h: exact within bounds checked once
 *     per call, otherwise the portable loop); MVE, four int32 lanes (nsn_requantize_mve).
 */
#include "nsn_nnfunctions_s16.h"

#include <stddef.h>
#include <string.h>

#include "nsn_s16_internal.h"

#if (defined(NSN_KERNELS_DSP) || defined(NSN_KERNELS_MVE)) && !defined(__OPTIMIZE__)
#error "nsconv kernels: the dsp and mve paths need an optimized build (-O1 or higher); build with -DNSN_KERNELS_FORCE_REFERENCE to choose the portable path"
#endif

/* The broadcast rule of the int8 kernels: equal sizes, or one side of size 1. */
static int sizes_ok(const void *a, int32_t n1, const void *b, int32_t n2, const void *out)
{
    return a != NULL && b != NULL && out != NULL && n1 >= 1 && n2 >= 1 &&
           (n1 == n2 || n1 == 1 || n2 == 1);
}

static int32_t add_one(const nsn_add_params *p, int32_t x1, int32_t x2, int32_t sign)
{
    const int32_t s1 = nsn_requantize((int32_t)((uint32_t)(x1 + p->input1_offset) << p->left_shift),
                                      p->input1_multiplier, p->input1_shift);
    const int32_t s2 = nsn_requantize((int32_t)((uint32_t)(x2 + p->input2_offset) << p->left_shift),
                                      p->input2_multiplier, p->input2_shift);
    const int32_t raw = sign > 0 ? nsn_wrapping_add(s1, s2) : nsn_wrapping_add(s1, -s2);
    int32_t out = nsn_requantize(raw, p->output_multiplier, p->output_shift);
    out = nsn_clamp(nsn_wrapping_add(out, p->output_offset), p->activation_min, p->activation_max);
    return nsn_clamp(out, INT16_MIN, INT16_MAX);
}

static nsn_status add_sub_s16(const nsn_add_params *p, const int16_t *in1, int32_t n1,
                              const int16_t *in2, int32_t n2, int16_t *out, int32_t sign)
{
    const int32_t n = n1 > n2 ? n1 : n2;
    int32_t i;
    if (p == NULL || !sizes_ok(in1, n1, in2, n2, out) || p->left_shift < 0 || p->left_shift > 16)
    {
        return NSN_ARG_ERROR;
    }
    for (i = 0; i < n; ++i)
    {
        out[i] = (int16_t)add_one(p, in1[n1 == 1 ? 0 : i], in2[n2 == 1 ? 0 : i], sign);
    }
    return NSN_OK;
}

nsn_status nsn_elementwise_add_s16(const nsn_add_params *p, const int16_t *input1, int32_t size1,
                                   const int16_t *input2, int32_t size2, int16_t *output)
{
    return add_sub_s16(p, input1, size1, input2, size2, output, 1);
}

nsn_status nsn_elementwise_sub_s16(const nsn_add_params *p, const int16_t *input1, int32_t size1,
                                   const int16_t *input2, int32_t size2, int16_t *output)
{
    return add_sub_s16(p, input1, size1, input2, size2, output, -1);
}

nsn_status nsn_elementwise_mul_s16(const nsn_mul_params *p, const int16_t *input1, int32_t size1,
                                   const int16_t *input2, int32_t size2, int16_t *output)
{
    const int32_t n = size1 > size2 ? size1 : size2;
    int32_t i;
    if (p == NULL || !sizes_ok(input1, size1, input2, size2, output) ||
        p->input1_offset < -65536 || p->input1_offset > 65536 || p->input2_offset < -65536 ||
        p->input2_offset > 65536)
    {
        return NSN_ARG_ERROR;
    }
    for (i = 0; i < n; ++i)
    {
        const int32_t a = input1[size1 == 1 ? 0 : i] + p->input1_offset;
        const int32_t b = input2[size2 == 1 ? 0 : i] + p->input2_offset;
        const int32_t prod = (int32_t)((uint32_t)a * (uint32_t)b);
        int32_t out = nsn_requantize(prod, p->output_multiplier, p->output_shift);
        out = nsn_wrapping_add(out, p->output_offset);
        output[i] = (int16_t)nsn_clamp(out, p->activation_min, p->activation_max);
    }
    return NSN_OK;
}

static int32_t requantize_one(const nsn_requantize_params *p, int32_t x)
{
    return nsn_wrapping_add(nsn_requantize(x + p->input_offset, p->multiplier, p->shift),
                            p->output_offset);
}

#define REQUANTIZE_CHECK(P, IN, OUT, SIZE)                                                     \
    if ((P) == NULL || (IN) == NULL || (OUT) == NULL || (SIZE) < 0 ||                          \
        (P)->input_offset < -65536 || (P)->input_offset > 65536)                               \
    {                                                                                          \
        return NSN_ARG_ERROR;                                                                  \
    }

nsn_status nsn_requantize_s8_s16(const nsn_requantize_params *p, const int8_t *input, int32_t size,
                                 int16_t *output)
{
    int32_t i;
    REQUANTIZE_CHECK(p, input, output, size)
    for (i = 0; i < size; ++i)
    {
        output[i] = (int16_t)nsn_clamp(requantize_one(p, input[i]), INT16_MIN, INT16_MAX);
    }
    return NSN_OK;
}

#if defined(NSN_KERNELS_DSP)

/* x -> ssat(rescale(x)) for int16 x, k = 0 or r.k (the sign term, see nsn_rescale16): two
 * elements per word (SMLAWB / SMLAWT, any 2-byte alignment), then the odd last one */
#define REQ16_LOOP(SAT, K)                                                                     \
    for (i = 0; i + 2 <= size; i += 2)                                                         \
    {                                                                                          \
        int32_t xx;                                                                            \
        memcpy(&xx, input + i, sizeof xx);                                                     \
        output[i] = SAT(__smlawb(r.m, xx, r.i - ((K) & ((int32_t)((uint32_t)xx << 16) >> 31))) \
                        >> r.j);                                                               \
        output[i + 1] = SAT(__smlawt(r.m, xx, r.i - ((K) & (xx >> 31))) >> r.j);               \
    }                                                                                          \
    if (i < size)                                                                              \
    {                                                                                          \
        const int32_t x = input[i];                                                            \
        output[i] = SAT(__smlawb(r.m, x, r.i - ((K) & (x >> 31))) >> r.j);                     \
    }

/* int16 -> int8; returns 0 (nothing written) outside nsn_rescale16's bounds */
static int requantize16_s8_dsp(const nsn_requantize_params *p, const int16_t *input, int32_t size,
                               int8_t *output)
{
    nsn_rescale16 r;
    int32_t i;
    if (p->input_offset != 0 ||
        !nsn_rescale16_init(&r, p->multiplier, p->shift, p->output_offset, NSN_SIGN_ANY))
    {
        return 0;
    }
    if (r.k == 0)
    {
        REQ16_LOOP((int8_t)nsn_ssat8, 0)
    }
    else
    {
        REQ16_LOOP((int8_t)nsn_ssat8, r.k)
    }
    return 1;
}

/* int16 -> int16, as requantize16_s8_dsp */
static int requantize16_s16_dsp(const nsn_requantize_params *p, const int16_t *input,
                                int32_t size, int16_t *output)
{
    nsn_rescale16 r;
    int32_t i;
    if (p->input_offset != 0 ||
        !nsn_rescale16_init(&r, p->multiplier, p->shift, p->output_offset, NSN_SIGN_ANY))
    {
        return 0;
    }
    if (r.k == 0)
    {
        REQ16_LOOP((int16_t)nsn_ssat16, 0)
    }
    else
    {
        REQ16_LOOP((int16_t)nsn_ssat16, r.k)
    }
    return 1;
}

#endif /* NSN_KERNELS_DSP */

#if defined(NSN_KERNELS_MVE)

/* int16 -> int8 (out8) or int16, four lanes: nsn_requantize_mve, offset, clamp */
static void requantize16_mve(const nsn_requantize_params *p, const int16_t *input, int32_t size,
                             void *output, int out8)
{
    const int32x4_t multiplier = vdupq_n_s32(p->multiplier);
    const int32x4_t shift = vdupq_n_s32(p->shift);
    const int32x4_t lo = vdupq_n_s32(out8 ? INT8_MIN : INT16_MIN);
    const int32x4_t hi = vdupq_n_s32(out8 ? INT8_MAX : INT16_MAX);
    int32_t i;
    for (i = 0; i < size; i += 4)
    {
        const mve_pred16_t pred = vctp32q((uint32_t)(size - i));
        int32x4_t v = vaddq_n_s32(vldrhq_z_s32(input + i, pred), p->input_offset);
        v = vaddq_n_s32(nsn_requantize_mve(v, multiplier, shift), p->output_offset);
        v = vminq_s32(vmaxq_s32(v, lo), hi);
        if (out8)
        {
            vstrbq_p_s32((int8_t *)output + i, v, pred);
        }
        else
        {
            vstrhq_p_s32((int16_t *)output + i, v, pred);
        }
    }
}

#endif /* NSN_KERNELS_MVE */

nsn_status nsn_requantize_s16_s8(const nsn_requantize_params *p, const int16_t *input,
                                 int32_t size, int8_t *output)
{
    REQUANTIZE_CHECK(p, input, output, size)
#if defined(NSN_KERNELS_MVE)
    requantize16_mve(p, input, size, output, 1);
#else
#if defined(NSN_KERNELS_DSP)
    if (!requantize16_s8_dsp(p, input, size, output))
#endif
    {
        int32_t i;
        for (i = 0; i < size; ++i)
        {
            output[i] = (int8_t)nsn_clamp(requantize_one(p, input[i]), INT8_MIN, INT8_MAX);
        }
    }
#endif
    return NSN_OK;
}

nsn_status nsn_requantize_s16(const nsn_requantize_params *p, const int16_t *input, int32_t size,
                              int16_t *output)
{
    REQUANTIZE_CHECK(p, input, output, size)
#if defined(NSN_KERNELS_MVE)
    requantize16_mve(p, input, size, output, 0);
#else
#if defined(NSN_KERNELS_DSP)
    if (!requantize16_s16_dsp(p, input, size, output))
#endif
    {
        int32_t i;
        for (i = 0; i < size; ++i)
        {
            output[i] = (int16_t)nsn_clamp(requantize_one(p, input[i]), INT16_MIN, INT16_MAX);
        }
    }
#endif
    return NSN_OK;
}

nsn_status nsn_mean_s16(const nsn_mean_params *params, int32_t outer, int32_t count,
                        int32_t inner, const int16_t *input, int16_t *output)
{
    int32_t o, i, k;
    if (params == NULL || input == NULL || output == NULL || outer < 1 || count < 1 ||
        inner < 1 || count > (1 << 15) || params->input_offset < -(1 << 16) ||
        params->input_offset > (1 << 16))
    {
        return NSN_ARG_ERROR;
    }
    for (o = 0; o < outer; ++o)
    {
        const int16_t *base = input + (size_t)o * (size_t)count * (size_t)inner;
        for (i = 0; i < inner; ++i)
        {
            int32_t sum = 0, out;
            for (k = 0; k < count; ++k)
            {
                sum += base[(size_t)k * (size_t)inner + (size_t)i];
            }
            sum = nsn_wrapping_add(sum, (int32_t)((uint32_t)params->input_offset * (uint32_t)count));
            out = nsn_wrapping_add(nsn_requantize(sum, params->multiplier, params->shift),
                                   params->output_offset);
            *output++ = (int16_t)nsn_clamp(out, INT16_MIN, INT16_MAX);
        }
    }
    return NSN_OK;
}

static int32_t leaky_one(const nsn_leaky_relu_params *p, int32_t x)
{
    const int32_t v = x - p->input_zero_point;
    const int32_t r = v >= 0 ? nsn_requantize(v, p->multiplier_identity, p->shift_identity)
                             : nsn_requantize(v, p->multiplier_alpha, p->shift_alpha);
    return nsn_wrapping_add(r, p->output_zero_point);
}

nsn_status nsn_leaky_relu_s8(const nsn_leaky_relu_params *p, const int8_t *input, int32_t size,
                             int8_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL || size < 0)
    {
        return NSN_ARG_ERROR;
    }
    for (i = 0; i < size; ++i)
    {
        output[i] = (int8_t)nsn_clamp(leaky_one(p, input[i]), INT8_MIN, INT8_MAX);
    }
    return NSN_OK;
}

#if defined(NSN_KERNELS_DSP)

/* `pairs` pairs of int16 (one word each, any 2-byte alignment): the sign of each half (N of
 * LSLS #16 for the bottom, of CMP #0 for the top) selects SMLAWB/SMLAWT and the shift of
 * its rescaling in one IT block; SSAT #16 and PKHBT rebuild the word. */
static void leaky16_pairs_dsp(const nsn_rescale16 *pos, const nsn_rescale16 *neg,
                              const int16_t *input, int32_t pairs, int16_t *output)
{
    const int32_t mp = pos->m, ip = pos->i, jp = pos->j;
    const int32_t mn = neg->m, in = neg->i, jn = neg->j;
    int32_t xx, yb, yt;
    if (pairs <= 0)
    {
        return;
    }
    __asm volatile("1:\n\t"
                   "ldr %[xx], [%[src]], #4\n\t"
                   "lsls %[yb], %[xx], #16\n\t"
                   "itete pl\n\t"
                   "smlawbpl %[yb], %[mp], %[xx], %[ip]\n\t"
                   "smlawbmi %[yb], %[mn], %[xx], %[in]\n\t"
                   "asrpl %[yb], %[yb], %[jp]\n\t"
                   "asrmi %[yb], %[yb], %[jn]\n\t"
                   "ssat %[yb], #16, %[yb]\n\t"
                   "cmp %[xx], #0\n\t"
                   "itete pl\n\t"
                   "smlawtpl %[yt], %[mp], %[xx], %[ip]\n\t"
                   "smlawtmi %[yt], %[mn], %[xx], %[in]\n\t"
                   "asrpl %[yt], %[yt], %[jp]\n\t"
                   "asrmi %[yt], %[yt], %[jn]\n\t"
                   "ssat %[yt], #16, %[yt]\n\t"
                   "pkhbt %[yb], %[yb], %[yt], lsl #16\n\t"
                   "str %[yb], [%[dst]], #4\n\t"
                   "subs %[n], %[n], #1\n\t"
                   "bne 1b\n\t"
                   : [src] "+r"(input), [dst] "+r"(output), [n] "+r"(pairs), [xx] "=&r"(xx),
                     [yb] "=&r"(yb), [yt] "=&r"(yt)
                   : [mp] "r"(mp), [ip] "r"(ip), [jp] "r"(jp), [mn] "r"(mn), [in] "r"(in),
                     [jn] "r"(jn)
                   : "cc", "memory");
}

/* input zero point 0: the sign of x chooses the rescaling, each with its sign term fixed;
 * returns 0 (nothing written) outside nsn_rescale16's bounds */
static int leaky16_dsp(const nsn_leaky_relu_params *p, const int16_t *input, int32_t size,
                       int16_t *output)
{
    nsn_rescale16 pos, neg;
    if (p->input_zero_point != 0 ||
        !nsn_rescale16_init(&pos, p->multiplier_identity, p->shift_identity,
                            p->output_zero_point, NSN_SIGN_NONNEG) ||
        !nsn_rescale16_init(&neg, p->multiplier_alpha, p->shift_alpha, p->output_zero_point,
                            NSN_SIGN_NEG))
    {
        return 0;
    }
    leaky16_pairs_dsp(&pos, &neg, input, size >> 1, output);
    if ((size & 1) != 0)
    {
        const int32_t x = input[size - 1];
        const int32_t y = x >= 0 ? __smlawb(pos.m, x, pos.i) >> pos.j
                                 : __smlawb(neg.m, x, neg.i) >> neg.j;
        output[size - 1] = (int16_t)nsn_ssat16(y);
    }
    return 1;
}

#endif /* NSN_KERNELS_DSP */

#if defined(NSN_KERNELS_MVE)

static void leaky16_mve(const nsn_leaky_relu_params *p, const int16_t *input, int32_t size,
                        int16_t *output)
{
    const int32x4_t m_id = vdupq_n_s32(p->multiplier_identity);
    const int32x4_t s_id = vdupq_n_s32(p->shift_identity);
    const int32x4_t m_alpha = vdupq_n_s32(p->multiplier_alpha);
    const int32x4_t s_alpha = vdupq_n_s32(p->shift_alpha);
    int32_t i;
    for (i = 0; i < size; i += 4)
    {
        const mve_pred16_t pred = vctp32q((uint32_t)(size - i));
        const int32x4_t v = vsubq_n_s32(vldrhq_z_s32(input + i, pred), p->input_zero_point);
        int32x4_t r = vpselq_s32(nsn_requantize_mve(v, m_id, s_id),
                                 nsn_requantize_mve(v, m_alpha, s_alpha), vcmpgeq_n_s32(v, 0));
        r = vaddq_n_s32(r, p->output_zero_point);
        r = vminq_s32(vmaxq_s32(r, vdupq_n_s32(INT16_MIN)), vdupq_n_s32(INT16_MAX));
        vstrhq_p_s32(output + i, r, pred);
    }
}

#endif /* NSN_KERNELS_MVE */

nsn_status nsn_leaky_relu_s16(const nsn_leaky_relu_params *p, const int16_t *input, int32_t size,
                              int16_t *output)
{
    if (p == NULL || input == NULL || output == NULL || size < 0 || p->input_zero_point < -65536 ||
        p->input_zero_point > 65536)
    {
        return NSN_ARG_ERROR;
    }
#if defined(NSN_KERNELS_MVE)
    leaky16_mve(p, input, size, output);
    return NSN_OK;
#else
#if defined(NSN_KERNELS_DSP)
    if (leaky16_dsp(p, input, size, output))
    {
        return NSN_OK;
    }
#endif
    {
        int32_t i;
        for (i = 0; i < size; ++i)
        {
            output[i] = (int16_t)nsn_clamp(leaky_one(p, input[i]), INT16_MIN, INT16_MAX);
        }
    }
    return NSN_OK;
#endif
}
