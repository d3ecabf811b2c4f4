/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nsconv kernels with int16 activations (GTCRN's mixed int8 / 16x8 core, issue 14), bit-exact
 * with the TensorFlow Lite Micro reference kernels:
 *   16x8 CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED: int16 input and output (zero point 0),
 *     int8 weights (per channel), int64 bias, int64 sums, TFLM's int64
 *     MultiplyByQuantizedMultiplier (multiplier reduced to 16 bits, one rounding shift);
 *   int16 ADD, SUB (left shift 15), MUL, MEAN, LEAKY_RELU (also int8), LOGISTIC, TANH
 *     (TFLM's interpolated 256-entry sigmoid table), RSQRT, and QUANTIZE between int8 and
 *     int16 (either way) or int16 -> int16.
 * Parameters from nsconv.quant.params (conv_params_s16, add_params_s16, mul_params_s16,
 * mean_params, leaky_relu_params, unary_params_s16, rsqrt_params, requantize_params); the
 * structs are those of nsn_nn_types.h / nsn_nnfunctions_conv.h where the fields are the same.
 * Same status and scratch conventions as nsn_nnfunctions.h.
 */
#ifndef NSN_NNFUNCTIONS_S16_H
#define NSN_NNFUNCTIONS_S16_H

#include <stdint.h>

#include "nsn_nnfunctions_conv.h"

#ifdef __cplusplus
extern "C" {
#endif

/* TFLM MultiplyByQuantizedMultiplier(int64 x, M, shift) of the 16x8 ops: multiplier reduced
 * to (M + 2^15) >> 16 (0x7FFF from 0x7FFF0000 up), x * reduced + 2^(14 - shift), shifted right
 * by 15 - shift, truncated to int32. -48 <= shift <= 14 (TFLM: -31 .. 7). */
static inline int32_t nsn_requantize_s64(int64_t acc, int32_t multiplier, int32_t shift)
{
    const int32_t reduced = multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF;
    const int32_t total = 15 - shift;
    const uint64_t prod = (uint64_t)acc * (uint64_t)(int64_t)reduced; /* wraps like TFLM */
    const int64_t rounded = (int64_t)(prod + (UINT64_C(1) << (total - 1)));
    return (int32_t)(uint32_t)(uint64_t)(rounded >> total);
}

/* 16x8 CONV_2D: as nsn_conv_s8 with int16 input / output, int64 bias (or NULL); the params'
 * offsets must be 0 (int16 zero points), the activation range int16's. */
nsn_status nsn_conv_s16(const nsn_context *ctx,
                        const nsn_conv_params *params,
                        const nsn_per_channel_quant_params *quant,
                        const nsn_conv_dims *dims,
                        const int16_t *input,
                        const int8_t *filter,
                        const int64_t *bias,
                        int16_t *output);
int32_t nsn_conv_s16_get_buffer_size(const nsn_conv_dims *dims);
int32_t nsn_conv_s16_get_buffer_size_dsp(const nsn_conv_dims *dims);
int32_t nsn_conv_s16_get_buffer_size_mve(const nsn_conv_dims *dims);
int32_t nsn_conv_s16_get_buffer_size_ref(const nsn_conv_dims *dims);

/* 16x8 DEPTHWISE_CONV_2D (no scratch). */
nsn_status nsn_depthwise_conv_s16(const nsn_context *ctx,
                                  const nsn_conv_params *params,
                                  const nsn_per_channel_quant_params *quant,
                                  const nsn_conv_dims *dims,
                                  const int16_t *input,
                                  const int8_t *filter,
                                  const int64_t *bias,
                                  int16_t *output);

/* 16x8 FULLY_CONNECTED, one input vector (no scratch; offsets 0). A batch of vectors is a
 * 1x1 nsn_conv_s16 over a [1][batch][in] image (the optimized paths block its rows). */
nsn_status nsn_fully_connected_s16(const nsn_context *ctx,
                                   const nsn_fc_params *params,
                                   const nsn_per_channel_quant_params *quant,
                                   const nsn_fc_dims *dims,
                                   const int16_t *input,
                                   const int8_t *weights,
                                   const int64_t *bias,
                                   int16_t *output);

/* int16 ADD / SUB / MUL: nsn_add_params (left_shift 15) / nsn_mul_params; size1 == size2 or
 * one of them 1 (broadcast). */
nsn_status nsn_elementwise_add_s16(const nsn_add_params *p, const int16_t *input1, int32_t size1,
                                   const int16_t *input2, int32_t size2, int16_t *output);
nsn_status nsn_elementwise_sub_s16(const nsn_add_params *p, const int16_t *input1, int32_t size1,
                                   const int16_t *input2, int32_t size2, int16_t *output);
nsn_status nsn_elementwise_mul_s16(const nsn_mul_params *p, const int16_t *input1, int32_t size1,
                                   const int16_t *input2, int32_t size2, int16_t *output);

/* QUANTIZE (TFLM Requantize): int8 -> int16, int16 -> int8, int16 -> int16. */
nsn_status nsn_requantize_s8_s16(const nsn_requantize_params *p, const int8_t *input, int32_t size,
                                 int16_t *output);
nsn_status nsn_requantize_s16_s8(const nsn_requantize_params *p, const int16_t *input,
                                 int32_t size, int8_t *output);
nsn_status nsn_requantize_s16(const nsn_requantize_params *p, const int16_t *input, int32_t size,
                              int16_t *output);

/* MEAN, int16 (nsn_mean_s8's layout and parameters). */
nsn_status nsn_mean_s16(const nsn_mean_params *params, int32_t outer, int32_t count,
                        int32_t inner, const int16_t *input, int16_t *output);

/* LEAKY_RELU (reference_ops::QuantizeLeakyRelu): v = x - input_zero_point;
 * out = output_zero_point + requantize(v, v >= 0 ? identity : alpha), clamped to the type. */
typedef struct
{
    int32_t input_zero_point; /* + zero point (subtracted) */
    int32_t output_zero_point;
    int32_t multiplier_alpha;
    int32_t shift_alpha;
    int32_t multiplier_identity;
    int32_t shift_identity;
} nsn_leaky_relu_params;
nsn_status nsn_leaky_relu_s8(const nsn_leaky_relu_params *p, const int8_t *input, int32_t size,
                             int8_t *output);
nsn_status nsn_leaky_relu_s16(const nsn_leaky_relu_params *p, const int16_t *input, int32_t size,
                              int16_t *output);

/* int16 LOGISTIC and TANH (zero points 0, output scale 2^-15): input_multiplier 0 selects
 * TFLM's power-of-two path. */
typedef struct
{
    int32_t input_multiplier;
    int32_t input_left_shift;
} nsn_unary_s16_params;
nsn_status nsn_logistic_s16(const nsn_unary_s16_params *p, const int16_t *input, int32_t size,
                            int16_t *output);
nsn_status nsn_tanh_s16(const nsn_unary_s16_params *p, const int16_t *input, int32_t size,
                        int16_t *output);

/* RSQRT (elementwise.cc): inputs below the zero point are undefined in TFLM (it refuses
 * them); here they give the largest output, as a zero input does. For int8, a 256-entry
 * table from nsconv.quant.refops.rsqrt with nsn_lut_s8 is exact and cheaper. */
typedef struct
{
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t multiplier;
    int32_t shift;
} nsn_rsqrt_params;
nsn_status nsn_rsqrt_s16(const nsn_rsqrt_params *p, const int16_t *input, int32_t size,
                         int16_t *output);

#ifdef __cplusplus
}
#endif

#endif /* NSN_NNFUNCTIONS_S16_H */
