/* SPDX-License-Identifier: Apache-2.0 */
/*
 * FULLY_CONNECTED with packed 4-bit weights: the semantics of nsn_fully_connected_s8 (TFLM
 * reference_integer_ops::FullyConnectedPerChannel on an int8 model whose filter values lie in
 * [-8, 7]), with the filter stored two weights per byte (layout: nsn_nnfunctions.h,
 * NSN_FC_S4_ROW_BYTES).
 *
 * A byte holds weight w[16c + k] in its low nibble, stored as w + 8 (offset binary), and weight
 * w[16c + 8 + k] in its high nibble (two's complement): as an int8 the byte is
 *     v = 16 * hi + lo + 8,
 * so (v >> 4) is hi, and v & 0xF0 is 16 * hi. The constant 8 adds 8 * (x + input_offset) for each
 * input at a low-nibble position, the same for every row: the kernels subtract it once per call.
 *
 * Three paths with the same bits (see nsn_nnfunctions.h for how one is chosen):
 *   reference  one row at a time, each weight decoded, portable C99.
 *   DSP        the input is expanded once per call into int16 pairs (x = input + offset):
 *                  A_k = 16 x_k,   B_k = x_{8+k} - 16 x_k   (k = 0..7 of each 16-input chunk),
 *              so that, for a packed word W, SXTB16 of W against A and SXTB16 of W & 0xF0F0F0F0
 *              against B sum to 16 * (lo_k x_k + hi_k x_{8+k}) + 128 x_k: one AND, four SXTB16
 *              and four SMLAD per eight weights; two rows per pass share every input load.
 *              The sums start at -128 * sum_k x_k and are divided by 16 (exactly) at the end.
 *   MVE        the input is rearranged once per call (offset 0) so that one 16-byte vector of a
 *              row meets a vector of its low-nibble inputs and one of its high-nibble inputs:
 *              VAND 0x0F gives lo + 8, VSHR.S8 #4 gives hi, two VMLADAVA.S8 (32 MACs); four rows
 *              per pass, tail-predicated (DLSTP/LETP). The sums start at -8 * sum_k x_k. A
 *              non-zero input offset takes the portable loop (the code generator folds it).
 * Both optimized paths requantize blocks of 32 channels as nsn_fully_connected_s8 does.
 */
#include "nsn_nnfunctions.h"

#include <stddef.h>

#include "nsn_kernels_internal.h"

#if (defined(NSN_KERNELS_DSP) || defined(NSN_KERNELS_MVE)) && !defined(__OPTIMIZE__)
#error "nsconv kernels: the dsp and mve paths need an optimized build (-O1 or higher); build with -DNSN_KERNELS_FORCE_REFERENCE to choose the portable path"
#endif

/* Weight i of a packed row. */
static int32_t s4_weight(const int8_t *row, int32_t i)
{
    const uint32_t byte = (uint8_t)row[(i >> 4) * 8 + (i & 7)];
    return (i & 8) != 0 ? (int32_t)((byte >> 4) ^ 8u) - 8 : (int32_t)(byte & 15u) - 8;
}

static void fc_s4_reference(const nsn_fc_params *params,
                            const nsn_per_channel_quant_params *quant,
                            const nsn_fc_dims *dims,
                            const int8_t *input,
                            const int8_t *weights,
                            const int32_t *bias,
                            int8_t *output)
{
    const int32_t n = dims->input_features;
    const size_t stride = (size_t)NSN_FC_S4_ROW_BYTES(n);
    int32_t c;
    for (c = 0; c < dims->output_features; ++c)
    {
        const int8_t *row = weights + (size_t)c * stride;
        int32_t acc = 0;
        int32_t i;
        for (i = 0; i < n; ++i)
        {
            acc += s4_weight(row, i) * ((int32_t)input[i] + params->input_offset);
        }
        if (bias != NULL)
        {
            acc = nsn_wrapping_add(acc, bias[c]);
        }
        acc = nsn_requantize(acc, quant->multiplier[c], quant->shift[c]);
        acc = nsn_wrapping_add(acc, params->output_offset);
        output[c] = (int8_t)nsn_clamp(acc, params->activation_min, params->activation_max);
    }
}

#if defined(NSN_KERNELS_DSP)

/* Inputs per chunk (a partial last chunk is expanded from a zero-padded copy: the padded
 * weights are 0, and the constant 8 of their low nibbles cancels like any other). */
#define S4_CHUNK 16

/* One 16-input chunk (x = in[i] + offset, in two words per 4 inputs) -> the eight pair words
 * A(0,2) A(1,3) B(0,2) B(1,3) A(4,6) A(5,7) B(4,6) B(5,7); returns sum of x_0..x_7. */
static int32_t s4_expand_chunk_dsp(const int8_t *in, int32_t offset2, int32_t *buf)
{
    int32_t xsum = 0;
    int32_t j;
    for (j = 0; j < 2; ++j)
    {
        const int32_t lo = nsn_read_s8x4(in + 4 * j);
        const int32_t hi = nsn_read_s8x4(in + 8 + 4 * j);
        /* (x0, x2), (x1, x3) of the low and the high inputs; |x| <= 2047 keeps 16 x in a lane,
         * and (x << 4) with the lane carry cleared is 16 x per lane */
        const int32_t le = __sxtab16(offset2, lo);
        const int32_t lod = nsn_sxtab16_ror8(offset2, lo);
        const int32_t ae = (int32_t)(((uint32_t)le << 4) & 0xFFF0FFFFu);
        const int32_t ao = (int32_t)(((uint32_t)lod << 4) & 0xFFF0FFFFu);
        buf[0] = ae;
        buf[1] = ao;
        buf[2] = __ssub16(__sxtab16(offset2, hi), ae);
        buf[3] = __ssub16(nsn_sxtab16_ror8(offset2, hi), ao);
        xsum = __smlad(le, 0x00010001, xsum);
        xsum = __smlad(lod, 0x00010001, xsum);
        buf += 4;
    }
    return xsum;
}

/* The whole input; returns -128 * sum of the low-nibble inputs (the start of every sum). */
static int32_t s4_expand_input_dsp(const int8_t *input, int32_t n, int32_t offset, int32_t *buf)
{
    const int32_t offset2 = (int32_t)(((uint32_t)offset & 0xFFFFu) * 0x10001u);
    int32_t xsum = 0;
    int32_t i;
    for (i = 0; i + S4_CHUNK <= n; i += S4_CHUNK)
    {
        xsum += s4_expand_chunk_dsp(input + i, offset2, buf);
        buf += 8;
    }
    if (i < n)
    {
        int8_t tail[S4_CHUNK] = {0};
        int32_t k;
        for (k = 0; i + k < n; ++k)
        {
            tail[k] = input[i + k];
        }
        xsum += s4_expand_chunk_dsp(tail, offset2, buf);
    }
    return (int32_t)((uint32_t)xsum * (uint32_t)-128);
}

/* x0..x3 fixed registers for LDM (ascending list), r7 (frame pointer) left alone. */
#define S4_DSP_X_REGISTERS                                                                     \
    register int32_t x0 __asm("r8");                                                           \
    register int32_t x1 __asm("r9");                                                           \
    register int32_t x2 __asm("r10");                                                          \
    register int32_t x3 __asm("r11")

/* One packed word W of a row (weights k..k+3 low, 8+k..8+k+3 high) into ACC, with the pair
 * words x0 = A(k, k+2), x1 = A(k+1, k+3), x2 = B(k, k+2), x3 = B(k+1, k+3). */
#define S4_MAC_WORD(ACC)                                                                       \
    "sxtb16 %[t], %[w]\n\t"                                                                    \
    "smlad %[" ACC "], %[t], %[x0], %[" ACC "]\n\t"                                            \
    "sxtb16 %[t], %[w], ror #8\n\t"                                                            \
    "smlad %[" ACC "], %[t], %[x1], %[" ACC "]\n\t"                                            \
    "and %[w], %[w], #0xF0F0F0F0\n\t"                                                          \
    "sxtb16 %[t], %[w]\n\t"                                                                    \
    "smlad %[" ACC "], %[t], %[x2], %[" ACC "]\n\t"                                            \
    "sxtb16 %[w], %[w], ror #8\n\t"                                                            \
    "smlad %[" ACC "], %[w], %[x3], %[" ACC "]\n\t"

/* Half a chunk (eight weights) of both rows: four pair words, one packed word per row. */
#define S4_HALF                                                                                \
    "ldm %[xb]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"                                             \
    "ldr %[w], [%[p0]], #4\n\t" S4_MAC_WORD("a0") "ldr %[w], [%[p1]], #4\n\t" S4_MAC_WORD("a1")

/*
 * For each of `pairs` pairs of rows (row, row + stride), two sums starting at `init` go to the
 * next two int32 of acc; stride 0 runs one row twice. A row is n2 steps of two chunks, then one
 * chunk if n1. Returns the row after the last pair. Assembly for the reasons given in
 * nsn_fully_connected_s8.c (post-increment loads, LDM, no spills around 12 live registers).
 */
static const int8_t *fc_s4_pairs_dsp(const int8_t *row,
                                     int32_t stride,
                                     int32_t pairs,
                                     int32_t init,
                                     int32_t *acc,
                                     const int32_t *xbuf,
                                     int32_t n2,
                                     int32_t n1)
{
    S4_DSP_X_REGISTERS;
    int32_t a0, a1, w, t, n;
    const int8_t *p0 = row;
    const int8_t *p1;
    const int32_t *xb;
    __asm volatile(
        "0:\n\t"
        "ldr %[a0], %[init]\n\t"
        "mov %[a1], %[a0]\n\t"
        "ldr %[t], %[stride]\n\t"
        "add %[p1], %[p0], %[t]\n\t"
        "ldr %[xb], %[xbuf]\n\t"
        "ldr %[n], %[n2]\n\t"
        "cmp %[n], #0\n\t"
        "beq 2f\n"
        "1:\n\t" S4_HALF S4_HALF S4_HALF S4_HALF
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n"
        "2:\n\t"
        "ldr %[n], %[n1]\n\t"
        "cmp %[n], #0\n\t"
        "beq 3f\n\t" S4_HALF S4_HALF
        "3:\n\t"
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
          [w] "=&r"(w), [t] "=&r"(t), [acc] "+m"(acc), [pairs] "+m"(pairs)
        : [init] "m"(init), [stride] "m"(stride), [xbuf] "m"(xbuf), [n2] "m"(n2), [n1] "m"(n1)
        : "cc", "memory");
    return p0;
}

#define S4_DSP_BLOCK 32

/* output[i] = clamp(requantize(acc[i] / 16 + bias[i], M[i], S[i]) + output_offset): the sums
 * are 16 * the dot product (mod 2^32, and |16 dot| < 2^31), so the shift is exact. */
static void fc_s4_requantize_dsp(int32_t *acc,
                                 int32_t count,
                                 const int32_t *bias,
                                 const int32_t *multiplier,
                                 const int32_t *shift,
                                 const nsn_fc_params *params,
                                 int8_t *output)
{
    const int32_t output_offset = params->output_offset;
    const int32_t act_min = params->activation_min;
    const int32_t act_max = params->activation_max;
    int32_t i;
    for (i = 0; i < count; ++i)
    {
        acc[i] = nsn_wrapping_add(acc[i] >> 4, bias != NULL ? bias[i] : 0);
    }
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

static void fc_s4_dsp(const nsn_fc_params *params,
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
    const int32_t chunks = (n + S4_CHUNK - 1) / S4_CHUNK;
    const int32_t stride = NSN_FC_S4_ROW_BYTES(n);
    const int32_t init = s4_expand_input_dsp(input, n, params->input_offset, xbuf);
    const int8_t *row = weights;
    int32_t acc[S4_DSP_BLOCK + 1]; /* + 1: the second copy of a last odd row */
    int32_t block;
    for (block = 0; block < n_out; block += S4_DSP_BLOCK)
    {
        const int32_t count = n_out - block < S4_DSP_BLOCK ? n_out - block : S4_DSP_BLOCK;
        if (count > 1)
        {
            row = fc_s4_pairs_dsp(row, stride, count >> 1, init, acc, xbuf, chunks >> 1,
                                  chunks & 1);
        }
        if ((count & 1) != 0)
        {
            row = fc_s4_pairs_dsp(row, 0, 1, init, acc + count - 1, xbuf, chunks >> 1,
                                  chunks & 1);
        }
        fc_s4_requantize_dsp(acc, count, bias != NULL ? bias + block : NULL,
                             quant->multiplier + block, quant->shift + block, params,
                             output + block);
    }
}

#endif /* NSN_KERNELS_DSP */

#if defined(NSN_KERNELS_MVE)

/* Inputs per group: one 16-byte vector of a row (two chunks) meets 16 low-nibble inputs
 * (x[32g .. 32g+7], x[32g+16 .. 32g+23]) and 16 high-nibble ones (x[32g+8 ..], x[32g+24 ..]). */
#define S4_GROUP 32

/* The rearranged input (zero past n); returns -8 * sum of the low-nibble inputs. */
static int32_t s4_expand_input_mve(const int8_t *input, int32_t n, int8_t *buf)
{
    int32_t xsum = 0;
    int32_t g;
    for (g = 0; g < n; g += S4_GROUP)
    {
        int8_t *dst = buf + g;
        int32_t k;
        if (g + S4_GROUP <= n)
        {
            memcpy(dst, input + g, 8);
            memcpy(dst + 8, input + g + 16, 8);
            memcpy(dst + 16, input + g + 8, 8);
            memcpy(dst + 24, input + g + 24, 8);
        }
        else
        {
            for (k = 0; k < S4_GROUP; ++k)
            {
                /* position k of the group holds input 32g + (k & 7) + 16 (bit 3 of k)
                 * + 8 (bit 4 of k) */
                const int32_t i = g + (k & 7) + ((k & 8) << 1) + ((k & 16) >> 1);
                dst[k] = i < n ? input[i] : 0;
            }
        }
        xsum = vaddvaq_s8(xsum, vldrbq_s8(dst));
    }
    return xsum * -8;
}

/*
 * For each of `passes` groups of four consecutive rows (stride bytes apart; stride 0: one row
 * four times), four sums starting at `init` go to the next four int32 of acc. Returns the row
 * after the last group (the last row pointer, advanced by whole vectors, moved `back`).
 * "Te": VMLADAVA accumulates into an even register.
 */
static const int8_t *fc_s4_passes_mve(const int8_t *row,
                                      int32_t stride,
                                      int32_t passes,
                                      int32_t init,
                                      int32_t *acc,
                                      const int8_t *xbuf,
                                      int32_t bytes)
{
    const int32_t back = bytes - ((bytes + 15) & ~15);
    const int8x16_t mask = vdupq_n_s8(0x0F);
    int32_t a0, a1, a2, a3;
    const int8_t *x, *p1, *p2, *p3;
    int8x16_t vlo, vhi, w, t;
    __asm volatile("0:\n\t"
                   "ldr %[a0], %[init]\n\t"
                   "mov %[a1], %[a0]\n\t"
                   "mov %[a2], %[a0]\n\t"
                   "mov %[a3], %[a0]\n\t"
                   "ldr %[x], %[xbuf]\n\t"
                   "add %[p1], %[p0], %[stride]\n\t"
                   "add %[p2], %[p1], %[stride]\n\t"
                   "add %[p3], %[p2], %[stride]\n\t"
                   "dlstp.8 lr, %[n]\n"
                   "1:\n\t"
                   "vldrb.8 %q[vlo], [%[x]], #16\n\t"
                   "vldrb.8 %q[vhi], [%[x]], #16\n\t"
                   "vldrb.8 %q[w], [%[p0]], #16\n\t"
                   "vand %q[t], %q[w], %q[mask]\n\t"
                   "vshr.s8 %q[w], %q[w], #4\n\t"
                   "vmladava.s8 %[a0], %q[vlo], %q[t]\n\t"
                   "vmladava.s8 %[a0], %q[vhi], %q[w]\n\t"
                   "vldrb.8 %q[w], [%[p1]], #16\n\t"
                   "vand %q[t], %q[w], %q[mask]\n\t"
                   "vshr.s8 %q[w], %q[w], #4\n\t"
                   "vmladava.s8 %[a1], %q[vlo], %q[t]\n\t"
                   "vmladava.s8 %[a1], %q[vhi], %q[w]\n\t"
                   "vldrb.8 %q[w], [%[p2]], #16\n\t"
                   "vand %q[t], %q[w], %q[mask]\n\t"
                   "vshr.s8 %q[w], %q[w], #4\n\t"
                   "vmladava.s8 %[a2], %q[vlo], %q[t]\n\t"
                   "vmladava.s8 %[a2], %q[vhi], %q[w]\n\t"
                   "vldrb.8 %q[w], [%[p3]], #16\n\t"
                   "vand %q[t], %q[w], %q[mask]\n\t"
                   "vshr.s8 %q[w], %q[w], #4\n\t"
                   "vmladava.s8 %[a3], %q[vlo], %q[t]\n\t"
                   "vmladava.s8 %[a3], %q[vhi], %q[w]\n\t"
                   "letp lr, 1b\n\t"
                   "strd %[a0], %[a1], [%[acc]], #8\n\t"
                   "strd %[a2], %[a3], [%[acc]], #8\n\t"
                   "ldr %[a0], %[back]\n\t"
                   "add %[p0], %[p3], %[a0]\n\t"
                   "subs %[passes], %[passes], #1\n\t"
                   "bne 0b\n\t"
                   : [a0] "=&Te"(a0), [a1] "=&Te"(a1), [a2] "=&Te"(a2), [a3] "=&Te"(a3),
                     [x] "=&r"(x), [p0] "+r"(row), [p1] "=&r"(p1), [p2] "=&r"(p2),
                     [p3] "=&r"(p3), [vlo] "=&w"(vlo), [vhi] "=&w"(vhi), [w] "=&w"(w),
                     [t] "=&w"(t), [acc] "+r"(acc), [passes] "+r"(passes)
                   : [init] "m"(init), [xbuf] "m"(xbuf), [stride] "r"(stride), [n] "r"(bytes),
                     [back] "m"(back), [mask] "w"(mask)
                   : "lr", "memory", "cc");
    return row;
}

#define S4_MVE_BLOCK 32

static void fc_s4_mve(const nsn_fc_params *params,
                      const nsn_per_channel_quant_params *quant,
                      const nsn_fc_dims *dims,
                      const int8_t *input,
                      const int8_t *weights,
                      const int32_t *bias,
                      int8_t *output,
                      int8_t *xbuf)
{
    const int32_t n = dims->input_features;
    const int32_t n_out = dims->output_features;
    const int32_t stride = NSN_FC_S4_ROW_BYTES(n);
    const int32x4_t act_min = vdupq_n_s32(params->activation_min);
    const int32x4_t act_max = vdupq_n_s32(params->activation_max);
    const int32_t output_offset = params->output_offset;
    const int32_t *const multiplier = quant->multiplier;
    const int32_t *const shift = quant->shift;
    const int32_t init = s4_expand_input_mve(input, n, xbuf);
    const int8_t *row = weights;
    int32_t acc[S4_MVE_BLOCK + 3]; /* + 3: the copies of a last row run alone */
    int32_t block;
    for (block = 0; block < n_out; block += S4_MVE_BLOCK)
    {
        const int32_t count = n_out - block < S4_MVE_BLOCK ? n_out - block : S4_MVE_BLOCK;
        const int32_t groups = count >> 2;
        int32_t j;
        if (groups > 0)
        {
            row = fc_s4_passes_mve(row, stride, groups, init, acc, xbuf, stride);
        }
        for (j = groups << 2; j < count; ++j)
        {
            row = fc_s4_passes_mve(row, 0, 1, init, acc + j, xbuf, stride);
        }
        for (j = 0; j < count; j += 4)
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

#endif /* NSN_KERNELS_MVE */

/* The scratch this call gets: NULL (with status NSN_OK) when none is needed, else buf; a
 * missing, short or misaligned one sets NSN_SCRATCH_ERROR. */
static nsn_status s4_scratch(const nsn_context *ctx, int32_t need, void **buf)
{
    *buf = NULL;
    if (ctx == NULL || ctx->buf == NULL)
    {
        return need == 0 ? NSN_OK : NSN_SCRATCH_ERROR;
    }
    if (ctx->size < need || ((uintptr_t)ctx->buf & 3u) != 0)
    {
        return NSN_SCRATCH_ERROR;
    }
    *buf = ctx->buf;
    return NSN_OK;
}

nsn_status nsn_fully_connected_s4(const nsn_context *ctx,
                                  const nsn_fc_params *params,
                                  const nsn_per_channel_quant_params *quant,
                                  const nsn_fc_dims *dims,
                                  const int8_t *input,
                                  const int8_t *weights,
                                  const int32_t *bias,
                                  int8_t *output)
{
    void *buf;
    nsn_status status;
    if (params == NULL || quant == NULL || dims == NULL || input == NULL || weights == NULL ||
        output == NULL || quant->multiplier == NULL || quant->shift == NULL)
    {
        return NSN_ARG_ERROR;
    }
    if (dims->input_features < 1 || dims->input_features > NSN_FC_S4_MAX_INPUT_FEATURES ||
        dims->output_features < 1)
    {
        return NSN_ARG_ERROR;
    }
    status = s4_scratch(ctx, nsn_fully_connected_s4_get_buffer_size(dims), &buf);
    if (status != NSN_OK)
    {
        return status;
    }
#if defined(NSN_KERNELS_DSP)
    {
        /* 16 x and x_{8+k} - 16 x_k fit an int16 lane */
        const int32_t bound = nsn_offset_bound(params->input_offset);
        if (bound >= 0 && bound <= NSN_FC_S4_MAX_INPUT_OFFSET + 128)
        {
            fc_s4_dsp(params, quant, dims, input, weights, bias, output, (int32_t *)buf);
            return NSN_OK;
        }
    }
#elif defined(NSN_KERNELS_MVE)
    if (params->input_offset == 0)
    {
        fc_s4_mve(params, quant, dims, input, weights, bias, output, (int8_t *)buf);
        return NSN_OK;
    }
#else
    (void)buf;
#endif
    fc_s4_reference(params, quant, dims, input, weights, bias, output);
    return NSN_OK;
}

int32_t nsn_fully_connected_s4_get_buffer_size_dsp(const nsn_fc_dims *dims)
{
    return dims != NULL && dims->input_features > 0
               ? NSN_FC_S4_BUFFER_SIZE_DSP(dims->input_features)
               : 0;
}

int32_t nsn_fully_connected_s4_get_buffer_size_mve(const nsn_fc_dims *dims)
{
    return dims != NULL && dims->input_features > 0
               ? NSN_FC_S4_BUFFER_SIZE_MVE(dims->input_features)
               : 0;
}

int32_t nsn_fully_connected_s4_get_buffer_size_ref(const nsn_fc_dims *dims)
{
    (void)dims;
    return 0;
}

int32_t nsn_fully_connected_s4_get_buffer_size(const nsn_fc_dims *dims)
{
#if defined(NSN_KERNELS_DSP)
    return nsn_fully_connected_s4_get_buffer_size_dsp(dims);
#elif defined(NSN_KERNELS_MVE)
    return nsn_fully_connected_s4_get_buffer_size_mve(dims);
#else
    return nsn_fully_connected_s4_get_buffer_size_ref(dims);
#endif
}
