# SPDX-License-Identifier: Apache-2.0
"""Packed 4-bit FULLY_CONNECTED weights: the layout nsn_fully_connected_s4 reads.

Each row of `n` weights (values in [-8, 7]) is cut into chunks of 16, the last one padded with
zero weights; a chunk is 8 bytes, byte k (0..7) holding weight 16c + k in its low nibble as
w + 8 (offset binary) and weight 16c + 8 + k in its high nibble (two's complement): read as
int8, the byte is 16 * w[16c + 8 + k] + w[16c + k] + 8. The C side documents why
(firmware/kernels/include/nsn_nnfunctions.h, NSN_FC_S4_ROW_BYTES).
"""

from __future__ import annotations

import numpy as np

CHUNK = 16  # weights per 8-byte chunk
S4_MIN, S4_MAX = -8, 7


def row_bytes(n: int) -> int:
    """Bytes of one packed row of n weights (NSN_FC_S4_ROW_BYTES)."""
    return 8 * -(-n // CHUNK)


def pack_s4(weights: np.ndarray) -> np.ndarray:
    """[rows, n] int weights in [-8, 7] -> [rows, row_bytes(n)] int8, the packed layout."""
    w = np.asarray(weights)
    if w.ndim != 2:
        raise ValueError(f"pack_s4: 2-D weights expected, got shape {w.shape}")
    if w.size and (w.min() < S4_MIN or w.max() > S4_MAX):
        raise ValueError(f"pack_s4: weights outside [{S4_MIN}, {S4_MAX}]: "
                         f"[{int(w.min())}, {int(w.max())}]")
    rows, n = w.shape
    chunks = -(-n // CHUNK)
    padded = np.zeros((rows, chunks * CHUNK), np.int16)
    padded[:, :n] = w
    halves = padded.reshape(rows, chunks, 2, 8)
    lo, hi = halves[:, :, 0, :], halves[:, :, 1, :]
    byte = ((hi & 15) << 4) | ((lo + 8) & 15)
    return byte.astype(np.uint8).view(np.int8).reshape(rows, chunks * 8)


def unpack_s4(packed: np.ndarray, n: int) -> np.ndarray:
    """The inverse of pack_s4: [rows, row_bytes(n)] packed bytes -> [rows, n] int8 weights."""
    p = np.asarray(packed).view(np.uint8).astype(np.int16)
    rows = p.shape[0]
    chunks = p.reshape(rows, -1, 8)
    lo = (chunks & 15) - 8
    hi = ((chunks >> 4) ^ 8) - 8
    return np.stack([lo, hi], axis=2).reshape(rows, -1)[:, :n].astype(np.int8)
