# SPDX-License-Identifier: Apache-2.0
"""Static memory plan of the merged early-exit graph (stage "plan").

Time line: merged op k runs at time 2k; the end of exit e (state write-back and mask copy) at
time 2*last_op(e) + 1. A value lives from the op that writes it to its last reader, op or exit
end. Values whose lifetimes overlap get disjoint arena bytes; offsets are assigned greedily,
largest value first, at the lowest aligned offset that fits.

Why one plan serves every exit: a step for exit e runs a subsequence of the merged schedule
(ops whose exit set holds e) and stops at e's end. Every value e reads is written by one of its
own ops, and any value written in between lives across that write in the global time line too,
so the two were given disjoint bytes. `check_plan` verifies this per exit on the exit's own op
sequence.

Storage: the features are read in place from the caller's frame; GRU states have their own
persistent buffers (in the state input's quantization, see codegen's state rule); a RESHAPE
output aliases its input. Everything else lives in the arena.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from nsconv.compiler.graph_merge import MergedGraph, ValueKind
from nsconv.compiler.tflite_ir import OpKind


class Storage(enum.Enum):
    ARENA = "arena"
    FEATURES = "features"
    STATE = "state"


@dataclass(frozen=True)
class Placement:
    value: int
    storage: Storage
    offset: int  # bytes into the arena (ARENA); 0 otherwise
    size: int
    state: str | None  # layer, for STATE storage
    start: int  # first time it is live (write)
    end: int  # last time it is live (read)
    alias_of: int | None = None  # value whose bytes it shares (RESHAPE)


@dataclass(frozen=True)
class MemoryPlan:
    placements: tuple[Placement, ...]  # indexed by value id
    arena_bytes: int
    state_bytes: int
    scratch_bytes: int
    alignment: int
    unshared_arena_bytes: int  # what the arena would need without any reuse

    def summary(self) -> str:
        return (f"memory plan: arena {self.arena_bytes:,} bytes (no reuse: "
                f"{self.unshared_arena_bytes:,}), states {self.state_bytes:,} bytes, scratch "
                f"{self.scratch_bytes:,} bytes")


def op_time(op_id: int) -> int:
    return 2 * op_id


def exit_end_time(merged: MergedGraph, exit_index: int) -> int:
    return 2 * max(merged.exits[exit_index].ops) + 1


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def plan(merged: MergedGraph, alignment: int = 4, scratch_bytes: int = 0) -> MemoryPlan:
    """scratch_bytes: the largest kernel scratch need (0 when the kernels need none)."""
    n = len(merged.values)
    start = [0] * n
    end = [0] * n
    alias: list[int | None] = [None] * n
    for op in merged.ops:
        t = op_time(op.id)
        for o in op.outputs:
            start[o] = end[o] = t
        if op.kind is OpKind.RESHAPE:
            alias[op.outputs[0]] = op.inputs[0].value
        for x in op.inputs:
            if x.value >= 0:
                end[x.value] = max(end[x.value], t)
    for e in merged.exits:
        t = exit_end_time(merged, e.index)
        for v in [e.mask] + [u.value for u in e.updates]:
            end[v] = max(end[v], t)

    def root(v: int) -> int:
        while alias[v] is not None:
            v = alias[v]
        return v

    # an alias group's lifetime is the union of its members' lifetimes
    g_start = list(start)
    g_end = list(end)
    for v in range(n):
        r = root(v)
        if r != v:
            g_start[r] = min(g_start[r], start[v])
            g_end[r] = max(g_end[r], end[v])

    offsets: dict[int, int] = {}
    roots = [v for v in range(n) if root(v) == v
             and merged.values[v].kind is ValueKind.ACTIVATION]
    roots.sort(key=lambda v: (-merged.values[v].size, g_start[v], v))
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, start, end)
    for v in roots:
        size = merged.values[v].size
        busy = sorted((o, o + s) for o, s, a, b in placed
                      if not (b < g_start[v] or g_end[v] < a))
        off = 0
        for lo, hi in busy:
            if off + size <= lo:
                break
            off = max(off, _align(hi, alignment))
        offsets[v] = off
        placed.append((off, size, g_start[v], g_end[v]))
    arena = max((o + s for o, s, _, _ in placed), default=0)
    arena = _align(arena, alignment)

    placements = []
    for v in range(n):
        val = merged.values[v]
        r = root(v)
        rv = merged.values[r]
        if rv.kind is ValueKind.FEATURES:
            storage, off, state = Storage.FEATURES, 0, None
        elif rv.kind is ValueKind.STATE:
            storage, off, state = Storage.STATE, 0, rv.state
        else:
            storage, off, state = Storage.ARENA, offsets[r], None
        placements.append(Placement(v, storage, off, val.size, state, start[v], end[v],
                                    None if r == v else r))
    state_bytes = sum(s.size for s in merged.states)
    unshared = sum(_align(merged.values[v].size, alignment) for v in roots)
    result = MemoryPlan(tuple(placements), arena, state_bytes, scratch_bytes, alignment,
                        unshared)
    check_plan(merged, result)
    return result


def _arena_range(mp: MemoryPlan, v: int) -> range | None:
    """The arena bytes holding value v (its alias root's), None outside the arena."""
    p = mp.placements[v]
    if p.storage is not Storage.ARENA:
        return None
    root = mp.placements[p.alias_of] if p.alias_of is not None else p
    return range(root.offset, root.offset + root.size)


def _check_read(mp: MemoryPlan, owner: dict[int, int], v: int, where: str) -> None:
    r = _arena_range(mp, v)
    if r is None:
        return
    p = mp.placements[v]
    want = p.alias_of if p.alias_of is not None else v
    for b in r:
        assert owner.get(b) == want, (
            f"{where} reads value {v} but arena byte {b} holds value {owner.get(b)}")


def check_plan(merged: MergedGraph, mp: MemoryPlan) -> None:
    """Replay every exit's own op sequence; raise AssertionError if a value it reads was
    overwritten since it was written, if an op writes over its own input, or if any arena
    access falls outside the arena."""
    for p in mp.placements:
        if p.storage is Storage.ARENA:
            assert 0 <= p.offset and p.offset + p.size <= mp.arena_bytes, p
    for e in merged.exits:
        owner: dict[int, int] = {}  # arena byte -> value last written there
        for op_id in e.ops:
            op = merged.ops[op_id]
            assert e.index in op.exits
            for x in op.inputs:
                if x.value >= 0:
                    _check_read(mp, owner, x.value, f"exit {e.name}, op {op_id}")
            if op.kind is OpKind.RESHAPE:
                continue  # an alias: writes nothing
            ins = [_arena_range(mp, x.value) for x in op.inputs if x.value >= 0]
            for o_val in op.outputs:
                o = _arena_range(mp, o_val)
                if o is None:
                    continue
                for i in ins:
                    assert i is None or not set(o) & set(i), (
                        f"exit {e.name}, op {op_id} writes over its own input")
                for b in o:
                    owner[b] = o_val
        for v in [e.mask] + [u.value for u in e.updates]:
            _check_read(mp, owner, v, f"exit {e.name}, end of step")


def plan_intervals(items: list[tuple[int, int, int]], alignment: int = 4
                   ) -> tuple[list[int], int]:
    """Arena offsets for buffers given as (bytes, first step, last step), any element type:
    buffers whose step ranges overlap get disjoint bytes; greedy, largest first, lowest
    aligned offset that fits (the rule of `plan`). Returns (offsets, arena bytes); checks the
    result."""
    order = sorted(range(len(items)), key=lambda i: (-items[i][0], items[i][1], i))
    offsets = [0] * len(items)
    placed: list[tuple[int, int, int, int]] = []
    for i in order:
        size, start, end = items[i]
        busy = sorted((o, o + s) for o, s, a, b in placed if not (b < start or end < a))
        off = 0
        for lo, hi in busy:
            if off + size <= lo:
                break
            off = max(off, _align(hi, alignment))
        offsets[i] = off
        placed.append((off, size, start, end))
    arena = _align(max((o + s for o, s, _, _ in placed), default=0), alignment)
    for i, (size, start, end) in enumerate(items):
        for j in range(i):
            s2, a2, b2 = items[j]
            if not (b2 < start or end < a2) and size and s2:
                assert (offsets[i] + size <= offsets[j] or offsets[j] + s2 <= offsets[i]), (
                    f"buffers {i} and {j} overlap in time and in the arena")
    return offsets, arena
