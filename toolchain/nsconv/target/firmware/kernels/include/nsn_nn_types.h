/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Types of the nsconv int8 kernel library (CMSIS-NN-shaped API).
 *
 * Offsets follow CMSIS-NN: an input offset is the NEGATED input zero point, an output offset is
 * the output zero point as is. Multipliers and shifts are TFLM's QuantizeMultiplier pairs
 * (real = multiplier * 2^(shift - 31), multiplier in [2^30, 2^31) or 0, shift in [-31, 31]),
 * computed on the host by nsconv.quant.params.
 */
#ifndef NSN_NN_TYPES_H
#define NSN_NN_TYPES_H

#include <stdint.h>

typedef enum
{
    NSN_OK = 0,
    NSN_ARG_ERROR = -1
} nsn_status;

/* Scratch memory for a kernel call (CMSIS-NN cmsis_nn_context). */
typedef struct
{
    void *buf;    /* 4-byte aligned; may be NULL when the kernel needs no scratch */
    int32_t size; /* bytes */
} nsn_context;

typedef struct
{
    int32_t input_offset;   /* -input zero point */
    int32_t output_offset;  /* +output zero point */
    int32_t activation_min; /* fused activation range, in output units */
    int32_t activation_max;
} nsn_fc_params;

typedef struct
{
    const int32_t *multiplier; /* one per output feature */
    const int32_t *shift;      /* one per output feature */
} nsn_per_channel_quant_params;

typedef struct
{
    int32_t input_features;
    int32_t output_features;
} nsn_fc_dims;

/* ADD and SUB: each input is offset, shifted left by left_shift (20 for int8), rescaled by its
 * own multiplier; the sum (or difference) is rescaled by the output multiplier. */
typedef struct
{
    int32_t input1_offset;
    int32_t input1_multiplier;
    int32_t input1_shift;
    int32_t input2_offset;
    int32_t input2_multiplier;
    int32_t input2_shift;
    int32_t left_shift;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t activation_min;
    int32_t activation_max;
} nsn_add_params;

typedef struct
{
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t activation_min;
    int32_t activation_max;
} nsn_mul_params;

/* int8 -> int8 QUANTIZE (a change of scale and zero point). */
typedef struct
{
    int32_t input_offset;  /* -input zero point */
    int32_t output_offset; /* +output zero point */
    int32_t multiplier;
    int32_t shift;
} nsn_requantize_params;

#endif /* NSN_NN_TYPES_H */
