/* SPDX-License-Identifier: Apache-2.0 */
/*
 * int8 -> int8 QUANTIZE: TFLM reference_ops::Requantize. Used where a tensor must change scale
 * and zero point, e.g. a GRU state output fed back as the next step's state input.
 *
 * Paths (nsn_nnfunctions.h): portable C99; DSP, one MLA + SMMLAR + shift per element within
 * bounds checked once per call (nsn_kernels_internal.h); MVE, four lanes per step.
 */
#include "nsn_nnfunctions.h"

#include <stddef.h>

#include "nsn_kernels_internal.h"

#if !defined(NSN_KERNELS_MVE)

static void requantize_reference(const nsn_requantize_params *p,
                                 const int8_t *input,
                                 int32_t size,
                                 int8_t *output)
{
    int32_t i;
    for (i = 0; i < size; ++i)
    {
        int32_t out = nsn_requantize((int32_t)input[i] + p->input_offset, p->multiplier, p->shift);
        out = nsn_wrapping_add(out, p->output_offset);
        output[i] = (int8_t)nsn_clamp(out, INT8_MIN, INT8_MAX);
    }
}

#endif

#if defined(NSN_KERNELS_MVE)

static void requantize_mve(const nsn_requantize_params *p,
                           const int8_t *input,
                           int32_t size,
                           int8_t *output)
{
    const int32x4_t shift = vdupq_n_s32(p->shift);
    const int32x4_t multiplier = vdupq_n_s32(p->multiplier);
    int32_t i;
    for (i = 0; i < size; i += 4)
    {
        const mve_pred16_t pred = vctp32q((uint32_t)(size - i));
        int32x4_t v = vaddq_n_s32(vldrbq_z_s32(input + i, pred), p->input_offset);
        v = vaddq_n_s32(nsn_requantize_mve(v, multiplier, shift), p->output_offset);
        v = vminq_s32(vmaxq_s32(v, vdupq_n_s32(INT8_MIN)), vdupq_n_s32(INT8_MAX));
        vstrbq_p_s32(output + i, v, pred);
    }
}

#endif

#if defined(NSN_KERNELS_DSP)

/* Returns 0 outside the exact bounds. */
static int requantize_dsp(const nsn_requantize_params *p,
                          const int8_t *input,
                          int32_t size,
                          int8_t *output)
{
    nsn_rescale r;
    int32_t i;
    if (nsn_rescale_init(&r, nsn_offset_bound(p->input_offset), p->input_offset, 0, p->multiplier,
                         p->shift, p->output_offset) < 0)
    {
        return 0;
    }
    for (i = 0; i < size; ++i)
    {
        output[i] = (int8_t)nsn_ssat8(nsn_rescale_apply(&r, input[i]));
    }
    return 1;
}

#endif

nsn_status nsn_requantize_s8(const nsn_requantize_params *p,
                             const int8_t *input,
                             int32_t size,
                             int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL || size < 0)
    {
        return NSN_ARG_ERROR;
    }
#if defined(NSN_KERNELS_MVE)
    requantize_mve(p, input, size, output);
#else
#if defined(NSN_KERNELS_DSP)
    if (!requantize_dsp(p, input, size, output))
#endif
    {
        requantize_reference(p, input, size, output);
    }
#endif
    return NSN_OK;
}
