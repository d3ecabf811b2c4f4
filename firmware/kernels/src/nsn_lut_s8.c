/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Table lookup for int8 unary ops. LOGISTIC and TANH have only 256 possible int8 inputs, so the
 * host (nsconv.qmath) tabulates TFLM's fixed-point kernels and the target only indexes.
 */
#include "nsn_nnfunctions.h"

#include <stddef.h>

nsn_status nsn_lut_s8(const int8_t table[256], const int8_t *input, int32_t size, int8_t *output)
{
    int32_t i;
    if (table == NULL || input == NULL || output == NULL || size < 0)
    {
        return NSN_ARG_ERROR;
    }
    for (i = 0; i < size; ++i)
    {
        output[i] = table[(uint8_t)input[i]];
    }
    return NSN_OK;
}
