/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nsconv int8 kernels: the ops of a quantized Dynamic nsNet2 step, bit-exact with the
 * TensorFlow Lite Micro reference kernels (FULLY_CONNECTED, ADD, SUB, MUL, LOGISTIC, TANH and
 * int8 -> int8 QUANTIZE).
 *
 * Every kernel returns NSN_ARG_ERROR, and writes nothing, for a NULL pointer or a size it cannot
 * handle. All quantization parameters come precomputed from nsconv.quant.params; the kernels only do
 * integer work. The requantization below is TFLM's default double-rounding
 * MultiplyByQuantizedMultiplier (CMSIS-NN's plain-C arm_nn_requantize, not its
 * CMSIS_NN_USE_SINGLE_ROUNDING variant).
 *
 * Code paths, chosen at compile time from the target (CMSIS-NN style; same API, same bits):
 *   NSN_KERNELS_MVE        Helium (Cortex-M55: __ARM_FEATURE_MVE integer), arm_mve.h
 *   NSN_KERNELS_DSP        Armv7E-M / Armv8-M DSP extension (Cortex-M4, M7, M33), arm_acle.h
 *   reference              portable C99 (host builds, cores without DSP)
 * Defining NSN_KERNELS_FORCE_REFERENCE selects the portable path on any target. The DSP and
 * MVE paths need an optimized build (their loops are inline assembly that needs the register
 * allocator): an unoptimized (-O0) build of them stops with #error instead of quietly taking
 * another path; build it with -DNSN_KERNELS_FORCE_REFERENCE to choose the portable one.
 * nsn_kernels_path() names the path the library was built with, for reports.
 */
#ifndef NSN_NNFUNCTIONS_H
#define NSN_NNFUNCTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "nsn_nn_types.h"

#if defined(NSN_KERNELS_FORCE_REFERENCE)
#define NSN_KERNELS_PATH "reference"
#elif defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define NSN_KERNELS_MVE 1
#define NSN_KERNELS_PATH "mve"
#elif defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)
#define NSN_KERNELS_DSP 1
#define NSN_KERNELS_PATH "dsp"
#else
#define NSN_KERNELS_PATH "reference"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The kernel path the library's objects were compiled for: "mve", "dsp" or "reference"
 * (NSN_KERNELS_PATH as the kernel sources saw it). */
const char *nsn_kernels_path(void);

/* The largest input_features for which the int32 dot product cannot overflow:
 * 65536 * 255 * 128 < 2^31. */
#define NSN_FC_MAX_INPUT_FEATURES 65536
/* The largest |input_offset| the DSP and MVE loops take (x + input_offset fits an int16
 * lane); int8 models have |input_offset| <= 128. Beyond it those paths compute with the
 * portable loop (same bits). */
#define NSN_FC_MAX_INPUT_OFFSET (32767 - 128)

/* a + b with two's complement wrap. TFLM adds int32 values unchecked, which wraps on every target
 * it runs on; adding in uint32 gives the same bits without signed-overflow UB. */
static inline int32_t nsn_wrapping_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* a * b / 2^31 to nearest, ties toward +infinity (the nudge is 2^30, or 1 - 2^30 for a negative
 * product, then the quotient truncates toward zero); INT32_MIN * INT32_MIN saturates to INT32_MAX
 * (gemmlowp SaturatingRoundingDoublingHighMul, ARM VQRDMULH). Shifts instead of a 64-bit
 * division, which would be a library call on Cortex-M. */
static inline int32_t nsn_doubling_high_mult(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN)
    {
        return INT32_MAX;
    }
    {
        const int64_t ab = (int64_t)a * (int64_t)b;
        int64_t v = ab + (ab >= 0 ? (INT64_C(1) << 30) : (1 - (INT64_C(1) << 30)));
        if (v < 0)
        {
            v += (INT64_C(1) << 31) - 1; /* makes the arithmetic shift truncate toward zero */
        }
        return (int32_t)(v >> 31);
    }
}

/* x / 2^exponent rounded to nearest, ties away from zero; 0 <= exponent <= 31. */
static inline int32_t nsn_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((UINT32_C(1) << exponent) - 1u);
    const int32_t remainder = (int32_t)((uint32_t)x & (uint32_t)mask);
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLM MultiplyByQuantizedMultiplier (double rounding): acc * multiplier * 2^(shift - 31).
 * -31 <= shift <= 31. The left shift wraps like TFLM's unchecked `x * (1 << shift)`. */
static inline int32_t nsn_requantize(int32_t acc, int32_t multiplier, int32_t shift)
{
    const int32_t left_shift = shift > 0 ? shift : 0;
    const int32_t right_shift = shift > 0 ? 0 : -shift;
    const int32_t shifted = (int32_t)((uint32_t)acc << left_shift);
    return nsn_rounding_divide_by_pot(nsn_doubling_high_mult(shifted, multiplier), right_shift);
}

static inline int32_t nsn_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* Scratch bytes of nsn_fully_connected_s8 for `input_features` inputs, per code path. The DSP
 * path sign-extends the input (plus input_offset) once per call into int16 pairs, so that every
 * weight row reuses it; the MVE and reference paths need none. A compile-time constant, so that
 * generated code can size one static buffer for all its FULLY_CONNECTED calls. */
#define NSN_FC_S8_BUFFER_SIZE_DSP(input_features) (2 * (input_features))
#define NSN_FC_S8_BUFFER_SIZE_MVE(input_features) 0
#define NSN_FC_S8_BUFFER_SIZE_REF(input_features) 0
#if defined(NSN_KERNELS_DSP)
#define NSN_FC_S8_BUFFER_SIZE(input_features) NSN_FC_S8_BUFFER_SIZE_DSP(input_features)
#elif defined(NSN_KERNELS_MVE)
#define NSN_FC_S8_BUFFER_SIZE(input_features) NSN_FC_S8_BUFFER_SIZE_MVE(input_features)
#else
#define NSN_FC_S8_BUFFER_SIZE(input_features) NSN_FC_S8_BUFFER_SIZE_REF(input_features)
#endif

/* FULLY_CONNECTED, per-channel quantization, one input vector:
 *   out[c] = clamp(requantize(bias[c] + sum_i w[c][i] * (x[i] + input_offset), M[c], S[c])
 *                  + output_offset, activation_min, activation_max)
 * weights are [output_features][input_features] row-major; bias may be NULL.
 * 1 <= input_features <= NSN_FC_MAX_INPUT_FEATURES, output_features >= 1.
 *
 * ctx: scratch of nsn_fully_connected_s8_get_buffer_size(dims) bytes, 4-byte aligned, for this
 * call only (it may be shared between calls). When that size is 0, ctx and ctx->buf may be NULL.
 * A missing or short buffer, a negative size or a misaligned buffer returns NSN_SCRATCH_ERROR
 * (on every path, so that a host build catches what would fail on a board) and writes nothing.
 *
 * Fastest with input_offset == 0 (fold input_offset * sum_i w[c][i] into the bias: the MVE path
 * has a dedicated loop for it) and, on the DSP path, with 4-byte aligned weights and
 * input_features a multiple of 4 (two weight words per load). */
nsn_status nsn_fully_connected_s8(const nsn_context *ctx,
                                  const nsn_fc_params *params,
                                  const nsn_per_channel_quant_params *quant,
                                  const nsn_fc_dims *dims,
                                  const int8_t *input,
                                  const int8_t *weights,
                                  const int32_t *bias,
                                  int8_t *output);

/* Scratch bytes nsn_fully_connected_s8 needs on the path this library was built for
 * (NSN_FC_S8_BUFFER_SIZE); the _dsp / _mve / _ref variants answer for a given path whatever
 * the build, for host tools planning memory for a target. */
int32_t nsn_fully_connected_s8_get_buffer_size(const nsn_fc_dims *dims);
int32_t nsn_fully_connected_s8_get_buffer_size_dsp(const nsn_fc_dims *dims);
int32_t nsn_fully_connected_s8_get_buffer_size_mve(const nsn_fc_dims *dims);
int32_t nsn_fully_connected_s8_get_buffer_size_ref(const nsn_fc_dims *dims);

/* Block-sparse, batched FULLY_CONNECTED (nsn_fully_connected_batch_s8).
 *
 * The output channels are cut into consecutive blocks; the weights of every channel of a block
 * are zero outside the input columns [in_start, in_start + in_count) (a grouped or
 * block-diagonal matmul: the gate matmuls of a grouped GRU). A zero weight adds exactly 0 to
 * the sum, so skipping it changes no bit. The packed weights hold, block after block and
 * channel after channel, the in_count weights of each channel's column range (int8, no
 * alignment required). One block {output_features, 0, input_features} is the dense
 * [out][in] layout of nsn_fully_connected_s8. nsconv.compiler.packing.pack_fc_blocks finds
 * the blocks of constant weights (column ranges rounded out to multiples of 4, the DSP path's
 * word loads) and packs them. */
typedef struct
{
    uint16_t out_count; /* channels in this block, >= 1 */
    uint16_t in_start;  /* first input column read */
    uint16_t in_count;  /* columns read (0: the channels are their bias) */
} nsn_fc_block;

/* A channel's requantization prepared for the DSP path of nsn_fully_connected_batch_s8 (the
 * SMMLAR form of TFLM's double rounding on the doubled sum, exact while |sum| < 2^30):
 *   bias2 = 2 * bias, nudge = 2^(e-1) + output_offset * 2^e, exponent e = -shift (1..21). */
typedef struct
{
    int32_t bias2;
    int32_t multiplier;
    int32_t nudge;
    int32_t exponent;
} nsn_fc_record;

/* Scratch bytes of nsn_fully_connected_batch_s8, per path: DSP, a 16-byte requantization
 * record per output channel and two input rows as doubled int16 pairs; MVE, the int32 sums of
 * one row; reference, none. */
#define NSN_FC_BATCH_S8_BUFFER_SIZE_DSP(input_features, output_features) \
    (16 * (output_features) + 4 * (((input_features) + 3) / 4 * 4))
#define NSN_FC_BATCH_S8_BUFFER_SIZE_MVE(input_features, output_features) (4 * (output_features))
#define NSN_FC_BATCH_S8_BUFFER_SIZE_REF(input_features, output_features) 0
#if defined(NSN_KERNELS_DSP)
#define NSN_FC_BATCH_S8_BUFFER_SIZE(i, o) NSN_FC_BATCH_S8_BUFFER_SIZE_DSP(i, o)
#elif defined(NSN_KERNELS_MVE)
#define NSN_FC_BATCH_S8_BUFFER_SIZE(i, o) NSN_FC_BATCH_S8_BUFFER_SIZE_MVE(i, o)
#else
#define NSN_FC_BATCH_S8_BUFFER_SIZE(i, o) NSN_FC_BATCH_S8_BUFFER_SIZE_REF(i, o)
#endif

/* The records of every output channel (records[output_features]), as the DSP path of
 * nsn_fully_connected_batch_s8 would set them up at each call; for the code generator, which
 * writes them as constants (nsconv.compiler.packing.fc_records computes the same values).
 * NSN_ARG_ERROR, and nothing written, for arguments nsn_fully_connected_batch_s8 refuses or
 * when a channel is outside the form's bounds: a multiplier < 0, a shift outside [-21, -1],
 * |output_offset| > 256, |input_offset| > 16255, a block of more than 511 columns, or
 * |bias| + 128 * in_count * (128 + |input_offset|) >= 2^30. */
nsn_status nsn_fully_connected_batch_s8_prepare(const nsn_fc_params *params,
                                                const nsn_per_channel_quant_params *quant,
                                                const nsn_fc_dims *dims,
                                                const nsn_fc_block *blocks,
                                                int32_t num_blocks,
                                                const int32_t *bias,
                                                nsn_fc_record *records);

/* out[b][c] as nsn_fully_connected_s8 computes it for each of `batches` input rows
 * (input[b * input_features ...], output[b * output_features ...]), with block-sparse packed
 * weights (nsn_fc_block). The blocks must cover the output channels exactly (their out_count
 * sum to output_features) and read inside the row (in_start + in_count <= input_features);
 * otherwise NSN_ARG_ERROR. One call per op: the per-channel requantization is set up once and
 * reused by every row. `records` is NULL or what nsn_fully_connected_batch_s8_prepare wrote,
 * returning NSN_OK, for the same params, quant, dims, blocks and bias (the DSP path then skips
 * its set-up; the other paths do not read them). The scratch contract is
 * nsn_fully_connected_s8's with nsn_fully_connected_batch_s8_get_buffer_size bytes. Fastest
 * with input_offset == 0 (folded into the bias), prepared records and, on the DSP path, column
 * counts that are multiples of 4. */
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
                                        int8_t *output);

/* One FULLY_CONNECTED of nsn_fully_connected_batch_multi_s8: the arguments of
 * nsn_fully_connected_batch_s8 other than the context, the rows, the input and the output. */
typedef struct
{
    const nsn_fc_params *params;
    const nsn_per_channel_quant_params *quant;
    const nsn_fc_dims *dims;
    const nsn_fc_block *blocks;
    int32_t num_blocks;
    const nsn_fc_record *records;
    const int8_t *weights;
    const int32_t *bias;
} nsn_fc_batch_op;

/* Several FULLY_CONNECTED ops on one input in one call: outputs[k] as
 * nsn_fully_connected_batch_s8 computes it with ops[k] for the `batches` rows of `input` (each
 * op its own weights, blocks, bias, requantization, output offset and activation range, so
 * its own bits). Every op reads rows of the same input_features. The ops are checked as
 * nsn_fully_connected_batch_s8 checks its arguments, except the blocks of an op with records:
 * prepare checked them, for the same arguments (the records' contract). NSN_ARG_ERROR or
 * NSN_SCRATCH_ERROR (the largest nsn_fully_connected_batch_s8_get_buffer_size of the ops)
 * before any output is written. On the DSP path, the one-row, 4-column-block ops (the
 * hidden-state matmuls of a grouped GRU step) expand the input row once for all of them. */
nsn_status nsn_fully_connected_batch_multi_s8(const nsn_context *ctx,
                                              const nsn_fc_batch_op *ops,
                                              int32_t num_ops,
                                              int32_t batches,
                                              const int8_t *input,
                                              int8_t *const *outputs);

int32_t nsn_fully_connected_batch_s8_get_buffer_size(const nsn_fc_dims *dims);
int32_t nsn_fully_connected_batch_s8_get_buffer_size_dsp(const nsn_fc_dims *dims);
int32_t nsn_fully_connected_batch_s8_get_buffer_size_mve(const nsn_fc_dims *dims);
int32_t nsn_fully_connected_batch_s8_get_buffer_size_ref(const nsn_fc_dims *dims);

/* FULLY_CONNECTED with packed 4-bit weights (nsn_fully_connected_s4): the semantics of
 * nsn_fully_connected_s8 with weight values in [-8, 7], two per byte.
 *
 * Layout: each row of input_features weights is cut into chunks of 16 (the last one padded with
 * zero weights); a chunk is 8 bytes, byte k (0..7) holding weight 16c + k in its low nibble as
 * w + 8 (offset binary) and weight 16c + 8 + k in its high nibble (two's complement), i.e. the
 * byte, read as int8, is 16 * w[16c + 8 + k] + w[16c + k] + 8. A row takes NSN_FC_S4_ROW_BYTES
 * bytes (a multiple of 8), rows follow each other, and no alignment is required. The offset
 * binary low nibble lets the DSP path use a packed word as it is (one AND per eight weights
 * isolates the high nibbles), and the MVE path one VAND and one VSHR per 32 weights.
 * nsconv.compiler.packing.pack_s4 writes this layout. */
#define NSN_FC_S4_ROW_BYTES(input_features) (8 * (((input_features) + 15) / 16))
/* The largest input_features of nsn_fully_connected_s4 (16 * the dot product stays in int32 on
 * the DSP path). */
#define NSN_FC_S4_MAX_INPUT_FEATURES 32768
/* The largest |input_offset| the DSP path takes (x_{8+k} - 16 x_k fits an int16 lane); beyond
 * it, and on the MVE path for any non-zero input offset, the portable loop runs (same bits). */
#define NSN_FC_S4_MAX_INPUT_OFFSET 1799

/* Scratch bytes of nsn_fully_connected_s4: DSP, 16 int16 per 16 inputs (the expanded input);
 * MVE, the input rearranged in groups of 32; reference, none. */
#define NSN_FC_S4_BUFFER_SIZE_DSP(input_features) (32 * (((input_features) + 15) / 16))
#define NSN_FC_S4_BUFFER_SIZE_MVE(input_features) (32 * (((input_features) + 31) / 32))
#define NSN_FC_S4_BUFFER_SIZE_REF(input_features) 0
#if defined(NSN_KERNELS_DSP)
#define NSN_FC_S4_BUFFER_SIZE(input_features) NSN_FC_S4_BUFFER_SIZE_DSP(input_features)
#elif defined(NSN_KERNELS_MVE)
#define NSN_FC_S4_BUFFER_SIZE(input_features) NSN_FC_S4_BUFFER_SIZE_MVE(input_features)
#else
#define NSN_FC_S4_BUFFER_SIZE(input_features) NSN_FC_S4_BUFFER_SIZE_REF(input_features)
#endif

/* out[c] as nsn_fully_connected_s8 computes it, from packed weights (layout above);
 * 1 <= input_features <= NSN_FC_S4_MAX_INPUT_FEATURES. The scratch contract is the s8 kernel's
 * with nsn_fully_connected_s4_get_buffer_size bytes (a missing, short or misaligned scratch
 * where some is needed returns NSN_SCRATCH_ERROR and writes nothing). Fastest with
 * input_offset == 0 (folded into the bias), which the MVE path requires for its fast loop. */
nsn_status nsn_fully_connected_s4(const nsn_context *ctx,
                                  const nsn_fc_params *params,
                                  const nsn_per_channel_quant_params *quant,
                                  const nsn_fc_dims *dims,
                                  const int8_t *input,
                                  const int8_t *weights,
                                  const int32_t *bias,
                                  int8_t *output);

int32_t nsn_fully_connected_s4_get_buffer_size(const nsn_fc_dims *dims);
int32_t nsn_fully_connected_s4_get_buffer_size_dsp(const nsn_fc_dims *dims);
int32_t nsn_fully_connected_s4_get_buffer_size_mve(const nsn_fc_dims *dims);
int32_t nsn_fully_connected_s4_get_buffer_size_ref(const nsn_fc_dims *dims);

/* Element-wise ADD / SUB (TFLM semantics: scaled1 + scaled2, scaled1 - scaled2). size1 and size2
 * are equal, or one of them is 1 and that operand is broadcast; the output has
 * max(size1, size2) elements. */
nsn_status nsn_elementwise_add_s8(const nsn_add_params *p,
                                  const int8_t *input1,
                                  int32_t size1,
                                  const int8_t *input2,
                                  int32_t size2,
                                  int8_t *output);
nsn_status nsn_elementwise_sub_s8(const nsn_add_params *p,
                                  const int8_t *input1,
                                  int32_t size1,
                                  const int8_t *input2,
                                  int32_t size2,
                                  int8_t *output);

/* Element-wise MUL, with the same broadcasting rule as ADD. */
nsn_status nsn_elementwise_mul_s8(const nsn_mul_params *p,
                                  const int8_t *input1,
                                  int32_t size1,
                                  const int8_t *input2,
                                  int32_t size2,
                                  int8_t *output);

#if defined(NSN_KERNELS_DSP)
/*
 * The DSP path of the element-wise kernels (nsn_elementwise_s8.c explains its bounds and why
 * its arithmetic is exact). nsn_add_s8_dsp_mode / nsn_mul_s8_dsp_ok check the parameters;
 * nsn_add_s8_dsp / nsn_mul_s8_dsp run two equal-size vectors whose parameters passed. The
 * checks are here, inline, so that a call whose parameters the compiler knows (a generated
 * model's static const structs) makes them at compile time: see the macros below.
 */
void nsn_add_s8_dsp(const nsn_add_params *p,
                    int32_t mode,
                    const int8_t *input1,
                    const int8_t *input2,
                    int8_t *output,
                    int32_t size);
void nsn_mul_s8_dsp(const nsn_mul_params *p,
                    const int8_t *input1,
                    const int8_t *input2,
                    int8_t *output,
                    int32_t size);

#if defined(__GNUC__)
#define NSN_ALWAYS_INLINE __attribute__((always_inline)) static inline
#else
#define NSN_ALWAYS_INLINE static inline
#endif

/* An output (or MUL) rescaling inside the DSP path: multiplier >= 0, shift in [-22, -1],
 * |offset| <= 256; an ADD/SUB input: multiplier >= 0, shift in [-31, -1]. */
NSN_ALWAYS_INLINE int nsn_dsp_rescale_ok(int32_t multiplier, int32_t shift, int32_t offset, int32_t max_e)
{
    return multiplier >= 0 && shift <= -1 && shift >= -max_e && offset >= -256 && offset <= 256;
}

NSN_ALWAYS_INLINE int nsn_dsp_offset_ok(int32_t offset)
{
    return offset >= -128 && offset <= 128;
}

/* The DSP loop for ADD (sign 1) or SUB (-1) with these parameters: 1 / 2 input 1 halved
 * exactly (ADD / SUB), 3 / 4 input 2 halved, 5 / 6 both; 0: outside the DSP path. */
NSN_ALWAYS_INLINE int32_t nsn_add_s8_dsp_mode(const nsn_add_params *p, int32_t sign)
{
    const int exact1 = p->input1_multiplier == (1 << 30) && p->input1_shift == 0;
    const int exact2 = p->input2_multiplier == (1 << 30) && p->input2_shift == 0;
    if (p->left_shift != 20 || !nsn_dsp_offset_ok(p->input1_offset) ||
        !nsn_dsp_offset_ok(p->input2_offset) ||
        !nsn_dsp_rescale_ok(p->output_multiplier, p->output_shift, p->output_offset, 22))
    {
        return 0;
    }
    if (exact1 && exact2)
    {
        return sign > 0 ? 5 : 6;
    }
    if (exact1 && nsn_dsp_rescale_ok(p->input2_multiplier, p->input2_shift, 0, 31))
    {
        return sign > 0 ? 1 : 2;
    }
    if (exact2 && nsn_dsp_rescale_ok(p->input1_multiplier, p->input1_shift, 0, 31))
    {
        return sign > 0 ? 3 : 4;
    }
    return 0;
}

NSN_ALWAYS_INLINE int nsn_mul_s8_dsp_ok(const nsn_mul_params *p)
{
    return nsn_dsp_offset_ok(p->input1_offset) && nsn_dsp_offset_ok(p->input2_offset) &&
           nsn_dsp_rescale_ok(p->output_multiplier, p->output_shift, p->output_offset, 22);
}

#if defined(__GNUC__) && defined(__OPTIMIZE__) && !defined(NSN_ELEMENTWISE_S8_SOURCE)
/* With GCC, nsn_elementwise_add/sub/mul_s8 are macros for these: when the parameters and
 * sizes are compile-time constants inside the DSP path, the call goes straight to its loop
 * (only the pointer checks remain); otherwise to the function, which checks at run time.
 * Same bits either way. */
NSN_ALWAYS_INLINE nsn_status nsn_add_s8_known(const nsn_add_params *p,
                                                                         const int8_t *input1,
                                                                         int32_t size1,
                                                                         const int8_t *input2,
                                                                         int32_t size2,
                                                                         int8_t *output,
                                                                         int32_t sign)
{
    const int32_t mode = nsn_add_s8_dsp_mode(p, sign);
    if (__builtin_constant_p(mode) && __builtin_constant_p(size1) &&
        __builtin_constant_p(size2) && mode != 0 && size1 == size2 && size1 > 0)
    {
        if (input1 == NULL || input2 == NULL || output == NULL)
        {
            return NSN_ARG_ERROR;
        }
        nsn_add_s8_dsp(p, mode, input1, input2, output, size1);
        return NSN_OK;
    }
    return sign > 0 ? nsn_elementwise_add_s8(p, input1, size1, input2, size2, output)
                    : nsn_elementwise_sub_s8(p, input1, size1, input2, size2, output);
}

NSN_ALWAYS_INLINE nsn_status nsn_mul_s8_known(const nsn_mul_params *p,
                                                                         const int8_t *input1,
                                                                         int32_t size1,
                                                                         const int8_t *input2,
                                                                         int32_t size2,
                                                                         int8_t *output)
{
    const int ok = nsn_mul_s8_dsp_ok(p);
    if (__builtin_constant_p(ok) && __builtin_constant_p(size1) && __builtin_constant_p(size2) &&
        ok && size1 == size2 && size1 > 0)
    {
        if (input1 == NULL || input2 == NULL || output == NULL)
        {
            return NSN_ARG_ERROR;
        }
        nsn_mul_s8_dsp(p, input1, input2, output, size1);
        return NSN_OK;
    }
    return nsn_elementwise_mul_s8(p, input1, size1, input2, size2, output);
}

#define nsn_elementwise_add_s8(p, x1, n1, x2, n2, y) nsn_add_s8_known(p, x1, n1, x2, n2, y, 1)
#define nsn_elementwise_sub_s8(p, x1, n1, x2, n2, y) nsn_add_s8_known(p, x1, n1, x2, n2, y, -1)
#define nsn_elementwise_mul_s8(p, x1, n1, x2, n2, y) nsn_mul_s8_known(p, x1, n1, x2, n2, y)
#endif
#endif /* NSN_KERNELS_DSP */

/* output[i] = table[(uint8_t)input[i]]: LOGISTIC and TANH with tables from nsconv.quant.params
 * (an int8 unary op has only 256 possible inputs). */
nsn_status nsn_lut_s8(const int8_t table[256], const int8_t *input, int32_t size, int8_t *output);

/* int8 -> int8 QUANTIZE (TFLM Requantize), e.g. a GRU state fed back into the next step. */
nsn_status nsn_requantize_s8(const nsn_requantize_params *p,
                             const int8_t *input,
                             int32_t size,
                             int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* NSN_NNFUNCTIONS_H */
