/* SPDX-License-Identifier: Apache-2.0 */
/* Private to firmware/kernels/src: what the int16 kernels share. */
#ifndef NSN_S16_INTERNAL_H
#define NSN_S16_INTERNAL_H

#include <stdint.h>

#include "nsn_kernels_internal.h"
#include "nsn_nnfunctions_s16.h"

/* sigmoid(i / 24) in 0.16 (nsn_sigmoid_table_s16.c) */
extern const uint16_t nsn_sigmoid_table_u16[256];

#if defined(NSN_KERNELS_DSP)

/*
 * nsn_requantize(x, M, shift) + out_offset for an int16 x, one SMLAWB and one shift.
 *
 * With left = max(shift, 0), e = max(-shift, 0) and P = x * 2^left * M (no wrap: |x| <= 2^15,
 * left <= 14), TFLM's double rounding is (nsn_kernels_internal.h, nsn_requantize_dsp)
 *     floor((P + 2^30 + c * 2^31) / 2^(31 + e)),  c = 2^(e-1) - [P < 0] (e > 0),  c = 0 (e = 0)
 * ([P < 0] may be taken either way when P = 0). Dividing numerator and denominator by 2^left
 * and splitting off 2^16, floor(floor(A / 2^16) + I) / 2^j) = floor((A + I * 2^16) / 2^(16 + j))
 * for an integer I, so with A = x * M (what SMLAWB's 48-bit product gives, floored by 2^16):
 *     result = (SMLAWB(M, x, I) >> j) + out_offset = SMLAWB(M, x, I + out_offset * 2^j) >> j,
 *     I = 2^(14 - left) + c * 2^(15 - left),  j = 15 + e - left,
 * exact as long as the accumulate does not wrap: |floor(x M / 2^16)| <= 2^30 and |I| (with
 * the offset and the sign term) in [-2^30, 2^30). [P < 0] is [x < 0] for M > 0, [x > 0] for M < 0; a
 * caller that knows the sign of x passes it (`sign`), otherwise the kernel subtracts
 * k & (x >> 31) (k = 2^(15 - left), M >= 0 required) per element.
 */
typedef struct
{
    int32_t m;
    int32_t i; /* I with the output offset (and the sign term when the sign is known) */
    int32_t k; /* subtracted for x < 0 when the sign is not known (0 when e = 0) */
    int32_t j;
} nsn_rescale16;

enum
{
    NSN_SIGN_ANY = 0, /* x of either sign (M >= 0) */
    NSN_SIGN_NONNEG = 1,
    NSN_SIGN_NEG = 2
};

/* Fills r; returns 0 when a bound above does not hold (the caller takes the portable path). */
static inline int nsn_rescale16_init(nsn_rescale16 *r, int32_t multiplier, int32_t shift,
                                     int32_t out_offset, int sign)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t e = shift < 0 ? -shift : 0;
    int64_t i, k;
    int neg;
    if (left > 14 || e > 16 || out_offset < -65536 || out_offset > 65536 ||
        (sign == NSN_SIGN_ANY && multiplier < 0))
    {
        return 0;
    }
    r->m = multiplier;
    r->j = 15 + e - left;
    k = e > 0 ? INT64_C(1) << (15 - left) : 0;
    i = (INT64_C(1) << (14 - left)) + (e > 0 ? (INT64_C(1) << (e - 1)) * (k) : 0) +
        (int64_t)out_offset * (INT64_C(1) << r->j);
    neg = sign == NSN_SIGN_NEG ? multiplier > 0 : (sign == NSN_SIGN_NONNEG ? multiplier < 0 : 0);
    if (sign != NSN_SIGN_ANY)
    {
        i -= neg ? k : 0;
        k = 0;
    }
    if (i - k < -(INT64_C(1) << 30) || i >= (INT64_C(1) << 30))
    {
        return 0;
    }
    r->i = (int32_t)i;
    r->k = (int32_t)k;
    return 1;
}

/* The rescaled int16 x (sign known: r->k == 0). */
static inline int32_t nsn_rescale16_apply(const nsn_rescale16 *r, int32_t x)
{
    return __smlawb(r->m, x, r->i - (r->k & (x >> 31))) >> r->j;
}

#endif /* NSN_KERNELS_DSP */

#if defined(NSN_KERNELS_DSP) || defined(NSN_KERNELS_MVE)

/* Saturation to int16. */
static inline int32_t nsn_ssat16(int32_t x)
{
    int32_t r;
    __asm("ssat %0, #16, %1" : "=r"(r) : "r"(x));
    return r;
}

#endif /* NSN_KERNELS_DSP || NSN_KERNELS_MVE */

#endif /* NSN_S16_INTERNAL_H */
