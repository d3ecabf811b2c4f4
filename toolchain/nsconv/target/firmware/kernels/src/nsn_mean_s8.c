/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MEAN, int8: TFLM reference_ops::QuantizedMeanOrSum (compute_sum false) over one contiguous
 * run of axes. The sum of each output's inputs, minus zero point * count, rescaled by the
 * multiplier and shift into which nsconv.quant.params.mean_params folded 1 / count.
 *
 * Paths: portable C99, one addition per input (the reference). DSP: four inputs per word,
 * two SXTAB16 into int16 lane pairs, flushed to int32 every 256 rows (a lane then holds at
 * most 256 * 128 = 2^15 in magnitude: -32768 fits, +32512 too). MVE: sixteen bytes per VADDVA
 * for a contiguous run, four int32 lanes per row for columns. The integer sums are exact on
 * every path, so the outputs are the same.
 */
#include "nsn_nnfunctions_conv.h"

#include <stddef.h>

#include "nsn_kernels_internal.h"

/* One output from the sum of its count inputs. */
static int8_t mean_out(const nsn_mean_params *p, int32_t sum, int32_t count)
{
    int32_t out;
    /* TFLM: temp_sum - zero_point * count, in int32 (wrapping) */
    sum = nsn_wrapping_add(sum, (int32_t)((uint32_t)p->input_offset * (uint32_t)count));
#if defined(NSN_KERNELS_DSP)
    out = nsn_requantize_dsp(sum, p->multiplier, p->shift);
#else
    out = nsn_requantize(sum, p->multiplier, p->shift);
#endif
    out = nsn_wrapping_add(out, p->output_offset);
    return (int8_t)nsn_clamp(out, INT8_MIN, INT8_MAX);
}

/* Sum of count inputs `stride` bytes apart. */
static int32_t column_sum(const int8_t *x, int32_t count, int32_t stride)
{
    int32_t sum = 0;
    int32_t k;
    for (k = 0; k < count; ++k)
    {
        sum += *x;
        x += stride;
    }
    return sum;
}

#if defined(NSN_KERNELS_DSP)

/* sums[j] += sum over count rows `stride` bytes apart of x[j], j < 4. */
static void sums4(const int8_t *x, int32_t count, int32_t stride, int32_t sums[4])
{
    while (count > 0)
    {
        int32_t n = count < 256 ? count : 256;
        int32_t even = 0, odd = 0;
        count -= n;
        for (; n > 0; --n)
        {
            const int32_t w = nsn_read_s8x4(x);
            even = __sxtab16(even, w);
            odd = nsn_sxtab16_ror8(odd, w);
            x += stride;
        }
        sums[0] += (int16_t)even;
        sums[1] += (int16_t)odd;
        sums[2] += even >> 16;
        sums[3] += odd >> 16;
    }
}

static int32_t run_sum(const int8_t *x, int32_t count)
{
    int32_t s[4] = {0, 0, 0, 0};
    sums4(x, count >> 2, 4, s);
    return s[0] + s[1] + s[2] + s[3] + column_sum(x + (count & ~3), count & 3, 1);
}

#elif defined(NSN_KERNELS_MVE)

static void sums4(const int8_t *x, int32_t count, int32_t stride, int32_t sums[4])
{
    int32x4_t acc = vldrwq_s32(sums);
    for (; count > 0; --count)
    {
        acc = vaddq_s32(acc, vldrbq_s32(x));
        x += stride;
    }
    vstrwq_s32(sums, acc);
}

static int32_t run_sum(const int8_t *x, int32_t count)
{
    int32_t sum = 0;
    int32_t k;
    for (k = 0; k < count; k += 16)
    {
        const mve_pred16_t p = vctp8q((uint32_t)(count - k));
        sum = vaddvaq_p_s8(sum, vldrbq_z_s8(x + k, p), p);
    }
    return sum;
}

#else

static int32_t run_sum(const int8_t *x, int32_t count)
{
    return column_sum(x, count, 1);
}

#endif

nsn_status nsn_mean_s8(const nsn_mean_params *params,
                       int32_t outer,
                       int32_t count,
                       int32_t inner,
                       const int8_t *input,
                       int8_t *output)
{
    int32_t o, i;
    if (params == NULL || input == NULL || output == NULL || outer < 1 || count < 1 ||
        inner < 1 || count > NSN_MEAN_MAX_COUNT || params->input_offset < -(1 << 16) ||
        params->input_offset > (1 << 16))
    {
        return NSN_ARG_ERROR;
    }
    for (o = 0; o < outer; ++o)
    {
        const int8_t *base = input + (size_t)o * (size_t)count * (size_t)inner;
        i = 0;
        if (inner == 1)
        {
            *output++ = mean_out(params, run_sum(base, count), count);
            continue;
        }
#if defined(NSN_KERNELS_DSP) || defined(NSN_KERNELS_MVE)
        for (; i + 4 <= inner; i += 4)
        {
            int32_t s[4] = {0, 0, 0, 0};
            int32_t j;
            sums4(base + i, count, inner, s);
            for (j = 0; j < 4; ++j)
            {
                *output++ = mean_out(params, s[j], count);
            }
        }
#endif
        for (; i < inner; ++i)
        {
            *output++ = mean_out(params, column_sum(base + i, count, inner), count);
        }
    }
    return NSN_OK;
}
