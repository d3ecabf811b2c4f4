/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Block-sparse, batched FULLY_CONNECTED (nsn_fully_connected_batch_s8): TFLM
 * reference_integer_ops::FullyConnectedPerChannel for `batches` input rows in one call, with
 * the weights packed by blocks of output channels that read one column range each
 * (nsn_fc_block in nsn_nnfunctions.h). Skipped weights are structural zeros: they would add 0.
 *
 * Three paths with the same bits:
 *   reference  channel by channel, portable C99.
 *   DSP        once per call, each channel's requantization is reduced to a 16-byte record
 *              (2 * bias, multiplier, nudge, exponent: the SMMLAR form of nsn_rescale, exact
 *              while |sum| < 2^30, which the set-up proves from the column count and the
 *              bias); channels outside that bound or with a shift outside [-21, -1] are
 *              recomputed on the portable path after their row. Per row, the input is expanded
 *              once into doubled int16 pairs in SXTB16 order (x0, x2), (x1, x3); per block the
 *              pairs of its column range stay in registers while every channel's weight words
 *              stream past them (SXTB16 + SMLAD). The doubled sum is the SMMLAR operand.
 *   MVE        per block, the input range is loaded once (VLDRB, tail-predicated) and each
 *              channel is one VMLADAVA per 16 columns (8 with a non-zero input offset, int16
 *              lanes); the row's sums are requantized four channels per step.
 */
#include "nsn_nnfunctions.h"

#include <stddef.h>

#include "nsn_kernels_internal.h"

#if (defined(NSN_KERNELS_DSP) || defined(NSN_KERNELS_MVE)) && !defined(__OPTIMIZE__)
#error "nsconv kernels: the dsp and mve paths need an optimized build (-O1 or higher); build with -DNSN_KERNELS_FORCE_REFERENCE to choose the portable path"
#endif

/* One call's arguments, checked. */
typedef struct
{
    const nsn_fc_params *params;
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t n_in;
    int32_t n_out;
    int32_t batches;
    const nsn_fc_block *blocks;
    int32_t num_blocks;
    const nsn_fc_record *records;
    const int8_t *input;
    const int8_t *weights;
    const int32_t *bias;
    int8_t *output;
    int32_t *room;      /* scratch the DSP path may use whole (records given), room_bytes */
    int32_t room_bytes;
} fcb_call;

/* No row pairs in the scratch (fcb_dsp); an input offset is never this. */
#define FCB_NO_PAIRS INT32_MIN

/* Output channel c of one row, portable: its n packed weights w against x (the column range). */
static int8_t fcb_channel_ref(const fcb_call *a, const int8_t *w, const int8_t *x, int32_t n, int32_t c)
{
    const int32_t offset = a->params->input_offset;
    int32_t acc = 0;
    int32_t i;
    for (i = 0; i < n; ++i)
    {
        acc += (int32_t)w[i] * ((int32_t)x[i] + offset);
    }
    if (a->bias != NULL)
    {
        acc = nsn_wrapping_add(acc, a->bias[c]);
    }
    acc = nsn_requantize(acc, a->multiplier[c], a->shift[c]);
    acc = nsn_wrapping_add(acc, a->params->output_offset);
    return (int8_t)nsn_clamp(acc, a->params->activation_min, a->params->activation_max);
}

static void fcb_reference(const fcb_call *a)
{
    int32_t b;
    for (b = 0; b < a->batches; ++b)
    {
        const int8_t *x = a->input + (size_t)b * (size_t)a->n_in;
        int8_t *y = a->output + (size_t)b * (size_t)a->n_out;
        const int8_t *w = a->weights;
        int32_t c = 0;
        int32_t k;
        for (k = 0; k < a->num_blocks; ++k)
        {
            const nsn_fc_block *blk = &a->blocks[k];
            int32_t j;
            for (j = 0; j < blk->out_count; ++j, ++c)
            {
                y[c] = fcb_channel_ref(a, w, x + blk->in_start, blk->in_count, c);
                w += blk->in_count;
            }
        }
    }
}

/* |bias| < fcb_bias_max(n, x_bound) keeps |sum| < 2^30 for a block of n columns, |x + offset|
 * <= x_bound <= 16383 (511 * 128 * 16383 < 2^30). */
static int32_t fcb_bias_max(int32_t n, int32_t x_bound)
{
    return n <= 511 ? (1 << 30) - n * 128 * x_bound : 0;
}

/* One channel's record (nsn_fc_record); 0 when the channel is outside the form's bounds. With
 * u = 2 * sum, |u| < 2^31 and a multiplier >= 0, requantize(sum) + output_offset =
 * SMMLAR(u, M, nudge + (u < 0 ? -1 : 0)) >> e: nsn_rescale in nsn_kernels_internal.h derives
 * it. r may be NULL (a check only). */
static int fcb_record(int32_t b, int32_t m, int32_t shift, int32_t out_offset, int32_t bias_max,
                      nsn_fc_record *r)
{
    if (m < 0 || shift < -21 || shift > -1 || b >= bias_max || b <= -bias_max ||
        out_offset < -256 || out_offset > 256)
    {
        return 0;
    }
    if (r != NULL)
    {
        r->bias2 = 2 * b;
        r->multiplier = m;
        r->nudge = (1 << (-shift - 1)) + out_offset * (1 << -shift);
        r->exponent = -shift;
    }
    return 1;
}

/* The records of every channel into rq (NULL: count only); a channel outside the bounds gets
 * an all-zero record (exponent 0). Returns how many are outside. */
static int32_t fcb_setup(const fcb_call *a, int32_t x_bound, nsn_fc_record *rq)
{
    int32_t slow = 0;
    int32_t c = 0;
    int32_t k;
    for (k = 0; k < a->num_blocks; ++k)
    {
        const int32_t bias_max = fcb_bias_max(a->blocks[k].in_count, x_bound);
        const int32_t end = c + a->blocks[k].out_count;
        for (; c < end; ++c)
        {
            const int32_t b = a->bias != NULL ? a->bias[c] : 0;
            nsn_fc_record *r = rq != NULL ? rq + c : NULL;
            if (!fcb_record(b, a->multiplier[c], a->shift[c], a->params->output_offset, bias_max, r))
            {
                if (r != NULL)
                {
                    r->bias2 = 0;
                    r->multiplier = 0;
                    r->nudge = 0;
                    r->exponent = 0;
                }
                ++slow;
            }
        }
    }
    return slow;
}

#if defined(NSN_KERNELS_DSP)

static inline int32_t fcb_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

static inline int8_t nsn_fc_record_apply(const nsn_fc_record *rq, int32_t u)
{
    const int32_t r = nsn_smmlar(u, rq->multiplier, rq->nudge + (u >> 31)) >> rq->exponent;
    return (int8_t)nsn_ssat8(r);
}

/* Four inputs at x -> doubled pair words (2(x0 + o), 2(x2 + o)) in *lo, (2(x1 + o), 2(x3 + o))
 * in *hi; offset2 = o in both halves. */
static inline void fcb_pairs_dsp(const int8_t *x, int32_t offset2, int32_t *lo, int32_t *hi)
{
    const int32_t v = nsn_read_s8x4(x);
    const int32_t a = __sxtab16(offset2, v);
    const int32_t b = nsn_sxtab16_ror8(offset2, v);
    *lo = __sadd16(a, a);
    *hi = __sadd16(b, b);
}

/* acc + the four weights of word w against pair words xa, xb */
#define FCB_MAC4(ACC, W, XA, XB) \
    __smlad(fcb_sxtb16_ror8(W), (XB), __smlad(__sxtb16(W), (XA), (ACC)))

/*
 * The channel loops of one block and one row, in assembly (GCC 12 reloads the loop state
 * around every byte store, which may alias it: twice the instructions). Per channel: the
 * weight words (SXTB16 pairs against the row's pair words), the record (2 * bias first, then
 * LDM of multiplier, nudge, exponent into the three registers the MACs are done with), the
 * SMMLAR requantization, SSAT, one byte out. w, t and u are r8..r10 because an LDM register
 * list is ascending; r7 (the Thumb frame pointer) is not used.
 */
#define FCB_REGISTERS                        \
    register int32_t w0 __asm("r8");         \
    register int32_t t __asm("r9");          \
    register int32_t u __asm("r10")

#define FCB_MAC_WORD(W, XA, XB)                                 \
    "sxtb16 %[t], %[" W "]\n\t"                                 \
    "smlad %[acc], %[t], %[" XA "], %[acc]\n\t"                 \
    "sxtb16 %[" W "], %[" W "], ror #8\n\t"                     \
    "smlad %[acc], %[" W "], %[" XB "], %[acc]\n\t"

#define FCB_REQUANTIZE_STORE                                    \
    "ldmia %[rq]!, {%[w0], %[t], %[u]}\n\t"                     \
    "add %[t], %[t], %[acc], asr #31\n\t"                       \
    "smmlar %[acc], %[acc], %[w0], %[t]\n\t"                    \
    "asr %[acc], %[acc], %[u]\n\t"                              \
    "ssat %[acc], #8, %[acc]\n\t"                               \
    "strb %[acc], [%[y]], #1\n\t"

/* One block, one row: `count` >= 1 channels of 4 (groups 1) or 8 (groups 2) columns at x. */
static void fcb_block1_dsp(const int8_t *x, int32_t offset2, const int8_t *w, int32_t count,
                           const nsn_fc_record *rq, int8_t *y)
{
    FCB_REGISTERS;
    int32_t x0, x1, acc;
    fcb_pairs_dsp(x, offset2, &x0, &x1);
    __asm volatile("1:\n\t"
                   "ldr %[w0], [%[w]], #4\n\t"
                   "ldr %[acc], [%[rq]], #4\n\t" FCB_MAC_WORD("w0", "x0", "x1")
                   FCB_REQUANTIZE_STORE
                   "subs %[n], %[n], #1\n\t"
                   "bne 1b\n\t"
                   : [w] "+r"(w), [rq] "+r"(rq), [y] "+r"(y), [n] "+r"(count), [acc] "=&r"(acc),
                     [w0] "=&r"(w0), [t] "=&r"(t), [u] "=&r"(u)
                   : [x0] "r"(x0), [x1] "r"(x1)
                   : "cc", "memory");
}

static void fcb_block2_dsp(const int8_t *x, int32_t offset2, const int8_t *w, int32_t count,
                           const nsn_fc_record *rq, int8_t *y)
{
    FCB_REGISTERS;
    int32_t x0, x1, x2, x3, w1, acc;
    fcb_pairs_dsp(x, offset2, &x0, &x1);
    fcb_pairs_dsp(x + 4, offset2, &x2, &x3);
    __asm volatile("1:\n\t"
                   "ldr %[w0], [%[w]], #4\n\t"
                   "ldr %[w1], [%[w]], #4\n\t"
                   "ldr %[acc], [%[rq]], #4\n\t" FCB_MAC_WORD("w0", "x0", "x1")
                   FCB_MAC_WORD("w1", "x2", "x3") FCB_REQUANTIZE_STORE
                   "subs %[n], %[n], #1\n\t"
                   "bne 1b\n\t"
                   : [w] "+r"(w), [rq] "+r"(rq), [y] "+r"(y), [n] "+r"(count), [acc] "=&r"(acc),
                     [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t), [u] "=&r"(u)
                   : [x0] "r"(x0), [x1] "r"(x1), [x2] "r"(x2), [x3] "r"(x3)
                   : "cc", "memory");
}

/* Any number of groups (>= 1): the row's pairs go to xbuf first and are read back per
 * channel. */
/* The channel loop of fcb_blockn_dsp: the block's pair words are at xbuf. */
static void fcb_blockn_asm(const int8_t *w, int32_t groups, int32_t count, const nsn_fc_record *rq, int8_t *y,
                           const int32_t *xbuf)
{
    FCB_REGISTERS;
    int32_t g, acc, xp, xb;
    __asm volatile("1:\n\t"
                   "ldr %[acc], [%[rq]], #4\n\t"
                   "ldr %[xp], %[xbuf]\n\t"
                   "ldr %[g], %[groups]\n"
                   "2:\n\t"
                   "ldr %[w0], [%[w]], #4\n\t"
                   "ldrd %[u], %[xb], [%[xp]], #8\n\t" FCB_MAC_WORD("w0", "u", "xb")
                   "subs %[g], %[g], #1\n\t"
                   "bne 2b\n\t" FCB_REQUANTIZE_STORE
                   "subs %[n], %[n], #1\n\t"
                   "bne 1b\n\t"
                   : [w] "+r"(w), [rq] "+r"(rq), [y] "+r"(y), [n] "+r"(count), [acc] "=&r"(acc),
                     [w0] "=&r"(w0), [t] "=&r"(t), [u] "=&r"(u), [g] "=&r"(g), [xp] "=&r"(xp),
                     [xb] "=&r"(xb)
                   : [xbuf] "m"(xbuf), [groups] "m"(groups)
                   : "cc", "memory");
}

static void fcb_blockn_dsp(const int8_t *x, int32_t offset2, const int8_t *w, int32_t groups,
                           int32_t count, const nsn_fc_record *rq, int8_t *y, int32_t *xbuf)
{
    int32_t g;
    for (g = 0; g < groups; ++g)
    {
        fcb_pairs_dsp(x + 4 * g, offset2, &xbuf[2 * g], &xbuf[2 * g + 1]);
    }
    fcb_blockn_asm(w, groups, count, rq, y, xbuf);
}

/* Two rows at once, 8 or 16 columns: xp holds the first row's pair words, then the second's
 * (R bytes later); each weight word is loaded and split once for both rows, each record once
 * for both outputs (y and y + n_out). */
#define FCB2_WORD(OFF, OFF_R)                                   \
    "ldr %[w0], [%[w]], #4\n\t"                                 \
    "ldrd %[xa], %[xb], [%[xp], #" OFF "]\n\t"                  \
    "sxtb16 %[t], %[w0]\n\t"                                    \
    "sxtb16 %[w0], %[w0], ror #8\n\t"                           \
    "smlad %[a0], %[t], %[xa], %[a0]\n\t"                       \
    "smlad %[a0], %[w0], %[xb], %[a0]\n\t"                      \
    "ldrd %[xa], %[xb], [%[xp], #" OFF_R "]\n\t"                \
    "smlad %[a1], %[t], %[xa], %[a1]\n\t"                       \
    "smlad %[a1], %[w0], %[xb], %[a1]\n\t"

#define FCB2_REQUANTIZE(ACC)                                    \
    "add %[xa], %[t], %[" ACC "], asr #31\n\t"                  \
    "smmlar %[" ACC "], %[" ACC "], %[w0], %[xa]\n\t"           \
    "asr %[" ACC "], %[" ACC "], %[u]\n\t"                      \
    "ssat %[" ACC "], #8, %[" ACC "]\n\t"

#define FCB2_LOOP(WORDS)                                        \
    __asm volatile("1:\n\t"                                     \
                   "ldr %[a0], [%[rq]], #4\n\t"                 \
                   "mov %[a1], %[a0]\n\t" WORDS                 \
                   "ldmia %[rq]!, {%[w0], %[t], %[u]}\n\t"      \
                   FCB2_REQUANTIZE("a0") FCB2_REQUANTIZE("a1")  \
                   "ldr %[xb], %[nout]\n\t"                     \
                   "strb %[a1], [%[y], %[xb]]\n\t"              \
                   "strb %[a0], [%[y]], #1\n\t"                 \
                   "subs %[n], %[n], #1\n\t"                    \
                   "bne 1b\n\t"                                 \
                   : [w] "+r"(w), [rq] "+r"(rq), [y] "+r"(y), [n] "+r"(count), \
                     [a0] "=&r"(a0), [a1] "=&r"(a1), [xa] "=&r"(xa), [xb] "=&r"(xb), \
                     [w0] "=&r"(w0), [t] "=&r"(t), [u] "=&r"(u) \
                   : [xp] "r"(xp), [nout] "m"(n_out)            \
                   : "cc", "memory")

static void fcb_block2x2_dsp(const int32_t *xp, const int8_t *w, int32_t count, const nsn_fc_record *rq,
                             int8_t *y, int32_t n_out)
{
    FCB_REGISTERS;
    int32_t a0, a1, xa, xb;
    FCB2_LOOP(FCB2_WORD("0", "16") FCB2_WORD("8", "24"));
}

static void fcb_block4x2_dsp(const int32_t *xp, const int8_t *w, int32_t count, const nsn_fc_record *rq,
                             int8_t *y, int32_t n_out)
{
    FCB_REGISTERS;
    int32_t a0, a1, xa, xb;
    FCB2_LOOP(FCB2_WORD("0", "32") FCB2_WORD("8", "40") FCB2_WORD("16", "48")
                  FCB2_WORD("24", "56"));
}

/* Four rows at once, 8 or 16 columns: xp holds the rows' pair words one after the other
 * (2 * n bytes apart); each weight word is loaded and split once for the four rows, each
 * record once for the four outputs (y + r * n_out). 13 registers: w0, t, xa are r8..r10 (the
 * record's LDM), the others any. */
#define FCB4_ROW(ACC, OFF)                                      \
    "ldrd %[xa], %[xb], [%[xp], #" OFF "]\n\t"                  \
    "smlad %[" ACC "], %[t], %[xa], %[" ACC "]\n\t"             \
    "smlad %[" ACC "], %[w0], %[xb], %[" ACC "]\n\t"

#define FCB4_WORD(O0, O1, O2, O3)                               \
    "ldr %[w0], [%[w]], #4\n\t"                                 \
    "sxtb16 %[t], %[w0]\n\t"                                    \
    "sxtb16 %[w0], %[w0], ror #8\n\t"                           \
    FCB4_ROW("a0", O0) FCB4_ROW("a1", O1) FCB4_ROW("a2", O2) FCB4_ROW("a3", O3)

#define FCB4_REQUANTIZE(ACC)                                    \
    "add %[xb], %[t], %[" ACC "], asr #31\n\t"                  \
    "smmlar %[" ACC "], %[" ACC "], %[w0], %[xb]\n\t"           \
    "asr %[" ACC "], %[" ACC "], %[xa]\n\t"                     \
    "ssat %[" ACC "], #8, %[" ACC "]\n\t"

#define FCB4_LOOP(WORDS)                                        \
    __asm volatile("1:\n\t"                                     \
                   "ldr %[a0], [%[rq]], #4\n\t"                 \
                   "mov %[a1], %[a0]\n\t"                       \
                   "mov %[a2], %[a0]\n\t"                       \
                   "mov %[a3], %[a0]\n\t" WORDS                 \
                   "ldmia %[rq]!, {%[w0], %[t], %[xa]}\n\t"     \
                   FCB4_REQUANTIZE("a0") FCB4_REQUANTIZE("a1")  \
                   FCB4_REQUANTIZE("a2") FCB4_REQUANTIZE("a3")  \
                   "ldr %[xb], %[nout]\n\t"                     \
                   "strb %[a1], [%[y], %[xb]]\n\t"              \
                   "strb %[a2], [%[y], %[xb], lsl #1]\n\t"      \
                   "add %[xb], %[xb], %[xb], lsl #1\n\t"        \
                   "strb %[a3], [%[y], %[xb]]\n\t"              \
                   "strb %[a0], [%[y]], #1\n\t"                 \
                   "subs %[n], %[n], #1\n\t"                    \
                   "bne 1b\n\t"                                 \
                   : [w] "+r"(w), [rq] "+r"(rq), [y] "+r"(y), [n] "+r"(count), \
                     [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), \
                     [xb] "=&r"(xb), [w0] "=&r"(w0), [t] "=&r"(t), [xa] "=&r"(xa) \
                   : [xp] "r"(xp), [nout] "m"(n_out)            \
                   : "cc", "memory")

#define FCB4_REGISTERS                       \
    register int32_t w0 __asm("r8");         \
    register int32_t t __asm("r9");          \
    register int32_t xa __asm("r10")

static void fcb_block2x4_dsp(const int32_t *xp, const int8_t *w, int32_t count, const nsn_fc_record *rq,
                             int8_t *y, int32_t n_out)
{
    FCB4_REGISTERS;
    int32_t a0, a1, a2, a3, xb;
    FCB4_LOOP(FCB4_WORD("0", "16", "32", "48") FCB4_WORD("8", "24", "40", "56"));
}

static void fcb_block4x4_dsp(const int32_t *xp, const int8_t *w, int32_t count, const nsn_fc_record *rq,
                             int8_t *y, int32_t n_out)
{
    FCB4_REGISTERS;
    int32_t a0, a1, a2, a3, xb;
    FCB4_LOOP(FCB4_WORD("0", "32", "64", "96") FCB4_WORD("8", "40", "72", "104")
                  FCB4_WORD("16", "48", "80", "112") FCB4_WORD("24", "56", "88", "120"));
}

/* Rows b .. b + 3 of a block of n = 8 or 16 columns: the rows' pairs into xbuf (8 * n bytes),
 * then the four-row loop. */
static void fcb_rows4_dsp(const int8_t *x, int32_t n_in, int32_t n, int32_t offset2, const int8_t *w,
                          int32_t count, const nsn_fc_record *rq, int8_t *y, int32_t n_out, int32_t *xbuf)
{
    int32_t r, g;
    for (r = 0; r < 4; ++r, x += n_in)
    {
        for (g = 0; g < (n >> 2); ++g)
        {
            fcb_pairs_dsp(x + 4 * g, offset2, &xbuf[r * (n >> 1) + 2 * g], &xbuf[r * (n >> 1) + 2 * g + 1]);
        }
    }
    if (n == 8)
    {
        fcb_block2x4_dsp(xbuf, w, count, rq, y, n_out);
    }
    else
    {
        fcb_block4x4_dsp(xbuf, w, count, rq, y, n_out);
    }
}

/* Rows b and b + 1 of a block of n = 8 or 16 columns: both rows' pairs into xbuf, then the
 * two-row loop. */
static void fcb_rows2_dsp(const int8_t *x, int32_t n_in, int32_t n, int32_t offset2, const int8_t *w,
                          int32_t count, const nsn_fc_record *rq, int8_t *y, int32_t n_out, int32_t *xbuf)
{
    int32_t g;
    for (g = 0; g < (n >> 2); ++g)
    {
        fcb_pairs_dsp(x + 4 * g, offset2, &xbuf[2 * g], &xbuf[2 * g + 1]);
        fcb_pairs_dsp(x + n_in + 4 * g, offset2, &xbuf[(n >> 1) + 2 * g], &xbuf[(n >> 1) + 2 * g + 1]);
    }
    if (n == 8)
    {
        fcb_block2x2_dsp(xbuf, w, count, rq, y, n_out);
    }
    else
    {
        fcb_block4x2_dsp(xbuf, w, count, rq, y, n_out);
    }
}

/* One block (n columns from x, `count` channels from w) over every row; the rows advance by
 * n_in inputs and n_out outputs. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void fcb_block_rows_dsp(const int8_t *x, int8_t *y, const int8_t *w, int32_t n, int32_t count,
                               const nsn_fc_record *rq, int32_t offset2, const fcb_call *a, int32_t *xbuf)
{
    int32_t b = a->batches;
    if ((n == 8 || n == 16) && a->room_bytes >= 8 * n)
    {
        for (; b > 3; b -= 4, x += 4 * a->n_in, y += 4 * a->n_out)
        {
            fcb_rows4_dsp(x, a->n_in, n, offset2, w, count, rq, y, a->n_out, (int32_t *)a->room);
        }
    }
    if (n == 8 || n == 16)
    {
        for (; b > 1; b -= 2, x += 2 * a->n_in, y += 2 * a->n_out)
        {
            fcb_rows2_dsp(x, a->n_in, n, offset2, w, count, rq, y, a->n_out, xbuf);
        }
    }
    for (; b > 0; --b, x += a->n_in, y += a->n_out)
    {
        if (n == 8)
        {
            fcb_block2_dsp(x, offset2, w, count, rq, y);
        }
        else if (n == 4)
        {
            fcb_block1_dsp(x, offset2, w, count, rq, y);
        }
        else
        {
            fcb_blockn_dsp(x, offset2, w, n >> 2, count, rq, y, xbuf);
        }
    }
}

/* A block whose column count is not a multiple of 4 (or 0), on the portable path. */
static void fcb_block_rows_ref(const fcb_call *a, const nsn_fc_block *blk, int32_t c, const int8_t *w)
{
    int32_t b, j;
    for (b = 0; b < a->batches; ++b)
    {
        const int8_t *x = a->input + (size_t)b * (size_t)a->n_in + blk->in_start;
        int8_t *y = a->output + (size_t)b * (size_t)a->n_out;
        for (j = 0; j < blk->out_count; ++j)
        {
            y[c + j] = fcb_channel_ref(a, w + j * blk->in_count, x, blk->in_count, c + j);
        }
    }
}

/* Few rows: no records (their set-up would cost more than it saves); each channel is
 * requantized by nsn_requantize_dsp, exact for every multiplier and shift. The pair words
 * are not doubled here. */
static inline int8_t fcb_out_small(const fcb_call *a, int32_t acc, int32_t c, int full)
{
    const int32_t b = a->bias != NULL ? a->bias[c] : 0;
    int32_t r = nsn_requantize_dsp(nsn_wrapping_add(acc, b), a->multiplier[c], a->shift[c]);
    r = nsn_wrapping_add(r, a->params->output_offset);
    return (int8_t)(full ? nsn_ssat8(r)
                         : nsn_clamp(r, a->params->activation_min, a->params->activation_max));
}

static void fcb_row_small_dsp(const fcb_call *a, const int8_t *x, int8_t *y, int32_t offset2,
                              int full)
{
    const int8_t *w = a->weights;
    int32_t c = 0;
    int32_t k;
    for (k = 0; k < a->num_blocks; ++k)
    {
        const int8_t *xs = x + a->blocks[k].in_start;
        const int32_t n = a->blocks[k].in_count;
        const int32_t end = c + a->blocks[k].out_count;
        if (n == 4)
        {
            const int32_t v = nsn_read_s8x4(xs);
            const int32_t x0 = __sxtab16(offset2, v);
            const int32_t x1 = nsn_sxtab16_ror8(offset2, v);
            for (; c < end; ++c, w += 4)
            {
                y[c] = fcb_out_small(a, FCB_MAC4(0, nsn_read_s8x4(w), x0, x1), c, full);
            }
        }
        else if ((n & 3) == 0)
        {
            for (; c < end; ++c)
            {
                int32_t acc = 0;
                int32_t i;
                for (i = 0; i < n; i += 4, w += 4)
                {
                    const int32_t v = nsn_read_s8x4(xs + i);
                    acc = FCB_MAC4(acc, nsn_read_s8x4(w), __sxtab16(offset2, v),
                                   nsn_sxtab16_ror8(offset2, v));
                }
                y[c] = fcb_out_small(a, acc, c, full);
            }
        }
        else
        {
            for (; c < end; ++c, w += n)
            {
                y[c] = fcb_channel_ref(a, w, xs, n, c);
            }
        }
    }
}

/* The channels marked for the portable path (and the activation range, when it is narrower
 * than int8) of one row. */
static void fcb_fixup_dsp(const fcb_call *a, const nsn_fc_record *rq, int32_t slow, const int8_t *x, int8_t *y)
{
    const int32_t lo = a->params->activation_min;
    const int32_t hi = a->params->activation_max;
    int32_t c;
    if (slow > 0)
    {
        const int8_t *w = a->weights;
        int32_t k;
        c = 0;
        for (k = 0; k < a->num_blocks; ++k)
        {
            const nsn_fc_block *blk = &a->blocks[k];
            int32_t j;
            for (j = 0; j < blk->out_count; ++j, ++c, w += blk->in_count)
            {
                if (rq[c].exponent == 0)
                {
                    y[c] = fcb_channel_ref(a, w, x + blk->in_start, blk->in_count, c);
                }
            }
        }
    }
    if (lo != INT8_MIN || hi != INT8_MAX)
    {
        for (c = 0; c < a->n_out; ++c)
        {
            y[c] = (int8_t)nsn_clamp(y[c], lo, hi);
        }
    }
}

/* One row whose blocks all read 4 columns on multiples of 4 (a grouped GRU's hidden-state
 * gates): the row's pairs go to xbuf once, then one assembly loop runs every block (its
 * pair words by LDRD at 2 * in_start bytes) and every channel. */
static int fcb_all4(const nsn_fc_block *blocks, int32_t num_blocks, int32_t n_in)
{
    int32_t k;
    if ((n_in & 3) != 0)
    {
        return 0;
    }
    for (k = 0; k < num_blocks; ++k)
    {
        if (blocks[k].in_count != 4 || (blocks[k].in_start & 3) != 0)
        {
            return 0;
        }
    }
    return 1;
}

/* The row's n_in inputs (a multiple of 4) as pair words into xbuf. */
static void fcb_row_pairs_dsp(const int8_t *x, int32_t n_in, int32_t input_offset, int32_t *xbuf)
{
    const int32_t offset2 = (int32_t)(((uint32_t)input_offset & 0xFFFFu) * 0x10001u);
    int32_t g;
    for (g = 0; g < (n_in >> 2); ++g)
    {
        fcb_pairs_dsp(x + 4 * g, offset2, &xbuf[2 * g], &xbuf[2 * g + 1]);
    }
}

/* The nb (>= 1) blocks of 4 columns of one row whose pair words are in xbuf. */
static void fcb_row4_asm(const nsn_fc_block *blk, int32_t nb, const int8_t *w, const nsn_fc_record *rq,
                         int8_t *y, const int32_t *xbuf)
{
    FCB_REGISTERS;
    int32_t x0, x1, cnt, acc;
    __asm volatile("0:\n\t"
                   "ldrh %[cnt], [%[blk]], #2\n\t"
                   "ldrh %[x0], [%[blk]], #4\n\t"
                   "ldr %[x1], %[xbuf]\n\t"
                   "add %[x0], %[x1], %[x0], lsl #1\n\t"
                   "ldrd %[x0], %[x1], [%[x0]]\n"
                   "1:\n\t"
                   "ldr %[w0], [%[w]], #4\n\t"
                   "ldr %[acc], [%[rq]], #4\n\t" FCB_MAC_WORD("w0", "x0", "x1")
                   FCB_REQUANTIZE_STORE
                   "subs %[cnt], %[cnt], #1\n\t"
                   "bne 1b\n\t"
                   "ldr %[cnt], %[nb]\n\t"
                   "subs %[cnt], %[cnt], #1\n\t"
                   "str %[cnt], %[nb]\n\t"
                   "bne 0b\n\t"
                   : [w] "+r"(w), [rq] "+r"(rq), [y] "+r"(y), [blk] "+r"(blk), [nb] "+m"(nb),
                     [cnt] "=&r"(cnt), [acc] "=&r"(acc), [x0] "=&r"(x0), [x1] "=&r"(x1),
                     [w0] "=&r"(w0), [t] "=&r"(t), [u] "=&r"(u)
                   : [xbuf] "m"(xbuf)
                   : "cc", "memory");
}

static void fcb_row4_dsp(const fcb_call *a, const nsn_fc_record *rq, int32_t *xbuf, int fill)
{
    if (fill)
    {
        fcb_row_pairs_dsp(a->input, a->n_in, a->params->input_offset, xbuf);
    }
    fcb_row4_asm(a->blocks, a->num_blocks, a->weights, rq, a->output, xbuf);
}

/* The several-op entry's fast case (a GRU step's hidden-state matmuls): one row, every op with
 * records, the full int8 range, op 0's input offset (within the DSP bound) and only 4-column
 * blocks; the row is expanded once. 0, nothing written, when an op is not of that kind. */
static int fcb_ops_row4_dsp(const nsn_fc_batch_op *ops, int32_t num_ops, const int8_t *input,
                            int8_t *const *outputs, int32_t *xbuf)
{
    const int32_t offset = ops[0].params->input_offset;
    const int32_t n_in = ops[0].dims->input_features;
    int32_t k;
    if (offset < -16255 || offset > 16255)
    {
        return 0;
    }
    for (k = 0; k < num_ops; ++k)
    {
        const nsn_fc_params *p = ops[k].params;
        if (ops[k].records == NULL || p->input_offset != offset || p->activation_min != INT8_MIN ||
            p->activation_max != INT8_MAX || !fcb_all4(ops[k].blocks, ops[k].num_blocks, n_in))
        {
            return 0;
        }
    }
    fcb_row_pairs_dsp(input, n_in, offset, xbuf);
    for (k = 0; k < num_ops; ++k)
    {
        fcb_row4_asm(ops[k].blocks, ops[k].num_blocks, ops[k].weights, ops[k].records, outputs[k], xbuf);
    }
    return 1;
}

/* Blocks of channels reading columns in multiples of 4 at multiples of 4: 2 when all read 4,
 * 1 otherwise, 0 when a block is not of that form. */
static int fcb_words(const nsn_fc_block *blocks, int32_t num_blocks)
{
    int all4 = 1;
    int32_t k;
    for (k = 0; k < num_blocks; ++k)
    {
        if ((blocks[k].in_count & 3) != 0 || blocks[k].in_count == 0 || (blocks[k].in_start & 3) != 0 ||
            blocks[k].out_count == 0)
        {
            return 0;
        }
        all4 &= blocks[k].in_count == 4;
    }
    return 1 + all4;
}

/* One op of fcb_ops_row_dsp: its blocks against the row's pair words in xbuf. */
static void fcb_op_row_dsp(const nsn_fc_batch_op *op, int all4, const int8_t *x, int8_t *y,
                           const int32_t *xbuf)
{
    const int32_t offset2 = (int32_t)(((uint32_t)op->params->input_offset & 0xFFFFu) * 0x10001u);
    const int8_t *w = op->weights;
    const nsn_fc_record *rq = op->records;
    int32_t k;
    if (all4)
    {
        fcb_row4_asm(op->blocks, op->num_blocks, w, rq, y, xbuf);
        return;
    }
    for (k = 0; k < op->num_blocks; ++k)
    {
        const nsn_fc_block *blk = &op->blocks[k];
        if (blk->in_count == 8)
        {
            fcb_block2_dsp(x + blk->in_start, offset2, w, blk->out_count, rq, y);
        }
        else
        {
            fcb_blockn_asm(w, blk->in_count >> 2, blk->out_count, rq, y, xbuf + (blk->in_start >> 1));
        }
        w += blk->out_count * blk->in_count;
        rq += blk->out_count;
        y += blk->out_count;
    }
}

/* The several-op entry's one-row case otherwise: as fcb_ops_row4_dsp with blocks of columns in
 * multiples of 4 at multiples of 4 (the 8-column ones from the input, the others from the row
 * expanded once). 0, nothing written, when an op is not of that kind. */
static int fcb_ops_row_dsp(const nsn_fc_batch_op *ops, int32_t num_ops, const int8_t *input,
                           int8_t *const *outputs, int32_t *xbuf)
{
    const int32_t offset = ops[0].params->input_offset;
    const int32_t n_in = ops[0].dims->input_features;
    int32_t all4 = 0; /* bit k: op k's blocks are all of 4 columns */
    int32_t k;
    if (offset < -16255 || offset > 16255 || (n_in & 3) != 0 || num_ops > 31)
    {
        return 0;
    }
    for (k = 0; k < num_ops; ++k)
    {
        const nsn_fc_params *p = ops[k].params;
        const int words = fcb_words(ops[k].blocks, ops[k].num_blocks);
        if (ops[k].records == NULL || p->input_offset != offset || p->activation_min != INT8_MIN ||
            p->activation_max != INT8_MAX || words == 0)
        {
            return 0;
        }
        all4 |= (words - 1) << k;
    }
    fcb_row_pairs_dsp(input, n_in, offset, xbuf);
    for (k = 0; k < num_ops; ++k)
    {
        fcb_op_row_dsp(&ops[k], (all4 >> k) & 1, input, outputs[k], xbuf);
    }
    return 1;
}

/* Every block over every row with the records rq. */
static void fcb_blocks_dsp(const fcb_call *a, const nsn_fc_record *rq, int32_t *xbuf)
{
    const int32_t offset2 = (int32_t)(((uint32_t)a->params->input_offset & 0xFFFFu) * 0x10001u);
    const int8_t *w = a->weights;
    int32_t c = 0;
    int32_t k;
    for (k = 0; k < a->num_blocks; ++k)
    {
        const int32_t n = a->blocks[k].in_count;
        const int32_t count = a->blocks[k].out_count;
        if ((n & 3) == 0 && n > 0)
        {
            fcb_block_rows_dsp(a->input + a->blocks[k].in_start, a->output + c, w, n, count,
                               rq + c, offset2, a, xbuf);
        }
        else
        {
            fcb_block_rows_ref(a, &a->blocks[k], c, w);
        }
        w += count * n;
        c += count;
    }
}

/* One call on the DSP path: own has room for n_out records (set up here when the call has
 * none), xbuf for the row pairs. *pairs is the input offset whose pairs of input row 0 xbuf
 * holds for the one-row path of 4-column blocks (FCB_NO_PAIRS: none); a call that finds them
 * there does not expand the row again, and leaves *pairs as it leaves xbuf. */
static void fcb_dsp(const fcb_call *a, int32_t x_bound, nsn_fc_record *own, int32_t *xbuf,
                    int32_t *pairs)
{
    const int full = a->params->activation_min == INT8_MIN && a->params->activation_max == INT8_MAX;
    const nsn_fc_record *rq = a->records != NULL ? a->records : own;
    int32_t slow = 0;
    int32_t b;
    if (a->records == NULL && a->batches <= 2)
    {
        const int32_t offset2 = (int32_t)(((uint32_t)a->params->input_offset & 0xFFFFu) * 0x10001u);
        for (b = 0; b < a->batches; ++b)
        {
            fcb_row_small_dsp(a, a->input + (size_t)b * (size_t)a->n_in,
                              a->output + (size_t)b * (size_t)a->n_out, offset2, full);
        }
        return;
    }
    if (a->records == NULL)
    {
        slow = fcb_setup(a, x_bound, own);
    }
    if (a->batches == 1 && fcb_all4(a->blocks, a->num_blocks, a->n_in))
    {
        fcb_row4_dsp(a, rq, xbuf, *pairs != a->params->input_offset);
        *pairs = a->params->input_offset;
    }
    else
    {
        fcb_blocks_dsp(a, rq, xbuf);
        *pairs = FCB_NO_PAIRS;
    }
    if (slow > 0 || !full)
    {
        for (b = 0; b < a->batches; ++b)
        {
            fcb_fixup_dsp(a, rq, slow, a->input + (size_t)b * (size_t)a->n_in,
                          a->output + (size_t)b * (size_t)a->n_out);
        }
    }
}

#endif /* NSN_KERNELS_DSP */

#if defined(NSN_KERNELS_MVE)

/* One channel's sum over n columns: 16 lanes per VMLADAVA (input offset 0). */
static inline int32_t fcb_dot_mve(const int8_t *w, const int8_t *x, int32_t n)
{
    int32_t acc = 0;
    int32_t k;
    for (k = 0; k < n; k += 16)
    {
        const mve_pred16_t p = vctp8q((uint32_t)(n - k));
        acc = vmladavaq_s8(acc, vldrbq_z_s8(x + k, p), vldrbq_z_s8(w + k, p));
    }
    return acc;
}

/* The same with the input offset: int16 lanes, 8 per VMLADAVA (a lane past n is the offset
 * times a zero weight). */
static inline int32_t fcb_dot_offset_mve(const int8_t *w, const int8_t *x, int32_t n, int16x8_t voff)
{
    int32_t acc = 0;
    int32_t k;
    for (k = 0; k < n; k += 8)
    {
        const mve_pred16_t p = vctp16q((uint32_t)(n - k));
        acc = vmladavaq_s16(acc, vaddq_s16(vldrbq_z_s16(x + k, p), voff), vldrbq_z_s16(w + k, p));
    }
    return acc;
}

/* The sums of one row's channels into acc. */
static void fcb_sums_mve(const fcb_call *a, const int8_t *x, int32_t *acc)
{
    const int32_t offset = a->params->input_offset;
    const int16x8_t voff = vdupq_n_s16((int16_t)offset);
    const int8_t *w = a->weights;
    int32_t k;
    for (k = 0; k < a->num_blocks; ++k)
    {
        const int8_t *xs = x + a->blocks[k].in_start;
        const int32_t n = a->blocks[k].in_count;
        int32_t j;
        if (offset == 0 && n <= 16)
        {
            const mve_pred16_t p = vctp8q((uint32_t)n);
            const int8x16_t vx = vldrbq_z_s8(xs, p);
            for (j = 0; j < a->blocks[k].out_count; ++j, w += n)
            {
                *acc++ = vmladavq_s8(vx, vldrbq_z_s8(w, p));
            }
        }
        else
        {
            for (j = 0; j < a->blocks[k].out_count; ++j, w += n)
            {
                *acc++ = offset == 0 ? fcb_dot_mve(w, xs, n) : fcb_dot_offset_mve(w, xs, n, voff);
            }
        }
    }
}

/* Four channels from j on: p all-true except at the tail (the loads and the store are
 * predicated only there, which saves the VPSTs of every full step). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void fcb_requantize4_mve(const fcb_call *a, const int32_t *acc, int8_t *y, int32_t j,
                                       mve_pred16_t p, int32x4_t act_min, int32x4_t act_max)
{
    int32x4_t v = vldrwq_z_s32(acc + j, p);
    if (a->bias != NULL)
    {
        v = vaddq_s32(v, vldrwq_z_s32(a->bias + j, p));
    }
    v = nsn_requantize_mve(v, vldrwq_z_s32(a->multiplier + j, p), vldrwq_z_s32(a->shift + j, p));
    v = vaddq_n_s32(v, a->params->output_offset);
    vstrbq_p_s32(y + j, vminq_s32(vmaxq_s32(v, act_min), act_max), p);
}

/* y[c] = clamp(requantize(acc[c] + bias[c]) + output_offset), four channels per step. */
static void fcb_requantize_mve(const fcb_call *a, const int32_t *acc, int8_t *y)
{
    const int32x4_t act_min = vdupq_n_s32(a->params->activation_min);
    const int32x4_t act_max = vdupq_n_s32(a->params->activation_max);
    int32_t j;
    for (j = 0; j + 4 <= a->n_out; j += 4)
    {
        int32x4_t v = vld1q_s32(acc + j);
        if (a->bias != NULL)
        {
            v = vaddq_s32(v, vld1q_s32(a->bias + j));
        }
        v = nsn_requantize_mve(v, vld1q_s32(a->multiplier + j), vld1q_s32(a->shift + j));
        v = vaddq_n_s32(v, a->params->output_offset);
        vstrbq_s32(y + j, vminq_s32(vmaxq_s32(v, act_min), act_max));
    }
    if (j < a->n_out)
    {
        fcb_requantize4_mve(a, acc, y, j, vctp32q((uint32_t)(a->n_out - j)), act_min, act_max);
    }
}

static void fcb_mve(const fcb_call *a, int32_t *acc)
{
    int32_t b;
    for (b = 0; b < a->batches; ++b)
    {
        fcb_sums_mve(a, a->input + (size_t)b * (size_t)a->n_in, acc);
        fcb_requantize_mve(a, acc, a->output + (size_t)b * (size_t)a->n_out);
    }
}

#endif /* NSN_KERNELS_MVE */

/* The blocks cover the output channels exactly and read inside the row. */
static int fcb_blocks_ok(const nsn_fc_block *blocks, int32_t num_blocks, int32_t n_in, int32_t n_out)
{
    int32_t total = 0;
    int32_t k;
    if (blocks == NULL || num_blocks < 1)
    {
        return 0;
    }
    for (k = 0; k < num_blocks; ++k)
    {
        if (blocks[k].out_count < 1 || (int32_t)blocks[k].in_start + blocks[k].in_count > n_in)
        {
            return 0;
        }
        total += blocks[k].out_count;
    }
    return total == n_out;
}

/* The scratch of this path: none asked -> ctx and buf may be NULL; otherwise a 4-byte aligned
 * buffer of at least `need` bytes. A given buffer must be aligned with a size >= 0. */
static void *fcb_scratch(const nsn_context *ctx, int32_t need, int *ok)
{
    if (ctx == NULL || ctx->buf == NULL)
    {
        *ok = need == 0;
        return NULL;
    }
    *ok = ctx->size >= need && ((uintptr_t)ctx->buf & 3u) == 0;
    return ctx->buf;
}

/* The arguments every entry checks: NSN_ARG_ERROR conditions of nsn_fully_connected_s8 and
 * the blocks. */
static int fcb_args_ok(const nsn_fc_params *params,
                       const nsn_per_channel_quant_params *quant,
                       const nsn_fc_dims *dims,
                       const nsn_fc_block *blocks,
                       int32_t num_blocks)
{
    return params != NULL && quant != NULL && dims != NULL && quant->multiplier != NULL &&
           quant->shift != NULL && dims->input_features >= 1 &&
           dims->input_features <= NSN_FC_MAX_INPUT_FEATURES && dims->output_features >= 1 &&
           fcb_blocks_ok(blocks, num_blocks, dims->input_features, dims->output_features);
}

static void fcb_fill(fcb_call *a,
                     const nsn_fc_params *params,
                     const nsn_per_channel_quant_params *quant,
                     const nsn_fc_dims *dims,
                     const nsn_fc_block *blocks,
                     int32_t num_blocks,
                     const int32_t *bias)
{
    a->params = params;
    a->multiplier = quant->multiplier;
    a->shift = quant->shift;
    a->n_in = dims->input_features;
    a->n_out = dims->output_features;
    a->batches = 0;
    a->blocks = blocks;
    a->num_blocks = num_blocks;
    a->records = NULL;
    a->input = NULL;
    a->weights = NULL;
    a->bias = bias;
    a->output = NULL;
    a->room = NULL;
    a->room_bytes = 0;
}

nsn_status nsn_fully_connected_batch_s8_prepare(const nsn_fc_params *params,
                                                const nsn_per_channel_quant_params *quant,
                                                const nsn_fc_dims *dims,
                                                const nsn_fc_block *blocks,
                                                int32_t num_blocks,
                                                const int32_t *bias,
                                                nsn_fc_record *records)
{
    fcb_call a;
    int32_t bound;
    if (records == NULL || !fcb_args_ok(params, quant, dims, blocks, num_blocks))
    {
        return NSN_ARG_ERROR;
    }
    bound = nsn_offset_bound(params->input_offset);
    fcb_fill(&a, params, quant, dims, blocks, num_blocks, bias);
    if (bound < 0 || bound > 16383 || fcb_setup(&a, bound, NULL) != 0)
    {
        return NSN_ARG_ERROR;
    }
    (void)fcb_setup(&a, bound, records);
    return NSN_OK;
}

/* One call's work on the path of this build. The scratch (checked) holds, on the DSP path,
 * the row pairs and then room for n_out records when `pairs_first` (the layout of the
 * several-op entry), the records then the pairs otherwise; *pairs as in fcb_dsp. */
static void fcb_run(const fcb_call *a, void *buf, int pairs_first, int32_t *pairs)
{
    const int32_t bound = nsn_offset_bound(a->params->input_offset);
#if defined(NSN_KERNELS_DSP)
    if (bound >= 0 && bound <= 16383) /* 2 (x + offset) fits an int16 lane */
    {
        const int32_t pair_words = (a->n_in + 3) / 4 * 4;
        nsn_fc_record *const own =
            pairs_first ? (nsn_fc_record *)(void *)((int32_t *)buf + pair_words) : (nsn_fc_record *)buf;
        int32_t *const xbuf = pairs_first ? (int32_t *)buf : (int32_t *)(void *)(own + a->n_out);
        fcb_dsp(a, bound, own, xbuf, pairs);
        return;
    }
#elif defined(NSN_KERNELS_MVE)
    if (bound >= 0 && bound <= 32767)
    {
        fcb_mve(a, (int32_t *)buf);
        return;
    }
#endif
    (void)bound;
    (void)buf;
    (void)pairs_first;
    (void)pairs;
    fcb_reference(a);
}

nsn_status nsn_fully_connected_batch_s8(const nsn_context *ctx,
                                        const nsn_fc_params *params,
                                        const nsn_per_channel_quant_params *quant,
                                        const nsn_fc_dims *dims,
                                        int32_t batches,
                                        const nsn_fc_block *blocks,
                                        int32_t num_blocks,
                                        const nsn_fc_record *records,
                                        const int8_t *input,
                                        const int8_t *weights,
                                        const int32_t *bias,
                                        int8_t *output)
{
    fcb_call a;
    void *buf;
    int ok;
    int32_t pairs = FCB_NO_PAIRS;
    if (input == NULL || weights == NULL || output == NULL || batches < 1 ||
        !fcb_args_ok(params, quant, dims, blocks, num_blocks))
    {
        return NSN_ARG_ERROR;
    }
    buf = fcb_scratch(ctx, nsn_fully_connected_batch_s8_get_buffer_size(dims), &ok);
    if (!ok)
    {
        return NSN_SCRATCH_ERROR;
    }
    fcb_fill(&a, params, quant, dims, blocks, num_blocks, bias);
    a.batches = batches;
    a.records = records;
    a.input = input;
    a.weights = weights;
    a.output = output;
    fcb_run(&a, buf, 0, &pairs);
    return NSN_OK;
}

/* One op of the several-op entry: the checks of nsn_fully_connected_batch_s8 (the blocks only
 * without records: records are prepare's, which checked them) and the input width of op 0. */
static int fcb_op_ok(const nsn_fc_batch_op *op, const nsn_fc_dims *first)
{
    const nsn_fc_dims *d = op->dims;
    if (op->params == NULL || op->quant == NULL || d == NULL || op->weights == NULL ||
        op->quant->multiplier == NULL || op->quant->shift == NULL ||
        d->input_features != first->input_features || d->input_features < 1 ||
        d->input_features > NSN_FC_MAX_INPUT_FEATURES || d->output_features < 1)
    {
        return 0;
    }
    return op->records != NULL ? op->blocks != NULL && op->num_blocks >= 1
                               : fcb_blocks_ok(op->blocks, op->num_blocks, d->input_features,
                                               d->output_features);
}

nsn_status nsn_fully_connected_batch_multi_s8(const nsn_context *ctx,
                                              const nsn_fc_batch_op *ops,
                                              int32_t num_ops,
                                              int32_t batches,
                                              const int8_t *input,
                                              int8_t *const *outputs)
{
    fcb_call a;
    void *buf;
    int ok;
    int32_t need = 0;
    int32_t pairs = FCB_NO_PAIRS;
    int32_t k;
    if (ops == NULL || outputs == NULL || input == NULL || num_ops < 1 || batches < 1 ||
        ops[0].dims == NULL)
    {
        return NSN_ARG_ERROR;
    }
    for (k = 0; k < num_ops; ++k)
    {
        int32_t size;
        if (outputs[k] == NULL || !fcb_op_ok(&ops[k], ops[0].dims))
        {
            return NSN_ARG_ERROR;
        }
        size = NSN_FC_BATCH_S8_BUFFER_SIZE(ops[k].dims->input_features, ops[k].dims->output_features);
        need = size > need ? size : need;
    }
    buf = fcb_scratch(ctx, need, &ok);
    if (!ok)
    {
        return NSN_SCRATCH_ERROR;
    }
#if defined(NSN_KERNELS_DSP)
    if (batches == 1 && (fcb_ops_row4_dsp(ops, num_ops, input, outputs, (int32_t *)buf) ||
                         fcb_ops_row_dsp(ops, num_ops, input, outputs, (int32_t *)buf)))
    {
        return NSN_OK;
    }
#endif
#if defined(NSN_KERNELS_MVE)
    /* Helium shares nothing between the ops: each op through the one-op entry, which GCC
     * compiles to a faster fcb_mve than this loop's (measured on Cortex-M55: GTCRN's
     * FULLY_CONNECTED 434,822 -> 393,048 instructions per hop, the same bits). */
    for (k = 0; k < num_ops; ++k)
    {
        const nsn_status st = nsn_fully_connected_batch_s8(
            ctx, ops[k].params, ops[k].quant, ops[k].dims, batches, ops[k].blocks,
            ops[k].num_blocks, ops[k].records, input, ops[k].weights, ops[k].bias, outputs[k]);
        if (st != NSN_OK)
        {
            return st;
        }
    }
    return NSN_OK;
#endif
    for (k = 0; k < num_ops; ++k)
    {
        fcb_fill(&a, ops[k].params, ops[k].quant, ops[k].dims, ops[k].blocks, ops[k].num_blocks,
                 ops[k].bias);
        a.batches = batches;
        a.records = ops[k].records;
        a.input = input;
        a.weights = ops[k].weights;
        a.output = outputs[k];
        a.room = (int32_t *)buf;
        a.room_bytes = buf != NULL && a.records != NULL ? ctx->size : 0;
        fcb_run(&a, buf, 1, &pairs);
    }
    return NSN_OK;
}

int32_t nsn_fully_connected_batch_s8_get_buffer_size_dsp(const nsn_fc_dims *dims)
{
    return dims != NULL && dims->input_features > 0 && dims->output_features > 0
               ? NSN_FC_BATCH_S8_BUFFER_SIZE_DSP(dims->input_features, dims->output_features)
               : 0;
}

int32_t nsn_fully_connected_batch_s8_get_buffer_size_mve(const nsn_fc_dims *dims)
{
    return dims != NULL && dims->input_features > 0 && dims->output_features > 0
               ? NSN_FC_BATCH_S8_BUFFER_SIZE_MVE(dims->input_features, dims->output_features)
               : 0;
}

int32_t nsn_fully_connected_batch_s8_get_buffer_size_ref(const nsn_fc_dims *dims)
{
    (void)dims;
    return 0;
}

int32_t nsn_fully_connected_batch_s8_get_buffer_size(const nsn_fc_dims *dims)
{
#if defined(NSN_KERNELS_DSP)
    return nsn_fully_connected_batch_s8_get_buffer_size_dsp(dims);
#elif defined(NSN_KERNELS_MVE)
    return nsn_fully_connected_batch_s8_get_buffer_size_mve(dims);
#else
    return nsn_fully_connected_batch_s8_get_buffer_size_ref(dims);
#endif
}
