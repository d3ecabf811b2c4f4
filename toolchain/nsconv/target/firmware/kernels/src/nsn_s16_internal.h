/* SPDX-License-Identifier: Apache-2.0 */
/* Private to firmware/kernels/src: what the int16 kernels share. */
#ifndef NSN_S16_INTERNAL_H
#define NSN_S16_INTERNAL_H

#include <stdint.h>

#include "nsn_nnfunctions_s16.h"

/* sigmoid(i / 24) in 0.16 (nsn_sigmoid_table_s16.c) */
extern const uint16_t nsn_sigmoid_table_u16[256];

#endif /* NSN_S16_INTERNAL_H */
