/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the optimized kernel paths (private to firmware/kernels/src).
 *
 * Every helper here computes exactly what the portable helpers of nsn_nnfunctions.h compute
 * (TFLM's double-rounding MultiplyByQuantizedMultiplier), only with fewer instructions; the
 * comments say why each shortcut is exact and under which bound it may be used.
 */
#ifndef NSN_KERNELS_INTERNAL_H
#define NSN_KERNELS_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "nsn_nnfunctions.h"

#if defined(NSN_KERNELS_MVE)
#include <arm_mve.h>
#elif defined(NSN_KERNELS_DSP)
#include <arm_acle.h>
#endif

/* Four int8 values as one word, from any address (unaligned LDR on Armv7-M and later). */
static inline int32_t nsn_read_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Largest |x + offset| over int8 x, or -1 when the offset is too large to be worth a bound. */
static inline int32_t nsn_offset_bound(int32_t offset)
{
    if (offset < -(1 << 16) || offset > (1 << 16))
    {
        return -1;
    }
    return 128 + (offset < 0 ? -offset : offset);
}

#if defined(NSN_KERNELS_DSP)

/* SXTAB16 with a rotation, SSAT without a warning and SMMLAR have no usable ACLE intrinsic in
 * GCC 12 (arm_acle.h has no rotated form and no __smmlar); without them the rotation and the
 * 64-bit rounding each cost extra instructions in the hot loops. Not volatile: pure functions
 * of their operands. */
static inline int32_t nsn_sxtab16_ror8(int32_t acc, int32_t x)
{
    int32_t r;
    __asm("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
    return r;
}

/* Saturation to int8. (GCC 12's __ssat macro assigns the unsigned result of its builtin to
 * an int32_t, which -Wsign-conversion reports in every caller.) */
static inline int32_t nsn_ssat8(int32_t x)
{
    int32_t r;
    __asm("ssat %0, #8, %1" : "=r"(r) : "r"(x));
    return r;
}

/* nsn_requantize for any int32 accumulator, multiplier and shift in [-31, 31].
 *
 * SaturatingRoundingDoublingHighMul(a, m) = floor((a*m + 2^30) / 2^31) =: y (the nudge
 * 1 - 2^30 for a negative product, then truncation toward zero, is the same floor); its only
 * value outside int32 is 2^31, for INT32_MIN * INT32_MIN.
 *
 * shift < 0, e = -shift: RoundingDivideByPOT(y, e) rounds ties away from zero; rounding
 * t = y - 1 half up instead, for negative y, gives the same result, and so does it for y = 0
 * (floor((2^(e-1) - 1) / 2^e) = 0). Rounding half up is floor((t + 2^(e-1)) / 2^e), and since
 * floor(floor(u / 2^31) / 2^e) = floor(u / 2^(31+e)), the whole double rounding is one 64-bit
 * multiply-accumulate and one shift:
 *     floor((a*m + 2^30 + q*2^31) / 2^(31+e)),  q = 2^(e-1) - (a*m < 0),
 * i.e. the high word of SMLAL(a, m, 2^30 + q*2^31) shifted right by e - 1. (a*m < 0 is the sign
 * of a ^ m, except when a or m is 0, where y = 0 and either choice is right.) This also gives
 * RoundingDivideByPOT(INT32_MAX, e) for the saturating product, and |sum| < 2^63.
 *
 * shift >= 0: the left shift wraps like the portable one; QADD/QDADD saturate the 2^31. */
static inline int32_t nsn_requantize_dsp(int32_t acc, int32_t multiplier, int32_t shift)
{
    if (__builtin_expect(shift < 0, 1))
    {
        const int32_t e1 = ~shift; /* e - 1 */
        const int32_t q = (int32_t)(UINT32_C(1) << e1) + ((acc ^ multiplier) >> 31);
        const uint32_t lo = ((uint32_t)q << 31) + (UINT32_C(1) << 30);
        const int64_t k = (int64_t)(((uint64_t)(uint32_t)(q >> 1) << 32) | lo);
        const int64_t x = (int64_t)acc * multiplier + k;
        return (int32_t)(x >> 32) >> e1;
    }
    {
        const int64_t prod =
            (int64_t)(int32_t)((uint32_t)acc << shift) * multiplier + (INT64_C(1) << 30);
        return __qadd((int32_t)((uint32_t)prod >> 31), __qdbl((int32_t)(prod >> 32)));
    }
}

/* (acc * 2^32 + a * b + 2^31) >> 32, from the 64-bit sum: acc + SMMULR(a, b) */
static inline int32_t nsn_smmlar(int32_t a, int32_t b, int32_t acc)
{
    int32_t r;
    __asm("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

/*
 * A fixed rescaling of v = x + offset, |v| <= bound, as the element-wise kernels need it:
 *     nsn_requantize(v << pre_shift, multiplier, shift) + out_offset.
 * With a = v << pre_shift << max(shift, 0), u = 2a (one MLA: x * scale + offset * scale) and
 * |u| < 2^31, the doubling high multiply is floor((u*m + 2^31) / 2^32), and as in
 * nsn_requantize_dsp the rounding division by 2^e folds into the same rounding:
 *     floor((u*m + 2^31 + c*2^32) / 2^(32+e)) = SMMLAR(u, m, c) >> e,
 *     c = 2^(e-1) - (u*m < 0)   (e > 0),   c = 0   (e = 0),
 * and out_offset * 2^e added to c adds out_offset to the result. u*m < 0 is the sign of u for
 * m >= 0 (and m = 0 gives y = 0, where either choice is right): a negative multiplier, which
 * QuantizeMultiplier never produces, takes the portable path.
 */
typedef struct
{
    int32_t scale;    /* 2^(pre_shift + max(shift, 0) + 1) */
    int32_t offset;   /* offset * scale */
    int32_t multiplier;
    int32_t nudge;    /* 2^(e-1) (or 0 when e = 0) + out_offset * 2^e */
    int32_t neg_mask; /* -1 when e > 0, else 0 */
    int32_t exponent; /* e = max(-shift, 0) */
} nsn_rescale;

/* Fills r; returns a bound of |result - out_offset|, or -1 when the bounds above do not hold
 * (the caller then takes the portable path). A multiplier of exactly 0.5 (2^30, shift 0) on a
 * left-shifted value is exact, v * 2^(pre_shift - 1), and is set up as e = 1 (scale doubled:
 * floor(v * 2^(pre_shift-1) + 1/4 + c/2) with c in {0, 1}), so that TFLM's ADD and SUB, where
 * the input with the larger scale gets exactly that, run with e > 0 on every rescaling. */
#if defined(__GNUC__)
__attribute__((noinline, unused)) /* set-up code: once per call, not worth copies */
#endif
static int32_t nsn_rescale_init(nsn_rescale *r,
                                       int32_t bound,
                                       int32_t offset,
                                       int32_t pre_shift,
                                       int32_t multiplier,
                                       int32_t shift,
                                       int32_t out_offset)
{
    const int half_exact = multiplier == (1 << 30) && shift == 0 && pre_shift >= 1;
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t e = half_exact ? 1 : (shift < 0 ? -shift : 0);
    const int32_t k = pre_shift + left + 1 + half_exact;
    if (bound < 0 || bound > (1 << 30) || multiplier < 0 || pre_shift < 0 || pre_shift > 30 ||
        shift < -31 || shift > 31 || k > 30 || ((int64_t)bound << k) > INT32_MAX ||
        out_offset < -256 || out_offset > 256 || e > 22)
    {
        return -1;
    }
    r->scale = (int32_t)(UINT32_C(1) << k);
    r->offset = offset * r->scale; /* |offset| <= bound */
    r->multiplier = multiplier;
    r->nudge = (e > 0 ? (int32_t)(UINT32_C(1) << (e - 1)) : 0) + out_offset * (1 << e);
    r->neg_mask = e > 0 ? -1 : 0;
    r->exponent = e;
    /* |doubling high mul(a, m)| <= |a| */
    return (int32_t)((int64_t)bound << (half_exact ? pre_shift - 1 : k - 1));
}

/* The rescaled x (an int8 value, or any value within the bound). */
static inline int32_t nsn_rescale_apply(const nsn_rescale *r, int32_t x)
{
    const int32_t u = x * r->scale + r->offset;
    return nsn_smmlar(u, r->multiplier, r->nudge + (r->neg_mask & (u >> 31))) >> r->exponent;
}

/* The same when e > 0 is known (neg_mask == -1): one instruction less, one invariant less. */
static inline int32_t nsn_rescale_apply_e(const nsn_rescale *r, int32_t x)
{
    const int32_t u = x * r->scale + r->offset;
    return nsn_smmlar(u, r->multiplier, r->nudge + (u >> 31)) >> r->exponent;
}

#endif /* NSN_KERNELS_DSP */

#if defined(NSN_KERNELS_MVE)

/* RoundingDivideByPOT on four lanes; neg_exponent = -e (0 >= neg_exponent >= -31) per lane.
 * VRSHL by a negative amount rounds half up; subtracting 1 from negative values first (only
 * when e > 0: the sign bit of neg_exponent) turns that into ties away from zero (CMSIS-NN
 * arm_divide_by_power_of_two_mve). VQADD keeps INT32_MIN from wrapping. */
static inline int32x4_t nsn_rdbp_mve(int32x4_t v, int32x4_t neg_exponent)
{
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(v, neg_exponent), 31);
    return vrshlq_s32(vqaddq_s32(v, fixup), neg_exponent);
}

/* nsn_requantize on four lanes, per-lane multiplier and shift: VSHL wraps like the portable
 * left shift, VQRDMULH is SaturatingRoundingDoublingHighMul exactly (including the saturation
 * of INT32_MIN * INT32_MIN). */
static inline int32x4_t nsn_requantize_mve(int32x4_t acc, int32x4_t multiplier, int32x4_t shift)
{
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t shifted = vshlq_s32(acc, vmaxq_s32(shift, zero));
    return nsn_rdbp_mve(vqrdmulhq_s32(shifted, multiplier), vminq_s32(shift, zero));
}

#endif /* NSN_KERNELS_MVE */

#endif /* NSN_KERNELS_INTERNAL_H */
