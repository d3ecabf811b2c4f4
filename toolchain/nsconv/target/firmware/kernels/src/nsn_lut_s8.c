/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Table lookup for int8 unary ops. LOGISTIC and TANH have only 256 possible int8 inputs, so the
 * host (nsconv.quant.params) tabulates TFLM's fixed-point kernels and the target only indexes.
 *
 * MVE: VLDRB gather with byte offsets, 16 lookups per instruction, the tail predicated.
 * Elsewhere: four lookups per iteration (no per-element loop overhead).
 */
#include "nsn_nnfunctions.h"

#include <stddef.h>

#include "nsn_kernels_internal.h"

nsn_status nsn_lut_s8(const int8_t table[256], const int8_t *input, int32_t size, int8_t *output)
{
    int32_t i = 0;
    if (table == NULL || input == NULL || output == NULL || size < 0)
    {
        return NSN_ARG_ERROR;
    }
#if defined(NSN_KERNELS_MVE)
    {
        const uint8_t *index = (const uint8_t *)input;
        for (; i < size; i += 16)
        {
            const mve_pred16_t p = vctp8q((uint32_t)(size - i));
            const uint8x16_t offsets = vldrbq_z_u8(index + i, p);
            vstrbq_p_s8(output + i, vldrbq_gather_offset_z_s8(table, offsets, p), p);
        }
    }
#else
    for (; i + 4 <= size; i += 4)
    {
        output[i] = table[(uint8_t)input[i]];
        output[i + 1] = table[(uint8_t)input[i + 1]];
        output[i + 2] = table[(uint8_t)input[i + 2]];
        output[i + 3] = table[(uint8_t)input[i + 3]];
    }
    for (; i < size; ++i)
    {
        output[i] = table[(uint8_t)input[i]];
    }
#endif
    return NSN_OK;
}
