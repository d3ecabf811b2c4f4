/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The element-wise gate arithmetic of one GRU step as one call (nsn_gru_gates_s8).
 *
 * After its two hidden-state matmuls, a GRU step of GTCRN's int8 core is a chain of eight
 * small TFLite ops (nsconv.model.gtcrn_compact `_Ops.gru_gates`):
 *     s  = ADD(x_zr, h_zr)          [rows, 2H]
 *     g  = LOGISTIC(s); z, r = the two halves of each row of g (SPLIT)
 *     m  = MUL(r, h_n)              [rows, H]
 *     a  = ADD(x_n, m)
 *     n  = TANH(a)
 *     d  = SUB(h, n)
 *     q  = MUL(z, d)
 *     h' = ADD(n, q)
 * nsconv's code generator (compiler/ndcodegen.py `_fuse_gru_gates`) finds that chain and
 * calls this kernel instead of eight kernels. Per hidden unit it computes exactly the int8
 * value of every op in turn, each op with its own TFLM parameters (nsn_elementwise_add_s8 /
 * _sub_s8 / _mul_s8 arithmetic, LOGISTIC and TANH through their 256-entry tables as nsn_lut_s8),
 * so h' has the bits of the op-by-op chain; the intermediate tensors are not written.
 */
#ifndef NSN_NNFUNCTIONS_GRU_H
#define NSN_NNFUNCTIONS_GRU_H

#include <stdint.h>

#include "nsn_nn_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Each op's parameters with its operands in the order of the chain above (ADD and MUL
 * commute: the code generator swaps the operands' parameters where the model has them the
 * other way round). */
typedef struct
{
    nsn_add_params add_zr;  /* x_zr + h_zr */
    nsn_mul_params mul_r;   /* r * h_n */
    nsn_add_params add_n;   /* x_n + m */
    nsn_add_params sub_d;   /* h - n (SUB) */
    nsn_mul_params mul_z;   /* z * d */
    nsn_add_params add_h;   /* n + q */
    const int8_t *sigmoid;  /* LOGISTIC: s -> g, indexed by (uint8_t)s */
    const int8_t *tanh;     /* TANH: a -> n, indexed by (uint8_t)a */
    /* The DSP path's constants, or NULL (then the portable loop runs on a DSP core), computed
     * by the code generator (nsconv.compiler.ndcodegen.gru_dsp_constants) from the fields above,
     * so that no call pays for a set-up: NSN_GRU_DSP_CONSTANTS int32 values, in the order of
     * the fields above. Per ADD/SUB (7): the rounded input's rescaling (offset, multiplier,
     * nudge with the exact input's offset term folded in, exponent), then the output's
     * (multiplier, nudge, exponent); per MUL (5): input1_offset, 2 * input2_offset, the
     * output's multiplier, nudge and exponent; last, bit i set when the exact input (TFLM's
     * multiplier 0.5) of the i-th ADD/SUB is its input 2. Only for TFLM's int8 ADD/SUB scales
     * (left shift 20, multipliers below 1): the generator gives NULL otherwise. */
    const int32_t *dsp;
    int32_t hidden;         /* H >= 1 */
    int32_t z_offset;       /* where z starts in a row of 2H gates: 0 (r at H) or H (r at 0) */
} nsn_gru_gates_params;

#define NSN_GRU_DSP_CONSTANTS 39
/* The largest H of the DSP and MVE paths: they run the ops one by one over int8 buffers on
 * the stack, NSN_GRU_DSP_MAX_HIDDEN / H rows at a time; a larger H runs the portable loop. */
#define NSN_GRU_DSP_MAX_HIDDEN 64

/* rows x [2H] x_zr and h_zr, rows x [H] h_n, x_n and h -> rows x [H] h_out (row-major,
 * contiguous). h_out may be the same buffer as h or x_n (each unit is read before it is
 * written) but must not overlap any input otherwise. rows >= 1. */
nsn_status nsn_gru_gates_s8(const nsn_gru_gates_params *p,
                            int32_t rows,
                            const int8_t *x_zr,
                            const int8_t *h_zr,
                            const int8_t *h_n,
                            const int8_t *x_n,
                            const int8_t *h,
                            int8_t *h_out);

#ifdef __cplusplus
}
#endif

#endif /* NSN_NNFUNCTIONS_GRU_H */
