# SPDX-License-Identifier: Apache-2.0
"""Packed FULLY_CONNECTED weights: the 4-bit layout nsn_fully_connected_s4 reads, and the
block-sparse int8 layout of nsn_fully_connected_batch_s8 (`pack_fc_blocks`, at the end).

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


BLOCK_ALIGN = 4  # column ranges are rounded out to multiples of this (the DSP path's words)


def pack_fc_blocks(weights: np.ndarray, align: int = BLOCK_ALIGN
                   ) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """[out, in] int8 weights -> (blocks, packed) for nsn_fully_connected_batch_s8.

    Each output channel reads the columns from its first to its last non-zero weight, rounded
    out to multiples of `align` (clipped to the row); consecutive channels reading the same
    range form one block (out_count, in_start, in_count). An all-zero channel joins the block
    before it (or reads nothing when it comes first). `packed` is every channel's range,
    channel after channel: only weights that are zero by structure are left out, so the sums
    are those of the dense matmul, bit for bit (nsn_nnfunctions.h, nsn_fc_block)."""
    w = np.asarray(weights)
    if w.ndim != 2 or w.dtype != np.int8:
        raise ValueError(f"pack_fc_blocks: [out, in] int8 weights expected, got {w.dtype} "
                         f"{w.shape}")
    n_out, n_in = w.shape
    if n_in > 0xFFFF:
        raise ValueError(f"pack_fc_blocks: {n_in} inputs do not fit the uint16 block fields")
    ranges: list[tuple[int, int]] = []
    for row in w:
        nz = np.flatnonzero(row)
        if nz.size == 0:
            ranges.append(ranges[-1] if ranges else (0, 0))
            continue
        lo = int(nz[0]) // align * align
        hi = min(-(-(int(nz[-1]) + 1) // align) * align, n_in)
        ranges.append((lo, hi))
    blocks: list[tuple[int, int, int]] = []
    for lo, hi in ranges:
        if blocks and blocks[-1][1:] == (lo, hi - lo) and blocks[-1][0] < 0xFFFF:
            blocks[-1] = (blocks[-1][0] + 1, lo, hi - lo)
        else:
            blocks.append((1, lo, hi - lo))
    parts = [w[r, lo:hi] for r, (lo, hi) in enumerate(ranges)]
    packed = np.concatenate(parts) if parts else np.zeros(0, np.int8)
    return blocks, packed.astype(np.int8)


def unpack_fc_blocks(blocks: list[tuple[int, int, int]], packed: np.ndarray, n_in: int
                     ) -> np.ndarray:
    """The inverse of pack_fc_blocks: the dense [out, in] int8 weights."""
    rows, pos = [], 0
    for count, start, n in blocks:
        for _ in range(count):
            row = np.zeros(n_in, np.int8)
            row[start:start + n] = packed[pos:pos + n]
            rows.append(row)
            pos += n
    if pos != len(packed):
        raise ValueError(f"unpack_fc_blocks: {len(packed)} packed weights, blocks read {pos}")
    return np.stack(rows) if rows else np.zeros((0, n_in), np.int8)


def fc_records(blocks: list[tuple[int, int, int]], bias, multipliers, shifts, input_offset: int,
               output_offset: int) -> np.ndarray | None:
    """The nsn_fc_record of every output channel ([out, 4] int32: 2 * bias, multiplier, nudge,
    exponent), as nsn_fully_connected_batch_s8_prepare writes them; None where it refuses (a
    channel outside the bounds of the DSP path's requantization, nsn_nnfunctions.h)."""
    x_bound = 128 + abs(int(input_offset))
    if abs(int(input_offset)) > 1 << 16 or x_bound > 16383 or abs(int(output_offset)) > 256:
        return None
    rows, c = [], 0
    for count, _, n in blocks:
        bias_max = (1 << 30) - n * 128 * x_bound if n <= 511 else 0
        for _ in range(count):
            b = 0 if bias is None else int(bias[c])
            m, s = int(multipliers[c]), int(shifts[c])
            if m < 0 or not -21 <= s <= -1 or not -bias_max < b < bias_max:
                return None
            e = -s
            rows.append((2 * b, m, (1 << (e - 1)) + int(output_offset) * (1 << e), e))
            c += 1
    return np.asarray(rows, dtype=np.int32).reshape(-1, 4)
