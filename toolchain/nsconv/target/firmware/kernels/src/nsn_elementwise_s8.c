/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Element-wise ADD, SUB and MUL on int8, with TFLM's arithmetic (reference_integer_ops AddFunc,
 * SubElementwise, MulElementwise) and broadcasting of a one-element operand (e.g. `1 - z`).
 *
 * Paths (nsn_nnfunctions.h): portable C99, the reference; DSP, for the parameters TFLM derives
 * (checked once per call, a few instructions; others take the portable loop): each rounding
 * rescaling is one SMMLAR and a shift, the input that TFLM halves exactly is one shifted add,
 * MUL takes four elements per step (SXTAB16, SMULBB/SMULTT), the two hot loops in assembly;
 * MVE, four int32 lanes per step with VQRDMULH and rounding shifts, exact for all parameters.
 * A broadcast operand is rescaled once per call.
 */
#include "nsn_nnfunctions.h"

#include <stddef.h>

#include "nsn_kernels_internal.h"

#if (defined(NSN_KERNELS_DSP) || defined(NSN_KERNELS_MVE)) && !defined(__OPTIMIZE__)
#error "nsconv kernels: the dsp and mve paths need an optimized build (-O1 or higher); build with -DNSN_KERNELS_FORCE_REFERENCE to choose the portable path"
#endif

#if defined(__GNUC__)
#define NSN_NOINLINE __attribute__((noinline))
#else
#define NSN_NOINLINE
#endif

/* Output size and per-operand index strides (0 = broadcast); 0 when the sizes do not match.
 * Equal sizes, the common case, first. */
static inline int32_t broadcast(int32_t size1, int32_t size2, int32_t *stride1, int32_t *stride2)
{
    *stride1 = 1;
    *stride2 = 1;
    if (size1 == size2)
    {
        return size1 > 0 ? size1 : 0;
    }
    if (size1 < 1 || size2 < 1 || (size1 != 1 && size2 != 1))
    {
        return 0;
    }
    *stride1 = size1 == 1 ? 0 : 1;
    *stride2 = size2 == 1 ? 0 : 1;
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
NSN_NOINLINE static void add_sub_reference(const nsn_add_params *p,
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

/*
 * The DSP path covers the parameters TFLM derives for int8 ADD, SUB and MUL (add.cc, sub.cc,
 * mul.cc): input offsets in [-128, 128] (so |x + offset| <= 256), an output offset in
 * [-256, 256], an output multiplier >= 0 with a shift in [-22, -1]; for ADD and SUB also
 * left_shift 20 and each input rescaled either by exactly 1/2 (multiplier 2^30, shift 0: TFLM
 * gives it to the input with the larger scale; the result is (x + offset) * 2^19, no rounding)
 * or by a multiplier >= 0 with a shift in [-31, -1]; at least one input is halved exactly.
 * Other parameters take the portable loop (same bits). Checking them is the only set-up.
 *
 * Every rounding rescaling is one SMMLAR and a shift (dsp_apply). The sums stay far inside
 * int32: ADD/SUB rescale |x + offset| * 2^21 <= 2^29 into at most 2^27 (e >= 1) and a halved
 * input is at most 2^27, so twice their sum is at most 2^29; MUL's twice product is at most
 * 2^17.
 */

/* nsn_requantize(u / 2, multiplier, -e) + out_offset for an even |u| <= 2^30:
 * SMMLAR(u, multiplier, nudge - (u < 0)) >> e, nudge = 2^(e-1) + out_offset * 2^e, e >= 1,
 * multiplier >= 0. The proof is nsn_rescale's (nsn_kernels_internal.h): SMMULR(u, M) is the
 * doubling high multiply of u / 2, the rounding division by 2^e folds into the same rounding,
 * and with M >= 0 the sign of u stands for the sign of the product. With |nudge| <= 2^30 +
 * 2^21 and |SMMULR(u, M)| <= 2^29 + 1 the accumulation cannot overflow. */
typedef struct
{
    int32_t multiplier;
    int32_t nudge;
    int32_t exponent;
} dsp_rescale;

static inline int32_t dsp_apply(const dsp_rescale *r, int32_t u)
{
    return nsn_smmlar(u, r->multiplier, r->nudge + (u >> 31)) >> r->exponent;
}

/* Fills r when multiplier >= 0, shift in [-max_e, -1] and |out_offset| <= 256 (max_e 22 when
 * out_offset != 0, 31 otherwise); returns 0, leaving r unset, otherwise. */
static inline int dsp_rescale_init(
    dsp_rescale *r, int32_t multiplier, int32_t shift, int32_t out_offset, int32_t max_e)
{
    const int32_t e = -shift;
    if (multiplier < 0 || e < 1 || e > max_e || out_offset < -256 || out_offset > 256)
    {
        return 0;
    }
    r->multiplier = multiplier;
    r->nudge = (int32_t)(UINT32_C(1) << (e - 1)) + out_offset * (int32_t)(UINT32_C(1) << e);
    r->exponent = e;
    return 1;
}

static inline int dsp_offset_ok(int32_t offset)
{
    return offset >= -128 && offset <= 128;
}

/* The constants of one ADD/SUB or MUL loop. */
typedef struct
{
    dsp_rescale out;
    dsp_rescale in;  /* ADD/SUB: the input that is not halved exactly */
    int32_t in_bias; /* ADD/SUB: that input's offset * 2^21; MUL: input 1's offset, both lanes */
    int32_t bias;    /* added to every u (see each loop); MUL: input 2's offset, both lanes */
    int32_t scale;   /* broadcast loops: u = bias + x * scale (ADD/SUB: + x * 2 * rescaled) */
} dsp_loop;

/* clamp(x, lo, hi) over the output when the activation range is narrower than int8 (the loops
 * saturate to int8, and clamp(ssat8(x)) = clamp(x) for lo >= -128, hi <= 127). */
static void clamp_dsp(int8_t *output, int32_t size, int32_t lo, int32_t hi)
{
    int32_t i;
    if (lo <= INT8_MIN && hi >= INT8_MAX)
    {
        return;
    }
    for (i = 0; i < size; ++i)
    {
        output[i] = (int8_t)nsn_clamp(output[i], lo, hi);
    }
}

/* ADD/SUB, input xe halved exactly (sign se), input xg rescaled (sign sg):
 * u = 2 (se (xe + oe) 2^19 + sg rescaled(xg)) = bias + se xe 2^20 + 2 sg rescaled(xg),
 * bias = se oe 2^20. The readable form of the loops below (and their first size % 4
 * elements). */
static inline int8_t add_eg_one(const dsp_loop *c, int8_t xe, int8_t xg, int32_t se, int32_t sg)
{
    const int32_t b = dsp_apply(&c->in, c->in_bias + xg * (1 << 21));
    return (int8_t)nsn_ssat8(dsp_apply(&c->out, c->bias + 2 * sg * b + se * xe * (1 << 20)));
}

/* add_eg_one on one element in assembly (GCC spills around the 13 registers the loop needs
 * and adds four instructions per element); OPG / OPE are add or sub for sg / se. */
#define ADD_EG_ASM_ONE(OPG, OPE)                                                               \
    "ldrsb %[t0], [%[xg]], #1\n\t"                                                              \
    "add %[t0], %[kg], %[t0], lsl #21\n\t"                                                      \
    "add %[t1], %[ng], %[t0], asr #31\n\t"                                                      \
    "smmlar %[t0], %[t0], %[mg], %[t1]\n\t"                                                     \
    "ldrsb %[t1], [%[xe]], #1\n\t"                                                              \
    "asr %[t0], %[t0], %[eg]\n\t" OPG " %[t0], %[bias], %[t0], lsl #1\n\t" OPE                 \
    " %[t0], %[t0], %[t1], lsl #20\n\t"                                                         \
    "add %[t1], %[no], %[t0], asr #31\n\t"                                                      \
    "smmlar %[t0], %[t0], %[mo], %[t1]\n\t"                                                     \
    "asr %[t0], %[t0], %[eo]\n\t"                                                               \
    "ssat %[t0], #8, %[t0]\n\t"                                                                 \
    "strb %[t0], [%[out]], #1\n\t"

/* Four elements per step while xg != end (a memory operand: the loop needs every register). */
#define ADD_EG_ASM(OPG, OPE)                                                                   \
    __asm volatile("1:\n\t" ADD_EG_ASM_ONE(OPG, OPE) ADD_EG_ASM_ONE(OPG, OPE)                  \
                       ADD_EG_ASM_ONE(OPG, OPE) ADD_EG_ASM_ONE(OPG, OPE)                        \
                   "ldr %[t0], %[end]\n\t"                                                      \
                   "cmp %[xg], %[t0]\n\t"                                                       \
                   "bne 1b\n\t"                                                                 \
                   : [xg] "+r"(xg), [xe] "+r"(xe), [out] "+r"(output), [t0] "=&r"(t0),          \
                     [t1] "=&r"(t1)                                                             \
                   : [kg] "r"(c->in_bias), [ng] "r"(c->in.nudge), [mg] "r"(c->in.multiplier),   \
                     [eg] "r"(c->in.exponent), [bias] "r"(c->bias), [no] "r"(c->out.nudge),     \
                     [mo] "r"(c->out.multiplier), [eo] "r"(c->out.exponent), [end] "m"(end)     \
                   : "cc", "memory")

/* The three sign pairs: ++ (ADD), +- (SUB, input 1 halved), -+ (SUB, input 2 halved). */
#define ADD_EG_FUNCTION(name, OPG, OPE, sg, se)                                                \
    NSN_NOINLINE static void name(                                                             \
        const dsp_loop *c, const int8_t *xe, const int8_t *xg, int8_t *output, int32_t size)   \
    {                                                                                          \
        const int8_t *end;                                                                     \
        int32_t t0, t1;                                                                        \
        for (; (size & 3) != 0; --size)                                                        \
        {                                                                                      \
            *output++ = add_eg_one(c, *xe++, *xg++, se, sg);                                   \
        }                                                                                      \
        end = xg + size;                                                                       \
        if (size > 0)                                                                          \
        {                                                                                      \
            ADD_EG_ASM(OPG, OPE);                                                              \
        }                                                                                      \
        (void)t0;                                                                              \
        (void)t1;                                                                              \
    }

ADD_EG_FUNCTION(add_eg_pp, "add", "add", 1, 1)
ADD_EG_FUNCTION(add_eg_pm, "sub", "add", -1, 1)
ADD_EG_FUNCTION(add_eg_mp, "add", "sub", 1, -1)

/* ADD/SUB, both inputs halved exactly (equal input scales): u = bias + (x1 + s2 x2) 2^20 with
 * bias = (o1 + s2 o2) 2^20, s2 = scale = +-1. */
NSN_NOINLINE static void add_ee_dsp(const dsp_loop *c, const int8_t *x1, const int8_t *x2,
                                    int8_t *output, int32_t size)
{
    const dsp_rescale o = c->out;
    const int32_t bias = c->bias, s2 = c->scale;
    int32_t i;
    for (i = 0; i < size; ++i)
    {
        output[i] = (int8_t)nsn_ssat8(dsp_apply(&o, bias + (x1[i] + s2 * x2[i]) * (1 << 20)));
    }
}

/* ADD/SUB with one operand broadcast, its share (twice its signed rescaled value) in bias:
 * u = bias + x * scale for a vector halved exactly (bias includes its offset, scale
 * = +-2^20), u = bias + scale * rescaled(x) for one rescaled (scale = +-2). */
NSN_NOINLINE static void add_broadcast_exact_dsp(const dsp_loop *c, const int8_t *x,
                                                 int8_t *output, int32_t size)
{
    const dsp_rescale o = c->out;
    const int32_t bias = c->bias, scale = c->scale;
    int32_t i;
    for (i = 0; i < size; ++i)
    {
        output[i] = (int8_t)nsn_ssat8(dsp_apply(&o, bias + x[i] * scale));
    }
}

NSN_NOINLINE static void add_broadcast_dsp(const dsp_loop *c, const int8_t *x, int8_t *output,
                                           int32_t size)
{
    const dsp_rescale o = c->out, v = c->in;
    const int32_t bias = c->bias, scale = c->scale, in_bias = c->in_bias;
    int32_t i;
    for (i = 0; i < size; ++i)
    {
        const int32_t t = dsp_apply(&v, in_bias + x[i] * (1 << 21));
        output[i] = (int8_t)nsn_ssat8(dsp_apply(&o, bias + t * scale));
    }
}

/* The broadcast operand's rescaled value, exactly as the portable path computes it. */
static int32_t add_constant(int8_t x, int32_t offset, int32_t multiplier, int32_t shift)
{
    return nsn_requantize((x + offset) * (1 << 20), multiplier, shift);
}

/* Returns 0, having written nothing, when the parameters are outside the DSP path's. */
NSN_NOINLINE static int add_sub_dsp(const nsn_add_params *p,
                       const int8_t *input1,
                       int32_t stride1,
                       const int8_t *input2,
                       int32_t stride2,
                       int32_t size,
                       int8_t *output,
                       int32_t sign)
{
    const int exact1 = p->input1_multiplier == (1 << 30) && p->input1_shift == 0;
    const int exact2 = p->input2_multiplier == (1 << 30) && p->input2_shift == 0;
    const int32_t o1 = p->input1_offset, o2 = p->input2_offset;
    dsp_loop c;
    if (p->left_shift != 20 || !dsp_offset_ok(o1) || !dsp_offset_ok(o2) || (!exact1 && !exact2) ||
        !dsp_rescale_init(&c.out, p->output_multiplier, p->output_shift, p->output_offset, 22) ||
        (!(exact1 && exact2) &&
         !dsp_rescale_init(&c.in, exact1 ? p->input2_multiplier : p->input1_multiplier,
                           exact1 ? p->input2_shift : p->input1_shift, 0, 31)))
    {
        return 0;
    }
    c.in_bias = (exact1 ? o2 : o1) * (1 << 21);
    if (stride1 == 0 || stride2 == 0)
    {
        /* exactly one operand broadcast (size 1 has strides 1): u = 2 (sk k + sv v(x)) */
        const int32_t sv = stride1 == 0 ? sign : 1;
        const int exact = stride1 == 0 ? exact2 : exact1;
        const int32_t k = stride1 == 0
                              ? add_constant(input1[0], o1, p->input1_multiplier, p->input1_shift)
                              : sign * add_constant(input2[0], o2, p->input2_multiplier,
                                                    p->input2_shift);
        c.bias = 2 * k + (exact ? sv * (stride1 == 0 ? o2 : o1) * (1 << 20) : 0);
        c.scale = exact ? sv * (1 << 20) : 2 * sv;
        (exact ? add_broadcast_exact_dsp : add_broadcast_dsp)(
            &c, stride1 == 0 ? input2 : input1, output, size);
    }
    else if (exact1 && exact2)
    {
        c.bias = (o1 + sign * o2) * (1 << 20);
        c.scale = sign;
        add_ee_dsp(&c, input1, input2, output, size);
    }
    else if (exact1)
    {
        c.bias = o1 * (1 << 20);
        (sign > 0 ? add_eg_pp : add_eg_pm)(&c, input1, input2, output, size);
    }
    else
    {
        c.bias = sign * o2 * (1 << 20);
        (sign > 0 ? add_eg_pp : add_eg_mp)(&c, input2, input1, output, size);
    }
    clamp_dsp(output, size, p->activation_min, p->activation_max);
    return 1;
}

/* MUL, both vectors: u = 2 (x1 + o1) (x2 + o2), the readable form of the loop below (and its
 * last size % 4 elements). */
static inline int8_t mul_one(const dsp_loop *c, int8_t x1, int8_t x2)
{
    const int32_t v1 = x1 + (int16_t)c->in_bias, v2 = x2 + (int16_t)c->bias;
    return (int8_t)nsn_ssat8(dsp_apply(&c->out, v1 * 2 * v2));
}

/* One output of the loop below from u (t: a free register): out[k] = ssat8(rescaled(u)). */
#define MUL_ASM_OUT(u, t, k)                                                                   \
    "add %[" t "], %[no], %[" u "], asr #31\n\t"                                                \
    "smmlar %[" u "], %[" u "], %[mo], %[" t "]\n\t"                                            \
    "asr %[" u "], %[" u "], %[eo]\n\t"                                                         \
    "ssat %[" u "], #8, %[" u "]\n\t"                                                           \
    "strb %[" u "], [%[out], #" k "]\n\t"

/* Four elements per step: the bytes of a word as int16 lanes plus the offsets (SXTAB16,
 * |x + o| <= 256; even bytes, then odd bytes with ROR 8), input 2 doubled (SADD16,
 * |2 (x2 + o2)| <= 512), then SMULBB / SMULTT give u for the low / high lanes. In assembly
 * because GCC spills around the 13 registers it needs and merges the byte stores with BFI. */
NSN_NOINLINE static void mul_vv_dsp(const dsp_loop *c, const int8_t *input1,
                                    const int8_t *input2, int8_t *output, int32_t size)
{
    const int8_t *end = input1 + (size & ~3);
    int32_t w1, w2, a, b, t;
    if (size >= 4)
    {
        __asm volatile(
            "1:\n\t"
            "ldr %[w1], [%[x1]], #4\n\t"
            "ldr %[w2], [%[x2]], #4\n\t"
            "sxtab16 %[a], %[p1], %[w1]\n\t"
            "sxtab16 %[b], %[p2], %[w2]\n\t"
            "sadd16 %[b], %[b], %[b]\n\t"
            "smulbb %[t], %[a], %[b]\n\t"
            "smultt %[b], %[a], %[b]\n\t" MUL_ASM_OUT("t", "a", "0") MUL_ASM_OUT("b", "a", "2")
            "sxtab16 %[a], %[p1], %[w1], ror #8\n\t"
            "sxtab16 %[b], %[p2], %[w2], ror #8\n\t"
            "sadd16 %[b], %[b], %[b]\n\t"
            "smulbb %[t], %[a], %[b]\n\t"
            "smultt %[b], %[a], %[b]\n\t" MUL_ASM_OUT("t", "a", "1") MUL_ASM_OUT("b", "a", "3")
            "adds %[out], %[out], #4\n\t"
            "ldr %[t], %[end]\n\t"
            "cmp %[x1], %[t]\n\t"
            "bne 1b\n\t"
            : [x1] "+r"(input1), [x2] "+r"(input2), [out] "+r"(output), [w1] "=&r"(w1),
              [w2] "=&r"(w2), [a] "=&r"(a), [b] "=&r"(b), [t] "=&r"(t)
            : [p1] "r"(c->in_bias), [p2] "r"(c->bias), [no] "r"(c->out.nudge),
              [mo] "r"(c->out.multiplier), [eo] "r"(c->out.exponent), [end] "m"(end)
            : "cc", "memory");
    }
    for (size &= 3; size > 0; --size)
    {
        *output++ = mul_one(c, *input1++, *input2++);
    }
}

/* MUL with a broadcast operand c: 2 (x + o) c = bias + x * scale, one MLA per element. */
NSN_NOINLINE static void mul_broadcast_dsp(const dsp_loop *c, const int8_t *x, int8_t *output,
                                           int32_t size)
{
    const dsp_rescale o = c->out;
    const int32_t bias = c->bias, scale = c->scale;
    int32_t i;
    for (i = 0; i < size; ++i)
    {
        output[i] = (int8_t)nsn_ssat8(dsp_apply(&o, bias + x[i] * scale));
    }
}

/* Returns 0, having written nothing, outside the DSP path's parameters. */
NSN_NOINLINE static int mul_dsp(const nsn_mul_params *p,
                   const int8_t *input1,
                   int32_t stride1,
                   const int8_t *input2,
                   int32_t stride2,
                   int32_t size,
                   int8_t *output)
{
    const int32_t o1 = p->input1_offset, o2 = p->input2_offset;
    dsp_loop c;
    if (!dsp_offset_ok(o1) || !dsp_offset_ok(o2) ||
        !dsp_rescale_init(&c.out, p->output_multiplier, p->output_shift, p->output_offset, 22))
    {
        return 0;
    }
    if (stride1 == 0 || stride2 == 0)
    {
        const int32_t scale = 2 * (stride1 == 0 ? input1[0] + o1 : input2[0] + o2);
        c.scale = scale;
        c.bias = (stride1 == 0 ? o2 : o1) * scale;
        mul_broadcast_dsp(&c, stride1 == 0 ? input2 : input1, output, size);
    }
    else
    {
        c.in_bias = (int32_t)(((uint32_t)o1 & 0xffffu) * 0x10001u);
        c.bias = (int32_t)(((uint32_t)o2 & 0xffffu) * 0x10001u);
        mul_vv_dsp(&c, input1, input2, output, size);
    }
    clamp_dsp(output, size, p->activation_min, p->activation_max);
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

static inline nsn_status add_sub(const nsn_add_params *p,
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

NSN_NOINLINE static void mul_reference(const nsn_mul_params *p,
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
