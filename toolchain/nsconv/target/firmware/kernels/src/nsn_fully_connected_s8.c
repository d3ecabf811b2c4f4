/* SPDX-License-Identifier: Apache-2.0 */
/*
 * FULLY_CONNECTED, int8 activations and weights, int32 bias, per-channel requantization:
 * TFLM reference_integer_ops::FullyConnectedPerChannel for one input vector.
 *
 * Three paths with the same bits (see nsn_nnfunctions.h for how one is chosen):
 *   reference  one row at a time, portable C99.
 *   DSP        the input is sign-extended once per call (input offset included) into int16
 *              pairs in the ctx scratch, ordered as SXTB16 splits a natural weight word:
 *              (x0, x2), (x1, x3). Two weight rows per pass share every input load (LDM);
 *              SMLAD does two MACs per instruction; word-aligned rows load two weight words
 *              per LDRD. Weights stay in the standard [out][in] layout. The input offset
 *              costs nothing here (it is added during the expansion).
 *   MVE        four weight rows per pass share every 16-byte input load; VMLADAVA.S8 does 16
 *              MACs per instruction in a tail-predicated loop (DLSTP/LETP). A non-zero input
 *              offset takes a widening int16 loop at half the speed: fold it into the bias.
 * Both optimized paths collect the sums of a block of 32 channels, then requantize the block
 * in a separate loop (DSP: one SMLAL per channel, see nsn_requantize_dsp; MVE: four channels
 * per step).
 */
#include "nsn_nnfunctions.h"

#include <stddef.h>

#include "nsn_kernels_internal.h"

/* The MAC loops are assembly that needs up to 13 registers, which an unoptimized build (-O0,
 * with a frame pointer and no register allocation to speak of) cannot give them. Such a build
 * does not quietly take the portable loop under the name of the fast path: it stops here. */
#if (defined(NSN_KERNELS_DSP) || defined(NSN_KERNELS_MVE)) && !defined(__OPTIMIZE__)
#error "nsconv kernels: the dsp and mve paths need an optimized build (-O1 or higher); build with -DNSN_KERNELS_FORCE_REFERENCE to choose the portable path"
#endif
#if defined(NSN_KERNELS_DSP)
#define FC_DSP 1
#elif defined(NSN_KERNELS_MVE)
#define FC_MVE 1
#endif

/* sum_i w[i] * (x[i] + input_offset); NSN_FC_MAX_INPUT_FEATURES keeps it inside int32. */
static int32_t dot_s8(const int8_t *row, const int8_t *input, int32_t input_offset, int32_t n)
{
    int32_t acc = 0;
    int32_t i;
    for (i = 0; i < n; ++i)
    {
        acc += (int32_t)row[i] * ((int32_t)input[i] + input_offset);
    }
    return acc;
}

static void fc_reference(const nsn_fc_params *params,
                         const nsn_per_channel_quant_params *quant,
                         const nsn_fc_dims *dims,
                         const int8_t *input,
                         const int8_t *weights,
                         const int32_t *bias,
                         int8_t *output)
{
    int32_t c;
    for (c = 0; c < dims->output_features; ++c)
    {
        const int8_t *row = weights + (size_t)c * (size_t)dims->input_features;
        int32_t acc = dot_s8(row, input, params->input_offset, dims->input_features);
        if (bias != NULL)
        {
            acc = nsn_wrapping_add(acc, bias[c]);
        }
        acc = nsn_requantize(acc, quant->multiplier[c], quant->shift[c]);
        acc = nsn_wrapping_add(acc, params->output_offset);
        output[c] = (int8_t)nsn_clamp(acc, params->activation_min, params->activation_max);
    }
}

#if defined(FC_DSP)

/* Groups of four inputs (x0, x1, x2, x3) -> words (x0 + o, x2 + o), (x1 + o, x3 + o). */
static void fc_expand_input_dsp(const int8_t *input, int32_t groups, int32_t offset, int32_t *buf)
{
    const int32_t offset2 = (int32_t)(((uint32_t)offset & 0xFFFFu) * 0x10001u);
    for (; groups > 0; --groups)
    {
        const int32_t v = nsn_read_s8x4(input);
        input += 4;
        buf[0] = __sxtab16(offset2, v);
        buf[1] = nsn_sxtab16_ror8(offset2, v);
        buf += 2;
    }
}

/* One weight word W (4 weights) of a row against the matching input pair words XA = (x0, x2)
 * and XB = (x1, x3): SXTB16 W gives (w0, w2), SXTB16 W ROR 8 gives (w1, w3). */
#define FC_MAC_WORD(ACC, W, XA, XB)                                                            \
    "sxtb16 %[t], %[" W "]\n\t"                                                                \
    "smlad %[" ACC "], %[t], %[" XA "], %[" ACC "]\n\t"                                        \
    "sxtb16 %[" W "], %[" W "], ror #8\n\t"                                                    \
    "smlad %[" ACC "], %[" W "], %[" XB "], %[" ACC "]\n\t"

/* Eight inputs for two rows: the four pair words in x0..x3, two weight words per row. */
#define FC_MAC_8(LOAD_ROW0, LOAD_ROW1)                                                         \
    "ldm %[xb]!, {%[x0], %[x1], %[x2], %[x3]}\n\t" LOAD_ROW0 FC_MAC_WORD("a0", "wa", "x0", "x1") \
        FC_MAC_WORD("a0", "wb", "x2", "x3") LOAD_ROW1 FC_MAC_WORD("a1", "wa", "x0", "x1")      \
            FC_MAC_WORD("a1", "wb", "x2", "x3")

/* Four inputs for two rows: pair words in x0, x1, one weight word per row. */
#define FC_MAC_4                                                                               \
    "ldrd %[x0], %[x1], [%[xb]], #8\n\t"                                                       \
    "ldr %[wa], [%[p0]], #4\n\t" FC_MAC_WORD("a0", "wa", "x0", "x1")                          \
    "ldr %[wa], [%[p1]], #4\n\t" FC_MAC_WORD("a1", "wa", "x0", "x1")

/* LDRD needs word-aligned rows; LDR does not (Armv7-M unaligned access). */
#define FC_LDRD(P) "ldrd %[wa], %[wb], [%[" P "]], #8\n\t"
#define FC_LDR2(P) "ldr %[wa], [%[" P "]], #4\n\t" "ldr %[wb], [%[" P "]], #4\n\t"

/*
 * The MAC loops are written out in assembly: GCC 12 keeps one address register per stream
 * without post-increment addressing, does not fuse the rotation into SXTB16 (arm_acle.h has no
 * rotated form) and does not load the input with LDM: 12 % more instructions per MAC, and it
 * spills the loop state around the 13 registers the loop needs. x0..x3 are fixed registers
 * because an LDM register list must be ascending; r7 (the Thumb frame pointer) is not used.
 */
#define FC_DSP_X_REGISTERS                                                                     \
    register int32_t x0 __asm("r8");                                                           \
    register int32_t x1 __asm("r9");                                                           \
    register int32_t x2 __asm("r10");                                                          \
    register int32_t x3 __asm("r11")

/* Rows with word-aligned starts and input_features (stride) a multiple of 4: for each of
 * `pairs` pairs of rows (row, row + stride), the two sums start at the next two int32 of `init`
 * (the bias) and go to the next two of `acc`. stride 0 runs one row twice. A row runs as n32
 * steps of 32 inputs, one of 16 if n16 (0 or 1), then n4 steps of 4. Returns the row after the
 * last pair. */
static const int8_t *fc_pairs_aligned_dsp(const int8_t *row,
                                          int32_t stride,
                                          int32_t pairs,
                                          const int32_t *init,
                                          int32_t *acc,
                                          const int32_t *xbuf,
                                          int32_t n32,
                                          int32_t n16,
                                          int32_t n4)
{
    FC_DSP_X_REGISTERS;
    int32_t a0, a1, wa, wb, t, n;
    const int8_t *p0 = row;
    const int8_t *p1;
    const int32_t *xb;
    __asm volatile(
        "0:\n\t"
        "ldr %[t], %[init]\n\t"
        "ldrd %[a0], %[a1], [%[t]], #8\n\t"
        "str %[t], %[init]\n\t"
        "ldr %[t], %[stride]\n\t"
        "add %[p1], %[p0], %[t]\n\t"
        "ldr %[xb], %[xbuf]\n\t"
        "ldr %[n], %[n32]\n\t"
        "cmp %[n], #0\n\t"
        "beq 2f\n"
        "1:\n\t" FC_MAC_8(FC_LDRD("p0"), FC_LDRD("p1")) FC_MAC_8(FC_LDRD("p0"), FC_LDRD("p1"))
            FC_MAC_8(FC_LDRD("p0"), FC_LDRD("p1")) FC_MAC_8(FC_LDRD("p0"), FC_LDRD("p1"))
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n"
        "2:\n\t"
        "ldr %[n], %[n16]\n\t"
        "cmp %[n], #0\n\t"
        "beq 3f\n\t" FC_MAC_8(FC_LDRD("p0"), FC_LDRD("p1")) FC_MAC_8(FC_LDRD("p0"), FC_LDRD("p1"))
        "3:\n\t"
        "ldr %[n], %[n4]\n\t"
        "cmp %[n], #0\n\t"
        "beq 5f\n"
        "4:\n\t" FC_MAC_4
        "subs %[n], %[n], #1\n\t"
        "bne 4b\n"
        "5:\n\t"
        "ldr %[t], %[acc]\n\t"
        "strd %[a0], %[a1], [%[t]], #8\n\t"
        "str %[t], %[acc]\n\t"
        "mov %[p0], %[p1]\n\t"
        "ldr %[t], %[pairs]\n\t"
        "subs %[t], %[t], #1\n\t"
        "str %[t], %[pairs]\n\t"
        "bne 0b\n\t"
        : [p0] "+r"(p0), [p1] "=&r"(p1), [a0] "=&r"(a0), [a1] "=&r"(a1), [xb] "=&r"(xb),
          [n] "=&r"(n), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3),
          [wa] "=&r"(wa), [wb] "=&r"(wb), [t] "=&r"(t), [init] "+m"(init), [acc] "+m"(acc),
          [pairs] "+m"(pairs)
        : [stride] "m"(stride), [xbuf] "m"(xbuf), [n32] "m"(n32), [n16] "m"(n16), [n4] "m"(n4)
        : "cc", "memory");
    return p0;
}

/* Any rows: acc0, acc1 += rows r0, r1 . expanded input over n4 inputs (a multiple of 4),
 * weight words read with LDR. */
static inline void fc_dot2_dsp(
    const int8_t *r0, const int8_t *r1, const int32_t *xbuf, int32_t n4, int32_t *acc0, int32_t *acc1)
{
    FC_DSP_X_REGISTERS;
    int32_t a0 = *acc0;
    int32_t a1 = *acc1;
    int32_t wa, wb, t;
    const int8_t *p0 = r0;
    const int8_t *p1 = r1;
    const int32_t *xb = xbuf;
    int32_t n = n4 >> 4;
    if (n > 0)
    {
        __asm volatile("1:\n\t" FC_MAC_8(FC_LDR2("p0"), FC_LDR2("p1"))
                           FC_MAC_8(FC_LDR2("p0"), FC_LDR2("p1")) "subs %[n], %[n], #1\n\t"
                                                                  "bne 1b\n\t"
                       : [a0] "+r"(a0), [a1] "+r"(a1), [p0] "+r"(p0), [p1] "+r"(p1),
                         [xb] "+r"(xb), [n] "+r"(n), [x0] "=&r"(x0), [x1] "=&r"(x1),
                         [x2] "=&r"(x2), [x3] "=&r"(x3), [wa] "=&r"(wa), [wb] "=&r"(wb),
                         [t] "=&r"(t)
                       :
                       : "cc", "memory");
    }
    n = (n4 >> 2) & 3;
    if (n > 0)
    {
        __asm volatile("1:\n\t" FC_MAC_4 "subs %[n], %[n], #1\n\t"
                                         "bne 1b\n\t"
                       : [a0] "+r"(a0), [a1] "+r"(a1), [p0] "+r"(p0), [p1] "+r"(p1),
                         [xb] "+r"(xb), [n] "+r"(n), [x0] "=&r"(x0), [x1] "=&r"(x1),
                         [wa] "=&r"(wa), [t] "=&r"(t)
                       :
                       : "cc", "memory");
    }
    *acc0 = a0;
    *acc1 = a1;
}

/* Output channels per block: the sums of a block wait in a small array on the stack, and the
 * requantization runs as its own loop with its parameters in registers. */
#define FC_DSP_BLOCK 32

/* output[i] = clamp(requantize(acc[i], M[i], S[i]) + output_offset) */
static void fc_requantize_dsp(const int32_t *acc,
                              int32_t count,
                              const int32_t *multiplier,
                              const int32_t *shift,
                              const nsn_fc_params *params,
                              int8_t *output)
{
    const int32_t output_offset = params->output_offset;
    const int32_t act_min = params->activation_min;
    const int32_t act_max = params->activation_max;
    int32_t i;
    if (act_min == INT8_MIN && act_max == INT8_MAX)
    {
        for (i = 0; i < count; ++i)
        {
            const int32_t out = nsn_requantize_dsp(acc[i], multiplier[i], shift[i]);
            output[i] = (int8_t)nsn_ssat8(nsn_wrapping_add(out, output_offset));
        }
    }
    else
    {
        for (i = 0; i < count; ++i)
        {
            const int32_t out = nsn_requantize_dsp(acc[i], multiplier[i], shift[i]);
            output[i] = (int8_t)nsn_clamp(nsn_wrapping_add(out, output_offset), act_min, act_max);
        }
    }
}

static void fc_dsp(const nsn_fc_params *params,
                   const nsn_per_channel_quant_params *quant,
                   const nsn_fc_dims *dims,
                   const int8_t *input,
                   const int8_t *weights,
                   const int32_t *bias,
                   int8_t *output,
                   int32_t *xbuf)
{
    const int32_t n = dims->input_features;
    const int32_t n_out = dims->output_features;
    const int32_t n4 = n & ~3;
    const int32_t input_offset = params->input_offset;
    const int aligned = n4 == n && ((uintptr_t)weights & 3u) == 0;
    const int8_t *r0 = weights;
    int32_t acc[FC_DSP_BLOCK + 1]; /* + 1: a pair at the end of an odd block */
    int32_t block;

    fc_expand_input_dsp(input, n4 >> 2, input_offset, xbuf);
    for (block = 0; block < n_out; block += FC_DSP_BLOCK)
    {
        const int32_t count = n_out - block < FC_DSP_BLOCK ? n_out - block : FC_DSP_BLOCK;
        int32_t j;
        if (aligned)
        {
            /* the sums start at the bias (the same result modulo 2^32), or at 0 */
            const int32_t *init = bias != NULL ? bias + block : acc;
            int32_t last[2];
            if (bias == NULL)
            {
                for (j = 0; j < count; ++j)
                {
                    acc[j] = 0;
                }
            }
            if (count > 1)
            {
                r0 = fc_pairs_aligned_dsp(r0, n, count >> 1, init, acc, xbuf, n >> 5,
                                          (n >> 4) & 1, (n >> 2) & 3);
            }
            if ((count & 1) != 0)
            {
                /* the last row runs as both rows of a pair; acc[count] is spare */
                last[0] = bias != NULL ? bias[block + count - 1] : 0;
                last[1] = last[0];
                r0 = fc_pairs_aligned_dsp(r0, 0, 1, last, acc + count - 1, xbuf, n >> 5,
                                          (n >> 4) & 1, (n >> 2) & 3);
            }
        }
        else
        {
            for (j = 0; j < count; ++j)
            {
                acc[j] = bias != NULL ? bias[block + j] : 0;
            }
            acc[count] = acc[count - 1];
            for (j = 0; j < count; j += 2)
            {
                const int32_t second = j + 1 < count;
                const int8_t *r1 = second ? r0 + n : r0;
                int32_t i;
                fc_dot2_dsp(r0, r1, xbuf, n4, &acc[j], &acc[j + 1]);
                for (i = n4; i < n; ++i)
                {
                    const int32_t x = (int32_t)input[i] + input_offset;
                    acc[j] = nsn_wrapping_add(acc[j], (int32_t)r0[i] * x);
                    acc[j + 1] = nsn_wrapping_add(acc[j + 1], (int32_t)r1[i] * x);
                }
                r0 = r1 + n;
            }
        }
        fc_requantize_dsp(acc, count, quant->multiplier + block, quant->shift + block, params,
                          output + block);
    }
}

#endif /* FC_DSP */

#if defined(FC_MVE)

/* Output channels per block (a multiple of 4); the sums wait in a stack array. */
#define FC_MVE_BLOCK 32

/*
 * For each of `passes` groups of four consecutive rows (row, row + stride, ...), four int32
 * at acc get the four dot products with the input, and acc advances by 4; stride 0 runs one
 * row four times. Returns the row after the last group: the last row pointer, which the loads
 * advanced by whole vectors, moved `back` (n minus n rounded up to whole vectors).
 *
 * Assembly because GCC 12 neither emits tail-predicated loops nor keeps this pass loop out
 * of the stack. The inner loop is a tail-predicated low-overhead loop (DLSTP/LETP): the last
 * iteration is predicated by the hardware, so any length runs without tail code, and the
 * predicated loads do not touch memory past the row. "Te": VMLADAVA accumulates into an even
 * register; "l": widening loads (VLDRB.S16) take low base registers only.
 */
#define FC_MVE_PASSES(LOOP_START, STEP, X_SIZE, ROW_SIZE, MLA, VEC, ADD_OFFSET)            \
    do                                                                                         \
    {                                                                                          \
        int32_t a0, a1, a2, a3;                                                                \
        const int8_t *x, *p1, *p2, *p3;                                                        \
        VEC vx, w0, w1;                                                                        \
        __asm volatile("0:\n\t"                                                                \
                       "movs %[a0], #0\n\t"                                                    \
                       "movs %[a1], #0\n\t"                                                    \
                       "movs %[a2], #0\n\t"                                                    \
                       "movs %[a3], #0\n\t"                                                    \
                       "ldr %[x], %[input]\n\t"                                                \
                       "add %[p1], %[p0], %[stride]\n\t"                                       \
                       "add %[p2], %[p1], %[stride]\n\t"                                       \
                       "add %[p3], %[p2], %[stride]\n\t" LOOP_START " lr, %[n]\n"              \
                       "1:\n\t"                                                                \
                       "vldrb." X_SIZE " %q[vx], [%[x]], #" STEP "\n\t"                        \
                       "vldrb." ROW_SIZE " %q[w0], [%[p0]], #" STEP "\n\t" ADD_OFFSET           \
                       "vldrb." ROW_SIZE " %q[w1], [%[p1]], #" STEP "\n\t"                      \
                       MLA " %[a0], %q[vx], %q[w0]\n\t"                                        \
                       "vldrb." ROW_SIZE " %q[w0], [%[p2]], #" STEP "\n\t"                      \
                       MLA " %[a1], %q[vx], %q[w1]\n\t"                                        \
                       "vldrb." ROW_SIZE " %q[w1], [%[p3]], #" STEP "\n\t"                      \
                       MLA " %[a2], %q[vx], %q[w0]\n\t"                                        \
                       MLA " %[a3], %q[vx], %q[w1]\n\t"                                        \
                       "letp lr, 1b\n\t"                                                       \
                       "strd %[a0], %[a1], [%[acc]], #8\n\t"                                   \
                       "strd %[a2], %[a3], [%[acc]], #8\n\t"                                   \
                       "ldr %[a0], %[back]\n\t"                                                \
                       "add %[p0], %[p3], %[a0]\n\t"                                           \
                       "subs %[passes], %[passes], #1\n\t"                                     \
                       "bne 0b\n\t"                                                            \
                       : [a0] "=&Te"(a0), [a1] "=&Te"(a1), [a2] "=&Te"(a2), [a3] "=&Te"(a3),   \
                         [x] "=&l"(x), [p0] "+l"(row), [p1] "=&l"(p1), [p2] "=&l"(p2),         \
                         [p3] "=&l"(p3), [vx] "=&w"(vx), [w0] "=&w"(w0), [w1] "=&w"(w1),       \
                         [acc] "+r"(acc), [passes] "+r"(passes)                                \
                       : [input] "m"(input), [stride] "r"(stride), [n] "r"(n), [back] "m"(back), \
                         [voff] "w"(voffset)                                                   \
                       : "lr", "memory", "cc");                                                \
    } while (0)

/* Input offset 0: VMLADAVA.S8, 16 MACs per instruction, one input load for four rows. */
static const int8_t *fc_passes_mve(const int8_t *row,
                                   int32_t stride,
                                   int32_t passes,
                                   int32_t *acc,
                                   const int8_t *input,
                                   int32_t n)
{
    const int8x16_t voffset = vdupq_n_s8(0); /* unused */
    const int32_t back = n - ((n + 15) & ~15);
    FC_MVE_PASSES("dlstp.8", "16", "8", "8", "vmladava.s8", int8x16_t, "");
    return row;
}

/* Non-zero input offset: inputs and weights widened to int16 (VLDRB.S16), x + offset added
 * per lane, eight MACs per VMLADAVA.S16. */
static const int8_t *fc_passes_offset_mve(const int8_t *row,
                                          int32_t stride,
                                          int32_t passes,
                                          int32_t *acc,
                                          const int8_t *input,
                                          int32_t n,
                                          int32_t offset)
{
    const int16x8_t voffset = vdupq_n_s16((int16_t)offset);
    const int32_t back = n - ((n + 7) & ~7);
    FC_MVE_PASSES("dlstp.16", "8", "s16", "s16", "vmladava.s16", int16x8_t,
                  "vadd.i16 %q[vx], %q[vx], %q[voff]\n\t");
    return row;
}

static void fc_mve(const nsn_fc_params *params,
                   const nsn_per_channel_quant_params *quant,
                   const nsn_fc_dims *dims,
                   const int8_t *input,
                   const int8_t *weights,
                   const int32_t *bias,
                   int8_t *output)
{
    const int32_t n = dims->input_features;
    const int32_t n_out = dims->output_features;
    const int32_t offset = params->input_offset;
    const int32x4_t act_min = vdupq_n_s32(params->activation_min);
    const int32x4_t act_max = vdupq_n_s32(params->activation_max);
    const int32_t output_offset = params->output_offset;
    /* in locals: the output stores could alias the pointed-to parameters */
    const int32_t *const multiplier = quant->multiplier;
    const int32_t *const shift = quant->shift;
    const int8_t *row = weights;
    int32_t acc[FC_MVE_BLOCK + 3]; /* + 3: the copies of a last row run alone */
    int32_t block;
    for (block = 0; block < n_out; block += FC_MVE_BLOCK)
    {
        const int32_t count = n_out - block < FC_MVE_BLOCK ? n_out - block : FC_MVE_BLOCK;
        const int32_t groups = count >> 2;
        int32_t j;
        /* groups of four rows, then each remaining row alone (as four copies) */
        if (groups > 0)
        {
            row = offset == 0 ? fc_passes_mve(row, n, groups, acc, input, n)
                              : fc_passes_offset_mve(row, n, groups, acc, input, n, offset);
        }
        for (j = groups << 2; j < count; ++j)
        {
            row = offset == 0 ? fc_passes_mve(row, 0, 1, acc + j, input, n)
                              : fc_passes_offset_mve(row, 0, 1, acc + j, input, n, offset);
        }
        /* full groups of four channels unpredicated, then the rest under a VCTP predicate */
        for (j = 0; j + 4 <= count; j += 4)
        {
            int32x4_t v = vldrwq_s32(acc + j);
            if (bias != NULL)
            {
                v = vaddq_s32(v, vldrwq_s32(bias + block + j));
            }
            v = nsn_requantize_mve(v, vldrwq_s32(multiplier + block + j),
                                   vldrwq_s32(shift + block + j));
            v = vaddq_n_s32(v, output_offset);
            vstrbq_s32(output + block + j, vminq_s32(vmaxq_s32(v, act_min), act_max));
        }
        if (j < count)
        {
            const mve_pred16_t p = vctp32q((uint32_t)(count - j));
            int32x4_t v = vldrwq_s32(acc + j);
            if (bias != NULL)
            {
                v = vaddq_s32(v, vldrwq_z_s32(bias + block + j, p));
            }
            v = nsn_requantize_mve(v, vldrwq_z_s32(multiplier + block + j, p),
                                   vldrwq_z_s32(shift + block + j, p));
            v = vaddq_n_s32(v, output_offset);
            vstrbq_p_s32(output + block + j, vminq_s32(vmaxq_s32(v, act_min), act_max), p);
        }
    }
}

#endif /* FC_MVE */

/* x + input_offset must fit an int16 lane of the DSP and MVE loops (NSN_FC_MAX_INPUT_OFFSET). */
#define FC_MAX_BOUND 32767

#if !defined(FC_DSP)
/* The scratch contract of nsn_context on the paths that need no scratch: a buffer, if
 * given, is 4-byte aligned and its size is not negative (the DSP path checks its own need). */
static int scratch_ok(const nsn_context *ctx, int32_t need)
{
    if (ctx == NULL || ctx->buf == NULL)
    {
        return need == 0;
    }
    return ctx->size >= need && ((uintptr_t)ctx->buf & 3u) == 0;
}
#endif

const char *nsn_kernels_path(void)
{
    return NSN_KERNELS_PATH;
}

nsn_status nsn_fully_connected_s8(const nsn_context *ctx,
                                  const nsn_fc_params *params,
                                  const nsn_per_channel_quant_params *quant,
                                  const nsn_fc_dims *dims,
                                  const int8_t *input,
                                  const int8_t *weights,
                                  const int32_t *bias,
                                  int8_t *output)
{
    if (params == NULL || quant == NULL || dims == NULL || input == NULL || weights == NULL ||
        output == NULL || quant->multiplier == NULL || quant->shift == NULL)
    {
        return NSN_ARG_ERROR;
    }
    if (dims->input_features < 1 || dims->input_features > NSN_FC_MAX_INPUT_FEATURES ||
        dims->output_features < 1)
    {
        return NSN_ARG_ERROR;
    }
#if defined(FC_MVE)
    if (!scratch_ok(ctx, 0))
    {
        return NSN_SCRATCH_ERROR;
    }
    {
        const int32_t bound = nsn_offset_bound(params->input_offset);
        if (bound >= 0 && bound <= FC_MAX_BOUND)
        {
            fc_mve(params, quant, dims, input, weights, bias, output);
            return NSN_OK;
        }
    }
#elif defined(FC_DSP)
    {
        const int32_t bound = nsn_offset_bound(params->input_offset);
        const int32_t need = NSN_FC_S8_BUFFER_SIZE_DSP(dims->input_features);
        void *buf = ctx != NULL ? ctx->buf : NULL;
        const int have = need == 0 || (buf != NULL && ctx->size >= need &&
                                       ((uintptr_t)buf & 3u) == 0);
        if (have && bound >= 0 && bound <= FC_MAX_BOUND)
        {
            fc_dsp(params, quant, dims, input, weights, bias, output, (int32_t *)buf);
            return NSN_OK;
        }
        if (!have)
        {
            return NSN_SCRATCH_ERROR;
        }
    }
#else
    if (!scratch_ok(ctx, 0))
    {
        return NSN_SCRATCH_ERROR;
    }
#endif
    /* the portable path; on the DSP and MVE paths only for an input offset beyond what their
     * int16 lanes hold (|input_offset| > NSN_FC_MAX_INPUT_OFFSET, never an int8 model's) */
    fc_reference(params, quant, dims, input, weights, bias, output);
    return NSN_OK;
}

int32_t nsn_fully_connected_s8_get_buffer_size_dsp(const nsn_fc_dims *dims)
{
    return dims != NULL && dims->input_features > 0
               ? NSN_FC_S8_BUFFER_SIZE_DSP(dims->input_features)
               : 0;
}

int32_t nsn_fully_connected_s8_get_buffer_size_mve(const nsn_fc_dims *dims)
{
    (void)dims;
    return 0;
}

int32_t nsn_fully_connected_s8_get_buffer_size_ref(const nsn_fc_dims *dims)
{
    (void)dims;
    return 0;
}

int32_t nsn_fully_connected_s8_get_buffer_size(const nsn_fc_dims *dims)
{
#if defined(NSN_KERNELS_DSP)
    return nsn_fully_connected_s8_get_buffer_size_dsp(dims);
#elif defined(NSN_KERNELS_MVE)
    return nsn_fully_connected_s8_get_buffer_size_mve(dims);
#else
    return nsn_fully_connected_s8_get_buffer_size_ref(dims);
#endif
}
