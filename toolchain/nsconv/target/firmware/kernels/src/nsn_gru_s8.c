/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nsn_gru_gates_s8: the eight element-wise ops of a GRU step (nsn_nnfunctions_gru.h) per hidden
 * unit, each with TFLM's arithmetic and its own int8 result, so the last op's output has the
 * bits of the op-by-op chain while no intermediate tensor is written and the call costs one
 * set-up instead of eight.
 *
 * Paths: portable C99 (nsn_requantize, as the portable element-wise loops); DSP, each rescaling
 * one MLA + SMMLAR + shift through the shared nsn_rescale helpers (nsn_kernels_internal.h),
 * with the constants nsn_rescale_init would set up computed by the code generator (p->dsp;
 * NULL, when a parameter is outside that path's exact bounds or an op has a fused activation
 * range, runs the portable loop), in three passes over a row so that each pass keeps its
 * constants in registers; MVE, four hidden units per step with VQRDMULH and
 * rounding shifts (exact for all parameters), table lookups by VLDRB gathers.
 */
#include "nsn_nnfunctions_gru.h"

#include <stddef.h>

#include "nsn_kernels_internal.h"
#include "nsn_nnfunctions.h"

#if !defined(NSN_KERNELS_MVE)

/* TFLM's int8 ADD (sign 1) or SUB (sign -1) of two int8 values. */
static int32_t add_ref(const nsn_add_params *p, int32_t x1, int32_t x2, int32_t sign)
{
    const int32_t a = nsn_requantize((x1 + p->input1_offset) * (1 << p->left_shift),
                                     p->input1_multiplier, p->input1_shift);
    const int32_t b = nsn_requantize((x2 + p->input2_offset) * (1 << p->left_shift),
                                     p->input2_multiplier, p->input2_shift);
    const int32_t out =
        nsn_requantize(a + sign * b, p->output_multiplier, p->output_shift) + p->output_offset;
    return nsn_clamp(out, p->activation_min, p->activation_max);
}

/* TFLM's int8 MUL of two int8 values. */
static int32_t mul_ref(const nsn_mul_params *p, int32_t x1, int32_t x2)
{
    const int32_t prod = (x1 + p->input1_offset) * (x2 + p->input2_offset);
    const int32_t out = nsn_wrapping_add(
        nsn_requantize(prod, p->output_multiplier, p->output_shift), p->output_offset);
    return nsn_clamp(out, p->activation_min, p->activation_max);
}

static int32_t lut(const int8_t *table, int32_t x)
{
    return table[(uint8_t)x];
}

static void gates_ref(const nsn_gru_gates_params *p,
                      int32_t rows,
                      const int8_t *x_zr,
                      const int8_t *h_zr,
                      const int8_t *h_n,
                      const int8_t *x_n,
                      const int8_t *h,
                      int8_t *h_out)
{
    const int32_t hidden = p->hidden;
    const int32_t zi = p->z_offset;
    const int32_t ri = hidden - p->z_offset;
    int32_t row;
    int32_t j;
    for (row = 0; row < rows; ++row, x_zr += 2 * hidden, h_zr += 2 * hidden)
    {
        for (j = 0; j < hidden; ++j)
        {
            const int32_t z = lut(p->sigmoid, add_ref(&p->add_zr, x_zr[zi + j], h_zr[zi + j], 1));
            const int32_t r = lut(p->sigmoid, add_ref(&p->add_zr, x_zr[ri + j], h_zr[ri + j], 1));
            const int32_t m = mul_ref(&p->mul_r, r, h_n[j]);
            const int32_t n = lut(p->tanh, add_ref(&p->add_n, x_n[j], m, 1));
            const int32_t d = add_ref(&p->sub_d, h[j], n, -1);
            h_out[j] = (int8_t)add_ref(&p->add_h, n, mul_ref(&p->mul_z, z, d), 1);
        }
        h_n += hidden;
        x_n += hidden;
        h += hidden;
        h_out += hidden;
    }
}

#endif /* !NSN_KERNELS_MVE */

#if defined(NSN_KERNELS_DSP)

/* The set-up below is a handful of loads: inlined, so that no struct is copied per call. */
#if defined(__GNUC__)
#define NSN_GRU_INLINE static inline __attribute__((always_inline))
#define NSN_GRU_LOOP static __attribute__((noinline))
#else
#define NSN_GRU_INLINE static inline
#define NSN_GRU_LOOP static
#endif

/* A rescaling from the generated constants (scale, offset, multiplier, nudge, exponent). */
NSN_GRU_INLINE nsn_rescale rescale_at(const int32_t *c)
{
    const nsn_rescale r = {c[0], c[1], c[2], c[3], c[4] > 0 ? -1 : 0, c[4]};
    return r;
}

/* ADD/SUB (nsn_nnfunctions_gru.h, `dsp`): the rounded input's rescaling r, and the output's
 * rescaling with the exact input folded into its operand: u = x_e * ke + c + r(x_r) * kr is
 * exactly the operand (A +- B) * scale of nsn_elementwise_s8.c's DSP output rescaling, as the
 * exact input's A = (x_e + o_e) << 19 (TFLM's multiplier 0.5, no rounding). */
typedef struct
{
    nsn_rescale in;
    int32_t ke;
    int32_t c;
    nsn_rescale out; /* scale kr; the offset is set per element */
} add_dsp;

NSN_GRU_INLINE add_dsp add_at(const int32_t *c)
{
    const add_dsp a = {rescale_at(c), c[5], c[6], {c[7], 0, c[8], c[9], -1, c[10]}};
    return a;
}

/* exact: the value of the exact input; rounded: the other one. */
static inline int32_t add_apply(const add_dsp *a, int32_t exact, int32_t rounded)
{
    nsn_rescale out = a->out;
    out.offset = exact * a->ke + a->c;
    return nsn_ssat8(nsn_rescale_apply_e(&out, nsn_rescale_apply_e(&a->in, rounded)));
}

/* MUL: (x1 + o1) * (x2 * scale + o2 * scale), rescaled (nsn_elementwise_s8.c's DSP MUL). */
typedef struct
{
    nsn_rescale out; /* scale 1, offset 0: the product carries the scale */
    int32_t scale;
    int32_t offset1;
    int32_t offset2_scaled;
} mul_dsp;

NSN_GRU_INLINE mul_dsp mul_at(const int32_t *c)
{
    const mul_dsp m = {{1, 0, c[2], c[3], c[4] > 0 ? -1 : 0, c[4]}, c[0], c[5], c[6]};
    return m;
}

/* e_positive: the output exponent is known to be > 0 (nsn_rescale_apply_e, one instruction
 * less). */
static inline int32_t mul_apply(const mul_dsp *m, int32_t x1, int32_t x2, int e_positive)
{
    const int32_t prod = (x1 + m->offset1) * (x2 * m->scale + m->offset2_scaled);
    return nsn_ssat8(e_positive ? nsn_rescale_apply_e(&m->out, prod)
                                : nsn_rescale_apply(&m->out, prod));
}

/* Offsets of the ops' constants in `dsp` (ADD/SUB 11, MUL 7), then the exact-input bits. */
enum
{
    DSP_ADD_ZR = 0,
    DSP_MUL_R = 11,
    DSP_ADD_N = 18,
    DSP_SUB_D = 29,
    DSP_MUL_Z = 40,
    DSP_ADD_H = 47,
    DSP_EXACT2 = 58
};

/* out[k] = ADD/SUB(exact[k], rounded[k]), through `table` when there is one. TFLM's int8 ADD
 * and SUB (left shift 20, output multiplier below 1) give every such op the same scales: the
 * rounded input's 2^21, ke = +-2^20 and kr = +-2 (checked once per call, nsn_gru_gates_s8);
 * as constants here they are shifts, and the op's other constants stay in registers. Each
 * caller below is its own loop (table, ke and kr constant). */
static inline void add_loop_dsp(const int32_t *c, const int8_t *exact, const int8_t *rounded,
                                int32_t count, const int8_t *table, int use_table, int8_t *out,
                                int32_t ke, int32_t kr)
{
    const nsn_rescale in = {1 << 21, c[1], c[2], c[3], -1, c[4]};
    const int32_t k_c = c[6];
    nsn_rescale res = {kr, 0, c[8], c[9], -1, c[10]};
    const int8_t *end = out + count;
    const ptrdiff_t de = exact - out;
    const ptrdiff_t dr = rounded - out;
    for (; out < end; ++out)
    {
        int32_t v;
        res.offset = out[de] * ke + k_c;
        v = nsn_ssat8(nsn_rescale_apply_e(&res, nsn_rescale_apply_e(&in, out[dr])));
        *out = (int8_t)(use_table ? table[(uint8_t)v] : v);
    }
}

/* The loops are kept out of line: each gets all the registers for its one op. */
NSN_GRU_LOOP void add_table_loop_dsp(const int32_t *c, const int8_t *exact, const int8_t *rounded,
                                     int32_t count, const int8_t *table, int8_t *out)
{
    add_loop_dsp(c, exact, rounded, count, table, 1, out, 1 << 20, 2);
}

NSN_GRU_LOOP void add_plain_loop_dsp(const int32_t *c, const int8_t *exact, const int8_t *rounded,
                                     int32_t count, int8_t *out)
{
    add_loop_dsp(c, exact, rounded, count, NULL, 0, out, 1 << 20, 2);
}

/* SUB: input 1 - input 2, exact1: input 1 is the exact one. */
NSN_GRU_LOOP void sub_loop_dsp(const int32_t *c, const int8_t *x1, const int8_t *x2, int32_t count,
                               int exact1, int8_t *out)
{
    if (exact1)
    {
        add_loop_dsp(c, x1, x2, count, NULL, 0, out, 1 << 20, -2);
    }
    else
    {
        add_loop_dsp(c, x2, x1, count, NULL, 0, out, -(1 << 20), 2);
    }
}

/* out = MUL(x1, x2) over `rows` rows of `hidden`: x2 and out contiguous, x1's rows
 * `x1_stride` apart (z or r, halves of the gates' rows). */
static inline void mul_rows_dsp(const mul_dsp *m, const int8_t *table, const uint8_t *s1,
                                int32_t s1_stride, const int8_t *x2, int32_t rows,
                                int32_t hidden, int8_t *out, int e_positive)
{
    int32_t row;
    int32_t k;
    if (rows == 1) /* a GRU step of one row: one loop */
    {
        for (k = 0; k < hidden; ++k)
        {
            out[k] = (int8_t)mul_apply(m, table[s1[k]], x2[k], e_positive);
        }
        return;
    }
    for (row = 0; row < rows; ++row, s1 += s1_stride, x2 += hidden, out += hidden)
    {
        for (k = 0; k < hidden; ++k)
        {
            out[k] = (int8_t)mul_apply(m, table[s1[k]], x2[k], e_positive);
        }
    }
}

/* out = MUL(LOGISTIC(s1), x2): the gates' table applied here, where z and r are read (s1, the
 * ADD's int8 output read as the table index), rather than in the ADD's loop. */
NSN_GRU_LOOP void mul_loop_dsp(const int32_t *c, const int8_t *table, const int8_t *s1,
                               int32_t s1_stride, const int8_t *x2, int32_t rows,
                               int32_t hidden, int8_t *out)
{
    const mul_dsp m = mul_at(c);
    const uint8_t *index = (const uint8_t *)s1;
    if (m.out.exponent > 0)
    {
        mul_rows_dsp(&m, table, index, s1_stride, x2, rows, hidden, out, 1);
    }
    else
    {
        mul_rows_dsp(&m, table, index, s1_stride, x2, rows, hidden, out, 0);
    }
}

/* The constants add_loop_dsp takes as given: c of an ADD (sign 1) or SUB (-1) whose exact
 * input is input 2 when exact2. */
static int add_scales_ok(const int32_t *c, int32_t sign, int exact2)
{
    const int32_t ke = exact2 ? sign * (1 << 20) : (1 << 20);
    return c[0] == (1 << 21) && c[5] == ke && c[7] == (exact2 ? 2 : 2 * sign);
}

/* `rows` rows (rows * hidden <= NSN_GRU_DSP_MAX_HIDDEN), op by op over int8 buffers: g (the
 * gates before their LOGISTIC), then m, n, d and q (d and q in m's buffer); bit i of `exact2`: the exact input of
 * the i-th ADD/SUB is its input 2. */
static void gates_rows_dsp(const nsn_gru_gates_params *p,
                           int32_t rows,
                           const int8_t *x_zr,
                           const int8_t *h_zr,
                           const int8_t *h_n,
                           const int8_t *x_n,
                           const int8_t *h,
                           int8_t *h_out)
{
    const int32_t hidden = p->hidden;
    const int32_t units = rows * hidden;
    const int32_t *c = p->dsp;
    const int32_t exact2 = c[DSP_EXACT2];
    int8_t g[2 * NSN_GRU_DSP_MAX_HIDDEN];
    int8_t m[NSN_GRU_DSP_MAX_HIDDEN];
    int8_t n[NSN_GRU_DSP_MAX_HIDDEN];
    add_plain_loop_dsp(c + DSP_ADD_ZR, (exact2 & 1) ? h_zr : x_zr, (exact2 & 1) ? x_zr : h_zr,
                       2 * units, g);
    mul_loop_dsp(c + DSP_MUL_R, p->sigmoid, g + hidden - p->z_offset, 2 * hidden, h_n, rows,
                 hidden, m);
    add_table_loop_dsp(c + DSP_ADD_N, (exact2 & 2) ? m : x_n, (exact2 & 2) ? x_n : m, units,
                       p->tanh, n);
    sub_loop_dsp(c + DSP_SUB_D, h, n, units, !(exact2 & 4), m);
    mul_loop_dsp(c + DSP_MUL_Z, p->sigmoid, g + p->z_offset, 2 * hidden, m, rows, hidden, m);
    add_plain_loop_dsp(c + DSP_ADD_H, (exact2 & 8) ? m : n, (exact2 & 8) ? n : m, units, h_out);
}

/* Returns 0, having written nothing, when the constants are not those add_loop_dsp takes. */
static int gates_dsp_run(const nsn_gru_gates_params *p,
                         int32_t rows,
                         const int8_t *x_zr,
                         const int8_t *h_zr,
                         const int8_t *h_n,
                         const int8_t *x_n,
                         const int8_t *h,
                         int8_t *h_out)
{
    const int32_t hidden = p->hidden;
    const int32_t chunk = NSN_GRU_DSP_MAX_HIDDEN / hidden; /* rows per pass */
    const int32_t *c = p->dsp;
    const int32_t exact2 = c[DSP_EXACT2];
    int32_t row;
    if (!add_scales_ok(c + DSP_ADD_ZR, 1, exact2 & 1) ||
        !add_scales_ok(c + DSP_ADD_N, 1, exact2 & 2) ||
        !add_scales_ok(c + DSP_SUB_D, -1, exact2 & 4) ||
        !add_scales_ok(c + DSP_ADD_H, 1, exact2 & 8))
    {
        return 0;
    }
    for (row = 0; row < rows; row += chunk)
    {
        const int32_t o = row * hidden;
        gates_rows_dsp(p, rows - row < chunk ? rows - row : chunk, x_zr + 2 * o, h_zr + 2 * o,
                       h_n + o, x_n + o, h + o, h_out + o);
    }
    return 1;
}

#endif /* NSN_KERNELS_DSP */

#if defined(NSN_KERNELS_MVE)

/* One rescaling on four lanes: nsn_requantize(x << left, M, S) as VSHL, VQRDMULH and a rounding
 * shift (nsn_rdbp_mve), exact for all parameters. */
typedef struct
{
    int32_t shift_left; /* left + max(S, 0) */
    int32_t multiplier;
    int32x4_t neg_exponent; /* min(S, 0) */
} rescale_mve;

static rescale_mve rescale_setup_mve(int32_t left, int32_t multiplier, int32_t shift)
{
    rescale_mve r;
    r.shift_left = left + (shift > 0 ? shift : 0);
    r.multiplier = multiplier;
    r.neg_exponent = vdupq_n_s32(shift < 0 ? shift : 0);
    return r;
}

static inline int32x4_t rescale_mve_apply(const rescale_mve *r, int32x4_t x)
{
    return nsn_rdbp_mve(vqrdmulhq_n_s32(vshlq_r_s32(x, r->shift_left), r->multiplier),
                        r->neg_exponent);
}

/* ADD/SUB and MUL on four lanes, TFLM's arithmetic (nsn_elementwise_s8.c's MVE path). */
typedef struct
{
    int32_t offset1;
    int32_t offset2;
    rescale_mve in1; /* unused for MUL */
    rescale_mve in2;
    rescale_mve out;
    int32_t out_offset;
    int32_t act_min;
    int32_t act_max;
} binary_mve;

static binary_mve add_setup_mve(const nsn_add_params *p)
{
    binary_mve b;
    b.offset1 = p->input1_offset;
    b.offset2 = p->input2_offset;
    b.in1 = rescale_setup_mve(p->left_shift, p->input1_multiplier, p->input1_shift);
    b.in2 = rescale_setup_mve(p->left_shift, p->input2_multiplier, p->input2_shift);
    b.out = rescale_setup_mve(0, p->output_multiplier, p->output_shift);
    b.out_offset = p->output_offset;
    b.act_min = p->activation_min;
    b.act_max = p->activation_max;
    return b;
}

static binary_mve mul_setup_mve(const nsn_mul_params *p)
{
    binary_mve b;
    b.offset1 = p->input1_offset;
    b.offset2 = p->input2_offset;
    b.in1 = rescale_setup_mve(0, 0, 0);
    b.in2 = b.in1;
    b.out = rescale_setup_mve(0, p->output_multiplier, p->output_shift);
    b.out_offset = p->output_offset;
    b.act_min = p->activation_min;
    b.act_max = p->activation_max;
    return b;
}

static inline int32x4_t finish_mve(const binary_mve *b, int32x4_t raw)
{
    const int32x4_t out = vaddq_n_s32(rescale_mve_apply(&b->out, raw), b->out_offset);
    return vminq_s32(vmaxq_s32(out, vdupq_n_s32(b->act_min)), vdupq_n_s32(b->act_max));
}

static inline int32x4_t add_mve(const binary_mve *b, int32x4_t x1, int32x4_t x2, int32_t sign)
{
    const int32x4_t u = rescale_mve_apply(&b->in1, vaddq_n_s32(x1, b->offset1));
    const int32x4_t v = rescale_mve_apply(&b->in2, vaddq_n_s32(x2, b->offset2));
    return finish_mve(b, vmlaq_n_s32(u, v, sign));
}

static inline int32x4_t mul_mve(const binary_mve *b, int32x4_t x1, int32x4_t x2)
{
    return finish_mve(b, vmulq_s32(vaddq_n_s32(x1, b->offset1), vaddq_n_s32(x2, b->offset2)));
}

/* A table lookup on four int32 lanes: VLDRB gather at byte offsets (uint8_t)x. */
static inline int32x4_t lut_mve(const int8_t *table, int32x4_t x)
{
    return vldrbq_gather_offset_s32(table, vreinterpretq_u32_s32(vandq_s32(x, vdupq_n_s32(255))));
}

typedef struct
{
    binary_mve add_zr;
    binary_mve mul_r;
    binary_mve add_n;
    binary_mve sub_d;
    binary_mve mul_z;
    binary_mve add_h;
} gates_mve;

/* Four units (or the predicated tail) of one row. */
static inline void gates4_mve(const gates_mve *g,
                              const nsn_gru_gates_params *p,
                              mve_pred16_t pred,
                              const int8_t *x_z,
                              const int8_t *h_z,
                              const int8_t *x_r,
                              const int8_t *h_r,
                              const int8_t *h_n,
                              const int8_t *x_n,
                              const int8_t *h,
                              int8_t *h_out)
{
    const int32x4_t z = lut_mve(p->sigmoid, add_mve(&g->add_zr, vldrbq_z_s32(x_z, pred),
                                                    vldrbq_z_s32(h_z, pred), 1));
    const int32x4_t r = lut_mve(p->sigmoid, add_mve(&g->add_zr, vldrbq_z_s32(x_r, pred),
                                                    vldrbq_z_s32(h_r, pred), 1));
    const int32x4_t m = mul_mve(&g->mul_r, r, vldrbq_z_s32(h_n, pred));
    const int32x4_t n = lut_mve(p->tanh, add_mve(&g->add_n, vldrbq_z_s32(x_n, pred), m, 1));
    const int32x4_t d = add_mve(&g->sub_d, vldrbq_z_s32(h, pred), n, -1);
    vstrbq_p_s32(h_out, add_mve(&g->add_h, n, mul_mve(&g->mul_z, z, d), 1), pred);
}

static void gates_mve_run(const nsn_gru_gates_params *p,
                          int32_t rows,
                          const int8_t *x_zr,
                          const int8_t *h_zr,
                          const int8_t *h_n,
                          const int8_t *x_n,
                          const int8_t *h,
                          int8_t *h_out)
{
    const int32_t hidden = p->hidden;
    const int32_t zi = p->z_offset;
    const int32_t ri = hidden - p->z_offset;
    const gates_mve g = {add_setup_mve(&p->add_zr), mul_setup_mve(&p->mul_r),
                         add_setup_mve(&p->add_n),  add_setup_mve(&p->sub_d),
                         mul_setup_mve(&p->mul_z),  add_setup_mve(&p->add_h)};
    int32_t row;
    for (row = 0; row < rows; ++row)
    {
        const int8_t *xz = x_zr + row * 2 * hidden;
        const int8_t *hz = h_zr + row * 2 * hidden;
        const int32_t o = row * hidden;
        int32_t j;
        for (j = 0; j < hidden; j += 4)
        {
            const mve_pred16_t pred = vctp32q((uint32_t)(hidden - j));
            gates4_mve(&g, p, pred, xz + zi + j, hz + zi + j, xz + ri + j, hz + ri + j,
                       h_n + o + j, x_n + o + j, h + o + j, h_out + o + j);
        }
    }
}

#endif /* NSN_KERNELS_MVE */

nsn_status nsn_gru_gates_s8(const nsn_gru_gates_params *p,
                            int32_t rows,
                            const int8_t *x_zr,
                            const int8_t *h_zr,
                            const int8_t *h_n,
                            const int8_t *x_n,
                            const int8_t *h,
                            int8_t *h_out)
{
    if (p == NULL || p->sigmoid == NULL || p->tanh == NULL || x_zr == NULL || h_zr == NULL ||
        h_n == NULL || x_n == NULL || h == NULL || h_out == NULL || rows < 1 || p->hidden < 1 ||
        (p->z_offset != 0 && p->z_offset != p->hidden))
    {
        return NSN_ARG_ERROR;
    }
#if defined(NSN_KERNELS_MVE)
    gates_mve_run(p, rows, x_zr, h_zr, h_n, x_n, h, h_out);
#else
#if defined(NSN_KERNELS_DSP)
    if (p->dsp != NULL && p->hidden <= NSN_GRU_DSP_MAX_HIDDEN &&
        gates_dsp_run(p, rows, x_zr, h_zr, h_n, x_n, h, h_out))
    {
        return NSN_OK;
    }
#endif
    gates_ref(p, rows, x_zr, h_zr, h_n, x_n, h, h_out);
#endif
    return NSN_OK;
}
