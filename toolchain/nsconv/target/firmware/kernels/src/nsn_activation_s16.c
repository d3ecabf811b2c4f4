/* SPDX-License-Identifier: Apache-2.0 */
/*
 * int16 LOGISTIC and TANH (reference_integer_ops::Logistic / Tanh for int16: the input rescaled
 * to the table's 1 / (3 * 4096) steps, the 256-entry sigmoid table interpolated with 9 (LOGISTIC)
 * or 8 (TANH) fractional bits, the sign folded in) and int16 RSQRT (elementwise.cc: gemmlowp's
 * Newton-Raphson inverse square root, then two rescalings). Portable C on every core.
 */
#include "nsn_nnfunctions_s16.h"

#include <stddef.h>

#include "nsn_s16_internal.h"

/* TFLM's interpolation: value * 2^bits between table entries uh and uh + 1 */
static uint32_t sigmoid_interp(uint32_t a, int32_t bits, uint32_t saturated)
{
    const uint32_t uh = a >> bits;
    uint32_t ua, ub;
    if (uh >= 255u)
    {
        return saturated;
    }
    ua = nsn_sigmoid_table_u16[uh];
    ub = nsn_sigmoid_table_u16[uh + 1u];
    return (ua << bits) + (a & ((1u << bits) - 1u)) * (ub - ua);
}

static int unary_ok(const nsn_unary_s16_params *p, const int16_t *input, int32_t size,
                    const int16_t *output)
{
    return p != NULL && input != NULL && output != NULL && size >= 0 &&
           p->input_left_shift >= 0 && p->input_left_shift <= 31 && p->input_multiplier >= 0 &&
           p->input_multiplier <= 32767 && (p->input_multiplier != 0 || p->input_left_shift <= 1);
}

static int32_t rescale_input(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t round = shift > 0 ? (int32_t)(1u << (shift - 1)) : 0;
    return (x * multiplier + round) >> shift;
}

nsn_status nsn_logistic_s16(const nsn_unary_s16_params *p, const int16_t *input, int32_t size,
                            int16_t *output)
{
    int32_t multiplier, shift, i;
    if (!unary_ok(p, input, size, output))
    {
        return NSN_ARG_ERROR;
    }
    multiplier = p->input_multiplier != 0 ? p->input_multiplier : 3 << p->input_left_shift;
    shift = p->input_multiplier != 0 ? p->input_left_shift : 0;
    for (i = 0; i < size; ++i)
    {
        const int32_t v = rescale_input(input[i], multiplier, shift);
        uint32_t r = sigmoid_interp(v >= 0 ? (uint32_t)v : (uint32_t)-v, 9, 0x7FFFu << 10);
        r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
        output[i] = (int16_t)(uint16_t)(r >> 10); /* 32768 wraps, as in TFLM */
    }
    return NSN_OK;
}

nsn_status nsn_tanh_s16(const nsn_unary_s16_params *p, const int16_t *input, int32_t size,
                        int16_t *output)
{
    int32_t multiplier, shift, i;
    if (!unary_ok(p, input, size, output))
    {
        return NSN_ARG_ERROR;
    }
    multiplier = p->input_multiplier != 0 ? p->input_multiplier : 3 << p->input_left_shift;
    shift = p->input_multiplier != 0 ? p->input_left_shift : 0;
    for (i = 0; i < size; ++i)
    {
        const int32_t v = rescale_input(input[i], multiplier, shift);
        const int32_t r =
            (int32_t)sigmoid_interp(v >= 0 ? (uint32_t)v : (uint32_t)-v, 8, 0xFFFFu << 8);
        const int32_t s = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
        output[i] = (int16_t)(s >> 8);
    }
    return NSN_OK;
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<e>, e > 0 */
static int32_t saturating_shl(int32_t x, int32_t e)
{
    const int32_t threshold = (int32_t)((1u << (31 - e)) - 1u);
    if (x > threshold)
    {
        return INT32_MAX;
    }
    if (x < -threshold)
    {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << e);
}

/* GetInvSqrtQuantizedMultiplierExp(value, kReverseShift), value > 1: five Newton steps on
 * x = 1 / sqrt(value * 2^-2k) in gemmlowp F3 fixed point. */
static void inv_sqrt(int32_t value, int32_t *multiplier, int32_t *shift)
{
    const int32_t half_three = (1 << 28) + (1 << 27);
    int32_t s = 11, pairs, half_input, x = 1 << 28, k;
    while (value >= (1 << 29))
    {
        value /= 4;
        ++s;
    }
    pairs = (__builtin_clz((uint32_t)value) - 1) / 2 - 1;
    s -= pairs;
    value = (int32_t)((uint32_t)value << (2 * pairs));
    half_input = nsn_rounding_divide_by_pot(value >> 1, 1);
    for (k = 0; k < 5; ++k)
    {
        const int32_t x3 = saturating_shl(
            nsn_doubling_high_mult(nsn_doubling_high_mult(x, x), x), 6);
        const int32_t d = nsn_wrapping_add(nsn_doubling_high_mult(half_three, x),
                                           -nsn_doubling_high_mult(half_input, x3));
        x = saturating_shl(d, 3);
    }
    x = nsn_doubling_high_mult(x, 1518500250);
    if (s < 0)
    {
        x = (int32_t)((uint32_t)x << -s);
        s = 0;
    }
    *multiplier = x;
    *shift = -s;
}

nsn_status nsn_rsqrt_s16(const nsn_rsqrt_params *p, const int16_t *input, int32_t size,
                         int16_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL || size < 0 || p->shift < -11 ||
        p->shift > 31 || p->input_zero_point < -32768 || p->input_zero_point > 32767)
    {
        return NSN_ARG_ERROR;
    }
    for (i = 0; i < size; ++i)
    {
        const int32_t v = (int32_t)input[i] - p->input_zero_point;
        int32_t m = INT32_MAX, s = 0, y;
        if (v <= 0)
        {
            output[i] = INT16_MAX;
            continue;
        }
        if (v > 1)
        {
            inv_sqrt(v, &m, &s);
        }
        y = nsn_requantize(nsn_requantize(1, m, s + 20), p->multiplier, p->shift - 20);
        output[i] = (int16_t)nsn_clamp(nsn_wrapping_add(y, p->output_zero_point), INT16_MIN,
                                       INT16_MAX);
    }
    return NSN_OK;
}
