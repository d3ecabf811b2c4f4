/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nsn_gru_gates_s8: the eight element-wise ops of a GRU step (nsn_nnfunctions_gru.h), each
 * with TFLM's arithmetic and its own int8 result, so the last op's output has the bits of the
 * op-by-op chain while only h' is written and the call costs one set-up instead of eight.
 *
 * Paths: portable C99, per hidden unit (nsn_requantize, as the portable element-wise loops).
 * DSP and MVE: the ops one by one over int8 buffers on the stack, a few rows at a time, each
 * op's loop out of line so that its constants stay in registers. DSP: inline-assembly loops,
 * four elements per step, each rescaling ADD + SMMLAR + shift as the shared nsn_rescale helpers
 * (nsn_kernels_internal.h) compute it, with the constants computed by the code generator
 * (p->dsp; NULL, when a parameter is outside that path's exact bounds or an op has a fused
 * activation range, runs the portable loop), the exact ADD/SUB input (TFLM's multiplier 0.5)
 * folded into the output rescaling. MVE: four lanes per step with VQRDMULH and rounding shifts (exact for all
 * parameters), the tables by VLDRB gathers.
 */
#include "nsn_nnfunctions_gru.h"

#include <stddef.h>

#include "nsn_kernels_internal.h"
#include "nsn_nnfunctions.h"

#if (defined(NSN_KERNELS_DSP) || defined(NSN_KERNELS_MVE)) && !defined(__OPTIMIZE__)
#error "nsconv kernels: the dsp and mve paths need an optimized build (-O1 or higher); build with -DNSN_KERNELS_FORCE_REFERENCE to choose the portable path"
#endif

/* The portable path (also where the DSP and MVE paths' bounds or buffers do not hold). */

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

#if defined(__GNUC__)
__attribute__((noinline)) /* the fast paths' callers do not set up its frame */
#endif
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

#if defined(NSN_KERNELS_DSP)

#if defined(__GNUC__)
#define NSN_GRU_INLINE static inline __attribute__((always_inline))
#define NSN_GRU_LOOP static __attribute__((noinline))
#else
#define NSN_GRU_INLINE static inline
#define NSN_GRU_LOOP static
#endif

/* Offsets of the ops' constants in `dsp` (nsn_nnfunctions_gru.h: ADD/SUB 7, MUL 5), then the
 * exact-input bits. */
enum
{
    DSP_ADD_ZR = 0,
    DSP_MUL_R = 7,
    DSP_ADD_N = 12,
    DSP_SUB_D = 19,
    DSP_MUL_Z = 26,
    DSP_ADD_H = 31,
    DSP_EXACT2 = 38
};

/* One ADD/SUB element (nsn_elementwise_s8.c's DSP rescalings): the rounded input's rescaling
 * R = SMMLAR(xr * 2^21 + c[0], c[1], c[2] + sign) >> c[3], whose nudge also carries the exact
 * input's offset term divided by +-2, then the output's rescaling (c[4..6]) of
 * u = +-xe * 2^20 +- 2 * R, the operand (A +- B) * 2 of the op's output rescaling. se, sr: the
 * signs of the exact and the rounded term (constants at each caller). */
typedef struct
{
    int32_t in_offset;
    int32_t in_multiplier;
    int32_t in_nudge;
    int32_t in_exponent;
    int32_t out_multiplier;
    int32_t out_nudge;
    int32_t out_exponent;
} add_dsp;

NSN_GRU_INLINE int32_t add_one(const add_dsp *a, int32_t xe, int32_t xr, int32_t se, int32_t sr)
{
    const int32_t ur = xr * (1 << 21) + a->in_offset;
    const int32_t r =
        nsn_smmlar(ur, a->in_multiplier, a->in_nudge + (ur >> 31)) >> a->in_exponent;
    const int32_t u = (se > 0 ? xe * (1 << 20) : -(xe * (1 << 20))) + (sr > 0 ? 2 * r : -2 * r);
    return nsn_ssat8(nsn_smmlar(u, a->out_multiplier, a->out_nudge + (u >> 31)) >>
                     a->out_exponent);
}

NSN_GRU_INLINE add_dsp add_at(const int32_t *c)
{
    const add_dsp a = {c[0], c[1], c[2], c[3], c[4], c[5], c[6]};
    return a;
}

/* The hot loops are inline assembly, four elements per step: GCC 12 spills a register and
 * re-derives the pointers in every step of the same loops in C (add_one above, which does the
 * last count % 4 elements, before the loop). Each element: the rounded input's rescaling (ldrsb, add, add, smmlar, asr),
 * the exact input and the sum (ldrsb, then ADD_SUM), the output's rescaling (add, smmlar, asr,
 * ssat), the store (OUT_STORE: the value, or its table entry). */
#define GRU_ADD_ELEM(LOAD_R, LOAD_E, ADD_SUM, OUT_STORE)                                        \
    LOAD_R "add %[t0], %[io], %[t0], lsl #21\n\t"                                              \
           "add %[t1], %[in], %[t0], asr #31\n\t"                                              \
           "smmlar %[t0], %[t0], %[im], %[t1]\n\t"                                             \
           "asr %[t0], %[t0], %[ie]\n\t" LOAD_E ADD_SUM                                        \
           "add %[t1], %[on], %[t0], asr #31\n\t"                                              \
           "smmlar %[t0], %[t0], %[om], %[t1]\n\t"                                             \
           "asr %[t0], %[t0], %[oe]\n\t"                                                       \
           "ssat %[t0], #8, %[t0]\n\t" OUT_STORE

/* u into t0 from R (t0) and the exact input (t1), for the signs (+, +), (+, -) and (-, +). */
#define GRU_SUM_PP "lsl %[t1], %[t1], #20\n\tadd %[t0], %[t1], %[t0], lsl #1\n\t"
#define GRU_SUM_PM "lsl %[t1], %[t1], #20\n\tsub %[t0], %[t1], %[t0], lsl #1\n\t"
#define GRU_SUM_MP "lsl %[t0], %[t0], #1\n\tsub %[t0], %[t0], %[t1], lsl #20\n\t"

#define GRU_ADD_CONSTS                                                                          \
    [io] "r"(a.in_offset), [im] "r"(a.in_multiplier), [in] "r"(a.in_nudge),                    \
        [ie] "r"(a.in_exponent), [om] "r"(a.out_multiplier), [on] "r"(a.out_nudge),            \
        [oe] "r"(a.out_exponent)

/* out[k] = ADD/SUB(exact[k], rounded[k]) for k < count (three buffers); SUM: GRU_SUM_*. */
#define GRU_ADD_ELEM3(SUM)                                                                      \
    GRU_ADD_ELEM("ldrsb %[t0], [%[pr]], #1\n\t", "ldrsb %[t1], [%[pe]], #1\n\t", SUM,           \
                 "strb %[t0], [%[po]], #1\n\t")
#define GRU_ADD_LOOP3(SUM)                                                                      \
    __asm volatile(                                                                            \
        "1:\n\t" GRU_ADD_ELEM3(SUM) GRU_ADD_ELEM3(SUM) GRU_ADD_ELEM3(SUM) GRU_ADD_ELEM3(SUM)      \
        "cmp %[po], %[end]\n\t"                                                                \
        "bne 1b\n\t"                                                                           \
        : [pe] "+r"(exact), [pr] "+r"(rounded), [po] "+r"(out), [t0] "=&r"(t0),              \
          [t1] "=&r"(t1)                                                                       \
        : [end] "r"(end), GRU_ADD_CONSTS                                                       \
        : "cc", "memory")

NSN_GRU_INLINE void add_tail(const add_dsp *a, const int8_t *exact, const int8_t *rounded,
                             int32_t count, int8_t *out, int32_t se, int32_t sr)
{
    int32_t k;
    for (k = count & ~3; k < count; ++k)
    {
        out[k] = (int8_t)add_one(a, exact[k], rounded[k], se, sr);
    }
}

/* The loops are kept out of line: each gets all the registers for its one op. */
NSN_GRU_LOOP void add_plain_loop_dsp(const int32_t *c, const int8_t *exact, const int8_t *rounded,
                                     int32_t count, int8_t *out)
{
    const add_dsp a = add_at(c);
    add_tail(&a, exact, rounded, count, out, 1, 1);
    if (count >= 4)
    {
        const int8_t *end = out + (count & ~3);
        int32_t t0;
        int32_t t1;
        GRU_ADD_LOOP3(GRU_SUM_PP);
    }
}

/* SUB: input 1 - input 2, exact1: input 1 is the exact one. */
NSN_GRU_LOOP void sub_loop_dsp(const int32_t *c, const int8_t *x1, const int8_t *x2, int32_t count,
                               int exact1, int8_t *out)
{
    const add_dsp a = add_at(c);
    const int8_t *end = out + (count & ~3);
    int32_t t0;
    int32_t t1;
    if (exact1)
    {
        const int8_t *exact = x1;
        const int8_t *rounded = x2;
        add_tail(&a, exact, rounded, count, out, 1, -1);
        if (count >= 4)
        {
            GRU_ADD_LOOP3(GRU_SUM_PM);
        }
    }
    else
    {
        const int8_t *exact = x2;
        const int8_t *rounded = x1;
        add_tail(&a, exact, rounded, count, out, -1, 1);
        if (count >= 4)
        {
            GRU_ADD_LOOP3(GRU_SUM_MP);
        }
    }
}

/* io[k] = table[ADD(exact[k], io[k])] (IO_RIGHT: io is the rounded input) or
 * table[ADD(io[k], rounded[k])]: in place, one pointer and the table. */
#define GRU_TABLE_STORE "uxtb %[t0], %[t0]\n\tldrsb %[t0], [%[tab], %[t0]]\n\tstrb %[t0], [%[po]], #1\n\t"
#define GRU_ADD_ELEM_IO(LOAD_R, LOAD_E) GRU_ADD_ELEM(LOAD_R, LOAD_E, GRU_SUM_PP, GRU_TABLE_STORE)
#define GRU_ADD_LOOP_IO(LOAD_R, LOAD_E)                                                         \
    __asm volatile("1:\n\t" GRU_ADD_ELEM_IO(LOAD_R, LOAD_E) GRU_ADD_ELEM_IO(LOAD_R, LOAD_E)     \
                       GRU_ADD_ELEM_IO(LOAD_R, LOAD_E) GRU_ADD_ELEM_IO(LOAD_R, LOAD_E)         \
                   "cmp %[po], %[end]\n\t"                                                     \
                   "bne 1b\n\t"                                                                \
                   : [px] "+r"(other), [po] "+r"(io), [t0] "=&r"(t0), [t1] "=&r"(t1)          \
                   : [end] "r"(end), [tab] "r"(table), GRU_ADD_CONSTS                          \
                   : "cc", "memory")

/* n = TANH(ADD(x_n, m)) written over m, whichever input is the exact one. */
NSN_GRU_LOOP void add_tanh_loop_dsp(const int32_t *c, const int8_t *x_n, int exact_m,
                                    int32_t count, const int8_t *table, int8_t *m)
{
    const add_dsp a = add_at(c);
    const int8_t *other = x_n;
    int8_t *io = m;
    const int8_t *end = m + (count & ~3);
    int32_t t0;
    int32_t t1;
    int32_t k;
    for (k = count & ~3; k < count; ++k)
    {
        m[k] = table[(uint8_t)(exact_m ? add_one(&a, m[k], x_n[k], 1, 1)
                                       : add_one(&a, x_n[k], m[k], 1, 1))];
    }
    if (count < 4)
    {
        return;
    }
    if (exact_m)
    {
        GRU_ADD_LOOP_IO("ldrsb %[t0], [%[px]], #1\n\t", "ldrsb %[t1], [%[po]]\n\t");
    }
    else
    {
        GRU_ADD_LOOP_IO("ldrsb %[t0], [%[po]]\n\t", "ldrsb %[t1], [%[px]], #1\n\t");
    }
}

/* MUL(table[s], x2): (table[s] + o1) * (2 * x2 + 2 * o2), rescaled (nsn_elementwise_s8.c's DSP
 * MUL with its scale 2; c: o1, 2 * o2, multiplier, nudge, exponent); e_positive: the
 * exponent > 0 (then with the sign fix-up of the nudge). */
typedef struct
{
    int32_t offset1;
    int32_t offset2_scaled;
    int32_t multiplier;
    int32_t nudge;
    int32_t exponent;
} mul_dsp;

NSN_GRU_INLINE int32_t mul_one(const mul_dsp *m, int32_t x1, int32_t x2, int e_positive)
{
    const int32_t prod = (x1 + m->offset1) * (2 * x2 + m->offset2_scaled);
    return nsn_ssat8(nsn_smmlar(prod, m->multiplier, m->nudge + (e_positive ? prod >> 31 : 0)) >>
                     m->exponent);
}

/* One element: the table entry of the gate, the other input, the product, its rescaling. */
#define GRU_MUL_ELEM(NUDGE)                                                                     \
    "ldrb %[t0], [%[ps]], #1\n\t"                                                              \
    "ldrsb %[t0], [%[tab], %[t0]]\n\t"                                                         \
    "ldrsb %[t1], [%[px]], #1\n\t"                                                             \
    "add %[t1], %[o2], %[t1], lsl #1\n\t"                                                      \
    "add %[t0], %[t0], %[o1]\n\t"                                                              \
    "mul %[t0], %[t0], %[t1]\n\t" NUDGE "smmlar %[t0], %[t0], %[mm], %[t1]\n\t"                \
    "asr %[t0], %[t0], %[me]\n\t"                                                              \
    "ssat %[t0], #8, %[t0]\n\t"                                                                \
    "strb %[t0], [%[po]], #1\n\t"
#define GRU_NUDGE_SIGN "add %[t1], %[mn], %[t0], asr #31\n\t"
#define GRU_NUDGE_PLAIN "mov %[t1], %[mn]\n\t"

/* out = MUL(LOGISTIC(s1), x2) over `hidden` elements (s1 the gates before their table, read as
 * its index). */
NSN_GRU_INLINE void mul_row(const mul_dsp *m, const int8_t *table, const uint8_t *s1,
                            const int8_t *x2, int32_t hidden, int8_t *out, int e_positive)
{
    const int8_t *end = out + (hidden & ~3);
    int32_t t0;
    int32_t t1;
    int32_t k;
    for (k = hidden & ~3; k < hidden; ++k)
    {
        out[k] = (int8_t)mul_one(m, table[s1[k]], x2[k], e_positive);
    }
    if (hidden < 4)
    {
        return;
    }
    if (e_positive)
    {
        __asm volatile("1:\n\t" GRU_MUL_ELEM(GRU_NUDGE_SIGN) GRU_MUL_ELEM(GRU_NUDGE_SIGN)
                           GRU_MUL_ELEM(GRU_NUDGE_SIGN) GRU_MUL_ELEM(GRU_NUDGE_SIGN)
                       "cmp %[po], %[end]\n\t"
                       "bne 1b\n\t"
                       : [ps] "+r"(s1), [px] "+r"(x2), [po] "+r"(out), [t0] "=&r"(t0),
                         [t1] "=&r"(t1)
                       : [end] "r"(end), [tab] "r"(table), [o1] "r"(m->offset1),
                         [o2] "r"(m->offset2_scaled), [mm] "r"(m->multiplier),
                         [mn] "r"(m->nudge), [me] "r"(m->exponent)
                       : "cc", "memory");
    }
    else
    {
        __asm volatile("1:\n\t" GRU_MUL_ELEM(GRU_NUDGE_PLAIN) GRU_MUL_ELEM(GRU_NUDGE_PLAIN)
                           GRU_MUL_ELEM(GRU_NUDGE_PLAIN) GRU_MUL_ELEM(GRU_NUDGE_PLAIN)
                       "cmp %[po], %[end]\n\t"
                       "bne 1b\n\t"
                       : [ps] "+r"(s1), [px] "+r"(x2), [po] "+r"(out), [t0] "=&r"(t0),
                         [t1] "=&r"(t1)
                       : [end] "r"(end), [tab] "r"(table), [o1] "r"(m->offset1),
                         [o2] "r"(m->offset2_scaled), [mm] "r"(m->multiplier),
                         [mn] "r"(m->nudge), [me] "r"(m->exponent)
                       : "cc", "memory");
    }
}

/* One row of out = MUL(LOGISTIC(s1), x2) (out may be x2); out of line, its constants in
 * registers. */
NSN_GRU_LOOP void mul_row_dsp(const int32_t *c, const int8_t *table, const int8_t *s1,
                              const int8_t *x2, int32_t hidden, int8_t *out)
{
    const mul_dsp m = {c[0], c[1], c[2], c[3], c[4]};
    if (m.exponent > 0)
    {
        mul_row(&m, table, (const uint8_t *)s1, x2, hidden, out, 1);
    }
    else
    {
        mul_row(&m, table, (const uint8_t *)s1, x2, hidden, out, 0);
    }
}

/* All rows at once when hidden is a multiple of 4: an outer loop in the assembly steps s1 to
 * its next row (skip = s1_stride - hidden), so that no row pays a call. 14 registers: the
 * LOGISTIC output's zero point -128 (TFLM's, checked by the code generator) is an immediate. */
#define GRU_MUL_ELEM128(NUDGE)                                                                  \
    "ldrb %[t0], [%[ps]], #1\n\t"                                                              \
    "ldrsb %[t0], [%[tab], %[t0]]\n\t"                                                         \
    "ldrsb %[t1], [%[px]], #1\n\t"                                                             \
    "add %[t1], %[o2], %[t1], lsl #1\n\t"                                                      \
    "add %[t0], %[t0], #128\n\t"                                                               \
    "mul %[t0], %[t0], %[t1]\n\t" NUDGE "smmlar %[t0], %[t0], %[mm], %[t1]\n\t"                \
    "asr %[t0], %[t0], %[me]\n\t"                                                              \
    "ssat %[t0], #8, %[t0]\n\t"                                                                \
    "strb %[t0], [%[po]], #1\n\t"
#define GRU_MUL_ROWS(NUDGE)                                                                     \
    __asm volatile("1:\n\t"                                                                    \
                   "add %[re], %[po], %[hid]\n\t"                                              \
                   "2:\n\t" GRU_MUL_ELEM128(NUDGE) GRU_MUL_ELEM128(NUDGE)                      \
                       GRU_MUL_ELEM128(NUDGE) GRU_MUL_ELEM128(NUDGE)                           \
                   "cmp %[po], %[re]\n\t"                                                      \
                   "bne 2b\n\t"                                                                \
                   "add %[ps], %[ps], %[skip]\n\t"                                             \
                   "cmp %[po], %[end]\n\t"                                                     \
                   "bne 1b\n\t"                                                                \
                   : [ps] "+r"(s1), [px] "+r"(x2), [po] "+r"(out), [t0] "=&r"(t0),            \
                     [t1] "=&r"(t1), [re] "=&r"(re)                                            \
                   : [end] "r"(end), [hid] "r"(hidden), [skip] "r"(s1_stride - hidden),        \
                     [tab] "r"(table), [o2] "r"(m.offset2_scaled), [mm] "r"(m.multiplier),     \
                     [mn] "r"(m.nudge), [me] "r"(m.exponent)                                   \
                   : "cc", "memory")

/* out = MUL(LOGISTIC(s1), x2) over `rows` rows of `hidden`: s1's rows s1_stride apart, x2 and
 * out contiguous (out may be x2). */
NSN_GRU_LOOP void mul_loop_dsp(const int32_t *c, const int8_t *table, const int8_t *s1,
                               int32_t s1_stride, const int8_t *x2, int32_t rows,
                               int32_t hidden, int8_t *out)
{
    const mul_dsp m = {c[0], c[1], c[2], c[3], c[4]};
    int32_t row;
    if ((hidden & 3) == 0)
    {
        const int8_t *end = out + rows * hidden;
        int32_t t0;
        int32_t t1;
        int32_t re;
        if (m.exponent > 0)
        {
            GRU_MUL_ROWS(GRU_NUDGE_SIGN);
        }
        else
        {
            GRU_MUL_ROWS(GRU_NUDGE_PLAIN);
        }
        return;
    }
    for (row = 0; row < rows; ++row, s1 += s1_stride, x2 += hidden, out += hidden)
    {
        mul_row_dsp(c, table, s1, x2, hidden, out);
    }
}

/* `rows` rows (rows * hidden <= NSN_GRU_DSP_MAX_HIDDEN), op by op over int8 buffers: g (the
 * gates before their LOGISTIC), m, then n over m, d in the other buffer and q over d; bit i
 * of the exact-input bits: the exact input of the i-th ADD/SUB is its input 2. */
NSN_GRU_LOOP void gates_rows_dsp(const nsn_gru_gates_params *p,
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
    int8_t n[NSN_GRU_DSP_MAX_HIDDEN];
    int8_t d[NSN_GRU_DSP_MAX_HIDDEN];
    add_plain_loop_dsp(c + DSP_ADD_ZR, (exact2 & 1) ? h_zr : x_zr, (exact2 & 1) ? x_zr : h_zr,
                       2 * units, g);
    mul_loop_dsp(c + DSP_MUL_R, p->sigmoid, g + hidden - p->z_offset, 2 * hidden, h_n, rows,
                 hidden, n);
    add_tanh_loop_dsp(c + DSP_ADD_N, x_n, exact2 & 2, units, p->tanh, n);
    sub_loop_dsp(c + DSP_SUB_D, h, n, units, !(exact2 & 4), d);
    mul_loop_dsp(c + DSP_MUL_Z, p->sigmoid, g + p->z_offset, 2 * hidden, d, rows, hidden, d);
    add_plain_loop_dsp(c + DSP_ADD_H, (exact2 & 8) ? d : n, (exact2 & 8) ? n : d, units, h_out);
}

NSN_GRU_LOOP void gates_dsp_run(const nsn_gru_gates_params *p,
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
    int32_t row;
    if (rows <= chunk) /* one pass (GTCRN's intra-frame steps): no loop to keep */
    {
        gates_rows_dsp(p, rows, x_zr, h_zr, h_n, x_n, h, h_out);
        return;
    }
    for (row = 0; row < rows; row += chunk)
    {
        const int32_t o = row * hidden;
        gates_rows_dsp(p, rows - row < chunk ? rows - row : chunk, x_zr + 2 * o, h_zr + 2 * o,
                       h_n + o, x_n + o, h + o, h_out + o);
    }
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

/* One op per loop, four lanes per step, the tail predicated (as nsn_elementwise_s8.c's MVE
 * path), so that each op's parameters stay in registers; out of line for the same reason. */
#if defined(__GNUC__)
#define NSN_GRU_MVE_LOOP static __attribute__((noinline))
#define NSN_GRU_MVE_INLINE static inline __attribute__((always_inline))
#else
#define NSN_GRU_MVE_LOOP static
#define NSN_GRU_MVE_INLINE static inline
#endif

/* out = ADD/SUB(x1, x2) over count elements, through `table` when use_table (a constant at
 * each caller: each case is its own loop); full vectors, then a predicated tail. */
NSN_GRU_MVE_INLINE void add_loop_mve(const nsn_add_params *p, int32_t sign, const int8_t *x1,
                                     const int8_t *x2, int32_t count, const int8_t *table,
                                     int use_table, int8_t *out)
{
    const binary_mve b = add_setup_mve(p);
    int32_t k;
    for (k = 0; k + 4 <= count; k += 4)
    {
        const int32x4_t v = add_mve(&b, vldrbq_s32(x1 + k), vldrbq_s32(x2 + k), sign);
        vstrbq_s32(out + k, use_table ? lut_mve(table, v) : v);
    }
    if (k < count)
    {
        const mve_pred16_t pred = vctp32q((uint32_t)(count - k));
        const int32x4_t v =
            add_mve(&b, vldrbq_z_s32(x1 + k, pred), vldrbq_z_s32(x2 + k, pred), sign);
        vstrbq_p_s32(out + k, use_table ? lut_mve(table, v) : v, pred);
    }
}

NSN_GRU_MVE_LOOP void add_table_loop_mve(const nsn_add_params *p, const int8_t *x1,
                                         const int8_t *x2, int32_t count, const int8_t *table,
                                         int8_t *out)
{
    add_loop_mve(p, 1, x1, x2, count, table, 1, out);
}

NSN_GRU_MVE_LOOP void add_plain_loop_mve(const nsn_add_params *p, int32_t sign,
                                         const int8_t *x1, const int8_t *x2, int32_t count,
                                         int8_t *out)
{
    if (sign > 0)
    {
        add_loop_mve(p, 1, x1, x2, count, NULL, 0, out);
    }
    else
    {
        add_loop_mve(p, -1, x1, x2, count, NULL, 0, out);
    }
}

/* out = MUL(table[s1], x2) over `rows` rows of `hidden`: s1's rows s1_stride apart (the gates
 * before their LOGISTIC), x2 and out contiguous. */
NSN_GRU_MVE_LOOP void mul_loop_mve(const nsn_mul_params *p, const int8_t *table,
                                   const int8_t *s1, int32_t s1_stride, const int8_t *x2,
                                   int32_t rows, int32_t hidden, int8_t *out)
{
    const binary_mve b = mul_setup_mve(p);
    int32_t row;
    int32_t k;
    for (row = 0; row < rows; ++row, s1 += s1_stride, x2 += hidden, out += hidden)
    {
        for (k = 0; k + 4 <= hidden; k += 4)
        {
            const int32x4_t g = lut_mve(table, vldrbq_s32(s1 + k));
            vstrbq_s32(out + k, mul_mve(&b, g, vldrbq_s32(x2 + k)));
        }
        if (k < hidden)
        {
            const mve_pred16_t pred = vctp32q((uint32_t)(hidden - k));
            const int32x4_t g = lut_mve(table, vldrbq_z_s32(s1 + k, pred));
            vstrbq_p_s32(out + k, mul_mve(&b, g, vldrbq_z_s32(x2 + k, pred)), pred);
        }
    }
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
    const int32_t chunk = NSN_GRU_DSP_MAX_HIDDEN / hidden; /* rows per pass */
    int8_t g[2 * NSN_GRU_DSP_MAX_HIDDEN];
    int8_t m[NSN_GRU_DSP_MAX_HIDDEN];
    int8_t n[NSN_GRU_DSP_MAX_HIDDEN];
    int32_t row;
    if (chunk < 1) /* H beyond the buffers: the portable loop */
    {
        gates_ref(p, rows, x_zr, h_zr, h_n, x_n, h, h_out);
        return;
    }
    for (row = 0; row < rows; row += chunk)
    {
        const int32_t r = rows - row < chunk ? rows - row : chunk;
        const int32_t o = row * hidden;
        const int32_t units = r * hidden;
        add_plain_loop_mve(&p->add_zr, 1, x_zr + 2 * o, h_zr + 2 * o, 2 * units, g);
        mul_loop_mve(&p->mul_r, p->sigmoid, g + hidden - p->z_offset, 2 * hidden, h_n + o, r,
                     hidden, m);
        add_table_loop_mve(&p->add_n, x_n + o, m, units, p->tanh, n);
        add_plain_loop_mve(&p->sub_d, -1, h + o, n, units, m);
        mul_loop_mve(&p->mul_z, p->sigmoid, g + p->z_offset, 2 * hidden, m, r, hidden, m);
        add_plain_loop_mve(&p->add_h, 1, n, m, units, h_out + o);
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
    if (p->dsp != NULL && p->hidden <= NSN_GRU_DSP_MAX_HIDDEN)
    {
        gates_dsp_run(p, rows, x_zr, h_zr, h_n, x_n, h, h_out);
        return NSN_OK;
    }
#endif
    gates_ref(p, rows, x_zr, h_zr, h_n, x_n, h, h_out);
#endif
    return NSN_OK;
}
