/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Element-wise ADD, SUB and MUL on int8, with TFLM's arithmetic (reference_integer_ops AddFunc,
 * SubElementwise, MulElementwise) and broadcasting of a one-element operand (e.g. `1 - z`).
 *
 * Paths (nsn_nnfunctions.h): portable C99; DSP, where each rescaling (both roundings and the
 * output offset) is one MLA, one SMMLAR and a shift, exact within bounds checked once per call
 * (nsn_kernels_internal.h), with the portable loop for parameters outside them (TFLM's int8
 * ADD, SUB and MUL parameters are inside, except an ADD/SUB output multiplier in [0.5, 1),
 * i.e. an output scale near 2^-20 times the input scales); MVE, four int32 lanes per step with
 * VQRDMULH and rounding shifts, exact for all parameters. A broadcast operand is rescaled
 * once per call.
 */
#include "nsn_nnfunctions.h"

#include <stddef.h>

#include "nsn_kernels_internal.h"

/* Output size and per-operand index strides (0 = broadcast); 0 when the sizes do not match. */
static int32_t broadcast(int32_t size1, int32_t size2, int32_t *stride1, int32_t *stride2)
{
    if (size1 < 1 || size2 < 1 || (size1 != size2 && size1 != 1 && size2 != 1))
    {
        return 0;
    }
    *stride1 = (size1 == 1 && size2 != 1) ? 0 : 1;
    *stride2 = (size2 == 1 && size1 != 1) ? 0 : 1;
    return size1 > size2 ? size1 : size2;
}

#if !defined(NSN_KERNELS_MVE)

/* One input of ADD/SUB brought to the common scale: (x + offset) * 2^left_shift * M * 2^S. */
static int32_t rescale_input(
    int8_t x, int32_t offset, int32_t left_shift, int32_t multiplier, int32_t shift)
{
    const int32_t shifted = ((int32_t)x + offset) * (1 << left_shift);
    return nsn_requantize(shifted, multiplier, shift);
}

/* sign = 1 for ADD, -1 for SUB; the rescaled inputs are below 2^29 in magnitude, so neither the
 * product nor the sum can overflow. */
static void add_sub_reference(const nsn_add_params *p,
                              const int8_t *input1,
                              int32_t stride1,
                              const int8_t *input2,
                              int32_t stride2,
                              int32_t size,
                              int8_t *output,
                              int32_t sign)
{
    int32_t i;
    for (i = 0; i < size; ++i)
    {
        const int32_t a = rescale_input(input1[i * stride1], p->input1_offset, p->left_shift,
                                        p->input1_multiplier, p->input1_shift);
        const int32_t b = rescale_input(input2[i * stride2], p->input2_offset, p->left_shift,
                                        p->input2_multiplier, p->input2_shift);
        int32_t out = nsn_requantize(a + sign * b, p->output_multiplier, p->output_shift);
        out += p->output_offset;
        output[i] = (int8_t)nsn_clamp(out, p->activation_min, p->activation_max);
    }
}

#endif /* !NSN_KERNELS_MVE */

#if defined(NSN_KERNELS_DSP)

/* out(a(x1[i]) + sign * b(x2[i])), every rescaling with e > 0; `full`: the activation range is
 * all of int8 (SSAT). Inlined with constant sign and full, so each use is its own loop. */
static inline void add_sub_loop_dsp(const nsn_rescale *r1,
                                    const nsn_rescale *r2,
                                    const nsn_rescale *ro,
                                    const int8_t *input1,
                                    const int8_t *input2,
                                    int32_t size,
                                    int8_t *output,
                                    int32_t sign,
                                    int full,
                                    int32_t act_min,
                                    int32_t act_max)
{
    const nsn_rescale s1 = *r1, s2 = *r2, so = *ro;
    int32_t i;
    for (i = 0; i < size; ++i)
    {
        const int32_t a = nsn_rescale_apply_e(&s1, input1[i]);
        const int32_t b = nsn_rescale_apply_e(&s2, input2[i]);
        const int32_t out = nsn_rescale_apply_e(&so, sign > 0 ? a + b : a - b);
        output[i] = (int8_t)(full ? nsn_ssat8(out) : nsn_clamp(out, act_min, act_max));
    }
}

/* One operand broadcast: out(constant + sign * v(x[i])). */
static void add_sub_broadcast_loop_dsp(const nsn_rescale *rv,
                                       const nsn_rescale *ro,
                                       int32_t constant,
                                       const int8_t *input,
                                       int32_t size,
                                       int8_t *output,
                                       int32_t sign,
                                       int32_t act_min,
                                       int32_t act_max)
{
    const nsn_rescale sv = *rv, so = *ro;
    int32_t i;
    for (i = 0; i < size; ++i)
    {
        const int32_t v = nsn_rescale_apply_e(&sv, input[i]);
        const int32_t out = nsn_rescale_apply_e(&so, constant + sign * v);
        output[i] = (int8_t)nsn_clamp(out, act_min, act_max);
    }
}

/* Returns 0, having written nothing, when the parameters are outside the exact bounds or a
 * rescaling has e = 0 (neither happens with TFLM's int8 ADD and SUB). */
static int add_sub_dsp(const nsn_add_params *p,
                       const int8_t *input1,
                       int32_t stride1,
                       const int8_t *input2,
                       int32_t stride2,
                       int32_t size,
                       int8_t *output,
                       int32_t sign)
{
    const int32_t lo = p->activation_min;
    const int32_t hi = p->activation_max;
    nsn_rescale r1, r2, ro;
    const int32_t b1 = nsn_rescale_init(&r1, nsn_offset_bound(p->input1_offset), p->input1_offset,
                                        p->left_shift, p->input1_multiplier, p->input1_shift, 0);
    const int32_t b2 = nsn_rescale_init(&r2, nsn_offset_bound(p->input2_offset), p->input2_offset,
                                        p->left_shift, p->input2_multiplier, p->input2_shift, 0);
    if (b1 < 0 || b2 < 0 || b1 > (1 << 29) || b2 > (1 << 29) ||
        nsn_rescale_init(&ro, b1 + b2, 0, 0, p->output_multiplier, p->output_shift,
                         p->output_offset) < 0 ||
        r1.exponent == 0 || r2.exponent == 0 || ro.exponent == 0)
    {
        return 0;
    }
    if (stride1 == 0 && stride2 != 0)
    {
        /* constant - b: the constant is input 1, the sign goes with input 2 */
        add_sub_broadcast_loop_dsp(&r2, &ro, nsn_rescale_apply_e(&r1, input1[0]), input2, size,
                                   output, sign, lo, hi);
    }
    else if (stride2 == 0 && stride1 != 0)
    {
        add_sub_broadcast_loop_dsp(&r1, &ro, sign * nsn_rescale_apply_e(&r2, input2[0]), input1,
                                   size, output, 1, lo, hi);
    }
    else if (lo == INT8_MIN && hi == INT8_MAX && sign > 0)
    {
        add_sub_loop_dsp(&r1, &r2, &ro, input1, input2, size, output, 1, 1, lo, hi);
    }
    else if (lo == INT8_MIN && hi == INT8_MAX)
    {
        add_sub_loop_dsp(&r1, &r2, &ro, input1, input2, size, output, -1, 1, lo, hi);
    }
    else
    {
        add_sub_loop_dsp(&r1, &r2, &ro, input1, input2, size, output, sign, 0, lo, hi);
    }
    return 1;
}

/* out((x1[i] + o1) * (x2[i] + o2)), both vectors: (x1 + o1) * (x2 * scale + o2 * scale) is
 * the product times the rescaling's scale. */
static inline void mul_loop_dsp(const nsn_rescale *ro,
                                int32_t o1,
                                int32_t o2,
                                const int8_t *input1,
                                const int8_t *input2,
                                int32_t size,
                                int8_t *output,
                                int full,
                                int32_t act_min,
                                int32_t act_max)
{
    const nsn_rescale r = {1, 0, ro->multiplier, ro->nudge, ro->neg_mask, ro->exponent};
    const int32_t scale = ro->scale;
    const int32_t o2s = o2 * scale;
    int32_t i;
    for (i = 0; i < size; ++i)
    {
        const int32_t out =
            nsn_rescale_apply(&r, ((int32_t)input1[i] + o1) * ((int32_t)input2[i] * scale + o2s));
        output[i] = (int8_t)(full ? nsn_ssat8(out) : nsn_clamp(out, act_min, act_max));
    }
}

/* Returns 0 outside the exact bounds. MUL commutes: a broadcast operand c becomes part of the
 * scale, (x + o) * (c * scale), one MLA per element. */
static int mul_dsp(const nsn_mul_params *p,
                   const int8_t *input1,
                   int32_t stride1,
                   const int8_t *input2,
                   int32_t stride2,
                   int32_t size,
                   int8_t *output)
{
    const int32_t bound1 = nsn_offset_bound(p->input1_offset);
    const int32_t bound2 = nsn_offset_bound(p->input2_offset);
    const int32_t lo = p->activation_min;
    const int32_t hi = p->activation_max;
    nsn_rescale ro;
    if (bound1 < 0 || bound2 < 0 || bound1 > 512 || bound2 > 512 ||
        nsn_rescale_init(&ro, bound1 * bound2, 0, 0, p->output_multiplier, p->output_shift,
                         p->output_offset) < 0)
    {
        return 0;
    }
    if (stride1 == 0 || stride2 == 0)
    {
        /* both 0 is size 1: either view works */
        const int8_t *vector = stride1 == 0 ? input2 : input1;
        const int32_t vector_offset = stride1 == 0 ? p->input2_offset : p->input1_offset;
        const int32_t c = stride1 == 0 ? (int32_t)input1[0] + p->input1_offset
                                       : (int32_t)input2[0] + p->input2_offset;
        nsn_rescale r = ro;
        int32_t i;
        r.scale = c * ro.scale; /* |(x + o) * c * scale| <= bound1 * bound2 * scale */
        r.offset = vector_offset * r.scale;
        for (i = 0; i < size; ++i)
        {
            output[i] = (int8_t)nsn_clamp(nsn_rescale_apply(&r, vector[i]), lo, hi);
        }
    }
    else if (lo == INT8_MIN && hi == INT8_MAX)
    {
        mul_loop_dsp(&ro, p->input1_offset, p->input2_offset, input1, input2, size, output, 1, lo,
                     hi);
    }
    else
    {
        mul_loop_dsp(&ro, p->input1_offset, p->input2_offset, input1, input2, size, output, 0, lo,
                     hi);
    }
    return 1;
}

#endif /* NSN_KERNELS_DSP */

#if defined(NSN_KERNELS_MVE)

/* One input of ADD/SUB on four lanes: nsn_requantize((x + offset) << left_shift, M, S). The
 * shifts combine into one VSHL (it wraps like the portable shifts). */
typedef struct
{
    int32_t offset;
    int32_t shift_left; /* left_shift + max(S, 0) */
    int32_t multiplier;
    int32x4_t neg_exponent; /* min(S, 0) */
} add_input_mve;

static inline int32x4_t add_rescale_mve(const add_input_mve *r, int32x4_t x)
{
    const int32x4_t shifted = vshlq_r_s32(vaddq_n_s32(x, r->offset), r->shift_left);
    return nsn_rdbp_mve(vqrdmulhq_n_s32(shifted, r->multiplier), r->neg_exponent);
}

static add_input_mve add_input_setup_mve(int32_t offset,
                                         int32_t left_shift,
                                         int32_t multiplier,
                                         int32_t shift)
{
    add_input_mve r;
    r.offset = offset;
    r.shift_left = left_shift + (shift > 0 ? shift : 0);
    r.multiplier = multiplier;
    r.neg_exponent = vdupq_n_s32(shift < 0 ? shift : 0);
    return r;
}

/* The output stage of ADD/SUB on four lanes: rescaled, offset and clamped. */
typedef struct
{
    add_input_mve rescale;
    int32_t offset;
    int32x4_t act_min;
    int32x4_t act_max;
} add_output_mve;

static inline int32x4_t add_finish_mve(const add_output_mve *o, int32x4_t raw)
{
    const int32x4_t out = vaddq_n_s32(add_rescale_mve(&o->rescale, raw), o->offset);
    return vminq_s32(vmaxq_s32(out, o->act_min), o->act_max);
}

/* Four lanes per step, full vectors first, then a predicated tail; a + sign * b is one VMLA.
 * A broadcast operand is rescaled once (all its lanes equal). Parameters are copied to locals:
 * the output stores could alias *p. */
static void add_sub_mve(const nsn_add_params *p,
                        const int8_t *input1,
                        int32_t stride1,
                        const int8_t *input2,
                        int32_t stride2,
                        int32_t size,
                        int8_t *output,
                        int32_t sign)
{
    const add_input_mve r1 =
        add_input_setup_mve(p->input1_offset, p->left_shift, p->input1_multiplier, p->input1_shift);
    const add_input_mve r2 =
        add_input_setup_mve(p->input2_offset, p->left_shift, p->input2_multiplier, p->input2_shift);
    const add_output_mve o = {add_input_setup_mve(0, 0, p->output_multiplier, p->output_shift),
                              p->output_offset, vdupq_n_s32(p->activation_min),
                              vdupq_n_s32(p->activation_max)};
    const int32x4_t c1 = add_rescale_mve(&r1, vdupq_n_s32(input1[0]));
    const int32x4_t c2 = add_rescale_mve(&r2, vdupq_n_s32(input2[0]));
    int32_t i = 0;
    if (stride1 != 0 && stride2 != 0)
    {
        for (; i + 4 <= size; i += 4)
        {
            const int32x4_t a = add_rescale_mve(&r1, vldrbq_s32(input1 + i));
            const int32x4_t b = add_rescale_mve(&r2, vldrbq_s32(input2 + i));
            vstrbq_s32(output + i, add_finish_mve(&o, vmlaq_n_s32(a, b, sign)));
        }
    }
    else if (stride1 != 0 || stride2 != 0)
    {
        /* constant + sign * b, or a + sign * constant */
        const int8_t *input = stride1 != 0 ? input1 : input2;
        const add_input_mve *r = stride1 != 0 ? &r1 : &r2;
        const int32x4_t c = stride1 != 0 ? vmulq_n_s32(c2, sign) : c1;
        const int32_t vector_sign = stride1 != 0 ? 1 : sign;
        for (; i + 4 <= size; i += 4)
        {
            const int32x4_t v = add_rescale_mve(r, vldrbq_s32(input + i));
            vstrbq_s32(output + i, add_finish_mve(&o, vmlaq_n_s32(c, v, vector_sign)));
        }
    }
    if (i < size)
    {
        const mve_pred16_t pred = vctp32q((uint32_t)(size - i));
        const int32x4_t a =
            stride1 != 0 ? add_rescale_mve(&r1, vldrbq_z_s32(input1 + i, pred)) : c1;
        const int32x4_t b =
            stride2 != 0 ? add_rescale_mve(&r2, vldrbq_z_s32(input2 + i, pred)) : c2;
        vstrbq_p_s32(output + i, add_finish_mve(&o, vmlaq_n_s32(a, b, sign)), pred);
    }
}

/* MUL on four lanes: clamp(zo + requantize((x1 + o1) * (x2 + o2))) */
typedef struct
{
    int32_t offset1;
    int32_t offset2;
    add_output_mve out;
} mul_mve_params;

static inline int32x4_t mul4_mve(const mul_mve_params *m, int32x4_t x1, int32x4_t x2)
{
    return add_finish_mve(&m->out, vmulq_s32(vaddq_n_s32(x1, m->offset1),
                                             vaddq_n_s32(x2, m->offset2)));
}

static void mul_mve(const nsn_mul_params *p,
                    const int8_t *input1,
                    int32_t stride1,
                    const int8_t *input2,
                    int32_t stride2,
                    int32_t size,
                    int8_t *output)
{
    const mul_mve_params m = {
        p->input1_offset, p->input2_offset,
        {add_input_setup_mve(0, 0, p->output_multiplier, p->output_shift), p->output_offset,
         vdupq_n_s32(p->activation_min), vdupq_n_s32(p->activation_max)}};
    const int32x4_t c1 = vdupq_n_s32(input1[0]);
    const int32x4_t c2 = vdupq_n_s32(input2[0]);
    int32_t i = 0;
    if (stride1 != 0 && stride2 != 0)
    {
        for (; i + 4 <= size; i += 4)
        {
            vstrbq_s32(output + i, mul4_mve(&m, vldrbq_s32(input1 + i), vldrbq_s32(input2 + i)));
        }
    }
    else if (stride1 != 0 || stride2 != 0)
    {
        /* MUL commutes: the vector operand first */
        const mul_mve_params mv = {stride1 != 0 ? m.offset1 : m.offset2,
                                   stride1 != 0 ? m.offset2 : m.offset1, m.out};
        const int8_t *input = stride1 != 0 ? input1 : input2;
        const int32x4_t c = stride1 != 0 ? c2 : c1;
        for (; i + 4 <= size; i += 4)
        {
            vstrbq_s32(output + i, mul4_mve(&mv, vldrbq_s32(input + i), c));
        }
    }
    if (i < size)
    {
        const mve_pred16_t pred = vctp32q((uint32_t)(size - i));
        const int32x4_t x1 = stride1 != 0 ? vldrbq_z_s32(input1 + i, pred) : c1;
        const int32x4_t x2 = stride2 != 0 ? vldrbq_z_s32(input2 + i, pred) : c2;
        vstrbq_p_s32(output + i, mul4_mve(&m, x1, x2), pred);
    }
}

#endif /* NSN_KERNELS_MVE */

static nsn_status add_sub(const nsn_add_params *p,
                          const int8_t *input1,
                          int32_t size1,
                          const int8_t *input2,
                          int32_t size2,
                          int8_t *output,
                          int32_t sign)
{
    int32_t stride1 = 0;
    int32_t stride2 = 0;
    int32_t size;
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL)
    {
        return NSN_ARG_ERROR;
    }
    size = broadcast(size1, size2, &stride1, &stride2);
    if (size == 0)
    {
        return NSN_ARG_ERROR;
    }
#if defined(NSN_KERNELS_MVE)
    add_sub_mve(p, input1, stride1, input2, stride2, size, output, sign);
#else
#if defined(NSN_KERNELS_DSP)
    if (!add_sub_dsp(p, input1, stride1, input2, stride2, size, output, sign))
#endif
    {
        add_sub_reference(p, input1, stride1, input2, stride2, size, output, sign);
    }
#endif
    return NSN_OK;
}

nsn_status nsn_elementwise_add_s8(const nsn_add_params *p,
                                  const int8_t *input1,
                                  int32_t size1,
                                  const int8_t *input2,
                                  int32_t size2,
                                  int8_t *output)
{
    return add_sub(p, input1, size1, input2, size2, output, 1);
}

nsn_status nsn_elementwise_sub_s8(const nsn_add_params *p,
                                  const int8_t *input1,
                                  int32_t size1,
                                  const int8_t *input2,
                                  int32_t size2,
                                  int8_t *output)
{
    return add_sub(p, input1, size1, input2, size2, output, -1);
}

#if !defined(NSN_KERNELS_MVE)

static void mul_reference(const nsn_mul_params *p,
                          const int8_t *input1,
                          int32_t stride1,
                          const int8_t *input2,
                          int32_t stride2,
                          int32_t size,
                          int8_t *output)
{
    int32_t i;
    for (i = 0; i < size; ++i)
    {
        /* |(x1 + o1) * (x2 + o2)| <= 255 * 255: no overflow before the requantization */
        const int32_t prod = ((int32_t)input1[i * stride1] + p->input1_offset) *
                             ((int32_t)input2[i * stride2] + p->input2_offset);
        int32_t out = nsn_requantize(prod, p->output_multiplier, p->output_shift);
        out = nsn_wrapping_add(out, p->output_offset);
        output[i] = (int8_t)nsn_clamp(out, p->activation_min, p->activation_max);
    }
}

#endif /* !NSN_KERNELS_MVE */

nsn_status nsn_elementwise_mul_s8(const nsn_mul_params *p,
                                  const int8_t *input1,
                                  int32_t size1,
                                  const int8_t *input2,
                                  int32_t size2,
                                  int8_t *output)
{
    int32_t stride1 = 0;
    int32_t stride2 = 0;
    int32_t size;
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL)
    {
        return NSN_ARG_ERROR;
    }
    size = broadcast(size1, size2, &stride1, &stride2);
    if (size == 0)
    {
        return NSN_ARG_ERROR;
    }
#if defined(NSN_KERNELS_MVE)
    mul_mve(p, input1, stride1, input2, stride2, size, output);
#else
#if defined(NSN_KERNELS_DSP)
    if (!mul_dsp(p, input1, stride1, input2, stride2, size, output))
#endif
    {
        mul_reference(p, input1, stride1, input2, stride2, size, output);
    }
#endif
    return NSN_OK;
}
