/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nsconv kernels for convolutional models (GTCRN, issue 14): CONV_2D (pointwise, full,
 * grouped), DEPTHWISE_CONV_2D (any depth multiplier, dilation) and MEAN, int8, bit-exact with
 * the TensorFlow Lite Micro reference kernels (reference_integer_ops::ConvPerChannel,
 * DepthwiseConvPerChannel, reference_ops::QuantizedMeanOrSum).
 *
 * Same conventions as nsn_nnfunctions.h (included here): CMSIS-NN offsets (input_offset is the
 * negated input zero point), TFLM multiplier/shift pairs from nsconv.quant.params, NSN_OK or
 * an error status that leaves the output unwritten, scratch in an nsn_context sized by the
 * *_get_buffer_size functions of the path built (4-byte aligned; short, missing or misaligned
 * scratch -> NSN_SCRATCH_ERROR on every path), portable / DSP / MVE paths with the same bits.
 *
 * Tensors are one image (batch 1) in TFLite's layouts, unchanged:
 *   input  [input_h][input_w][input_c]      (NHWC)
 *   output [output_h][output_w][output_c]
 *   CONV_2D filter    [output_c][filter_h][filter_w][input_c / groups]
 *   DEPTHWISE filter  [filter_h][filter_w][output_c], output_c = input_c * depth multiplier
 *   bias int32 [output_c] or NULL
 * Geometry (output size, padding) as TFLM's Prepare computes it: nsconv.quant.params
 * conv_geometry. Taps outside the input contribute nothing (TFLM skips them), so a PAD by the
 * input zero point in front of a conv can be folded into pad_h / pad_w exactly.
 */
#ifndef NSN_NNFUNCTIONS_CONV_H
#define NSN_NNFUNCTIONS_CONV_H

#include <stdint.h>

#include "nsn_nnfunctions.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct
{
    int32_t input_offset;  /* -input zero point */
    int32_t output_offset; /* +output zero point */
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_h; /* padding before the first row / column (TFLM ComputePaddingWithOffset) */
    int32_t pad_w;
    int32_t dilation_h;
    int32_t dilation_w;
    int32_t activation_min;
    int32_t activation_max;
    /* int8 kernels: NULL, or a fused int8 unary op (a LEAKY_RELU that is the conv's only
     * reader): a 256-entry table in input order -128..127 applied to every output after its
     * clamp, out = activation[y + 128], so the conv writes that op's output. The 16x8 kernels
     * take NULL only. */
    const int8_t *activation;
} nsn_conv_params;

typedef struct
{
    int32_t input_h;
    int32_t input_w;
    int32_t input_c;
    int32_t filter_h;
    int32_t filter_w;
    int32_t output_h;
    int32_t output_w;
    int32_t output_c;
    int32_t groups; /* CONV_2D: input_c / filter input depth (1: full); DEPTHWISE: ignored */
} nsn_conv_dims;

/* The largest filter_h * filter_w * (input_c / groups) (CONV_2D) or filter_h * filter_w
 * (DEPTHWISE) a call takes: keeps every int32 sum exact, as for FULLY_CONNECTED. */
#define NSN_CONV_MAX_PATCH NSN_FC_MAX_INPUT_FEATURES

/* Scratch bytes of nsn_conv_s8. DSP: four output pixels' patches as int16 (im2col with the
 * input offset added), patch length rounded up to a multiple of 4. MVE: four patches as
 * int8 plus one int32 weight sum per output channel. Reference: none. */
#define NSN_CONV_PATCH(dims) ((dims)->filter_h * (dims)->filter_w * ((dims)->input_c / ((dims)->groups > 0 ? (dims)->groups : 1)))
int32_t nsn_conv_s8_get_buffer_size(const nsn_conv_dims *dims);
int32_t nsn_conv_s8_get_buffer_size_dsp(const nsn_conv_dims *dims);
int32_t nsn_conv_s8_get_buffer_size_mve(const nsn_conv_dims *dims);
int32_t nsn_conv_s8_get_buffer_size_ref(const nsn_conv_dims *dims);

/* CONV_2D, per-channel quantization (groups >= 1 dividing input_c and output_c):
 *   out[y][x][c] = clamp(requantize(bias[c] + sum_{ky,kx,i} w[c][ky][kx][i] *
 *                  (in[y*sh - ph + ky*dh][x*sw - pw + kx*dw][g*cin_g + i] + input_offset),
 *                  M[c], S[c]) + output_offset), g = c / (output_c / groups),
 * taps outside the input skipped. quant holds output_c multipliers and shifts. */
nsn_status nsn_conv_s8(const nsn_context *ctx,
                       const nsn_conv_params *params,
                       const nsn_per_channel_quant_params *quant,
                       const nsn_conv_dims *dims,
                       const int8_t *input,
                       const int8_t *filter,
                       const int32_t *bias,
                       int8_t *output);

/* Scratch bytes of nsn_depthwise_conv_s8. DSP, depth multiplier 1 with channels a multiple
 * of 4 and filter width 3: four channels' filter rows transposed to int16 plus their weight
 * pairs, 4 * filter_h * (8 + 2 * (round_up(output_w, 4) + 2)). Otherwise, and on the other
 * paths: none. */
int32_t nsn_depthwise_conv_s8_get_buffer_size(const nsn_conv_dims *dims);
int32_t nsn_depthwise_conv_s8_get_buffer_size_dsp(const nsn_conv_dims *dims);

/* DEPTHWISE_CONV_2D, per-channel quantization, depth multiplier output_c / input_c (>= 1):
 * output channel c reads input channel c / multiplier. Scratch as sized above (ctx may be
 * NULL when that is 0; a given one must still be aligned with size >= 0). */
nsn_status nsn_depthwise_conv_s8(const nsn_context *ctx,
                                 const nsn_conv_params *params,
                                 const nsn_per_channel_quant_params *quant,
                                 const nsn_conv_dims *dims,
                                 const int8_t *input,
                                 const int8_t *filter,
                                 const int32_t *bias,
                                 int8_t *output);

/* MEAN: multiplier and shift already include 1 / count (nsconv.quant.params.mean_params). */
typedef struct
{
    int32_t input_offset;  /* -input zero point */
    int32_t output_offset; /* +output zero point */
    int32_t multiplier;
    int32_t shift;
} nsn_mean_params;

/* MEAN over the middle axis of the input viewed as [outer][count][inner] (any contiguous
 * set of reduced axes of a row-major tensor is such a view): output [outer][inner]
 *   out = clamp(requantize(sum_k in[o][k][i] + input_offset * count, M, S) + output_offset).
 * count <= NSN_MEAN_MAX_COUNT keeps the int32 sum exact. */
#define NSN_MEAN_MAX_COUNT (1 << 23)
nsn_status nsn_mean_s8(const nsn_mean_params *params,
                       int32_t outer,
                       int32_t count,
                       int32_t inner,
                       const int8_t *input,
                       int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* NSN_NNFUNCTIONS_CONV_H */
