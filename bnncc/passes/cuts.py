"""Finding what one channel's removal takes (bnncc.passes.prune): the cut of linked
streams, its roots and leaves, the channel's value on each stream, and how each leaf
absorbs it (or how an add's readers absorb a constant operand folded into the add).
Pure look-ups: nothing here changes the design."""
from __future__ import annotations

import numpy as np

from ..ir import INPUT
from ..layers import MVAU, AddStreams, Concat, MaxPool, SlidingWindow, SumPool, Thresholding
from ..layers.thresholding import apply_thresholds
from .widths import mvau_acc_range

F32_EXACT = 1 << 24


def _cols_of(reader: MVAU, shape: tuple, c: int) -> np.ndarray:
    """Columns of a fully connected reader that hold channel c of a (..., C) stream."""
    k = np.arange(reader.mw)
    return k[k % shape[-1] == c]


def _constant_rows(layer) -> dict[int, int]:
    """Output channel -> its constant integer value, for channels no input changes."""
    if isinstance(layer, MVAU) and layer.thresholds is not None:
        lo, hi = mvau_acc_range(layer.weights, layer.idt, layer.binary)
    elif isinstance(layer, Thresholding):
        lo = np.full(layer.channels, layer.idt.min if not layer.idt.is_bipolar else -1)
        hi = np.full(layer.channels, layer.idt.max)
        if layer.negate is not None:
            lo, hi = np.where(layer.negate, -hi, lo), np.where(layer.negate, -lo, hi)
    else:
        return {}
    t = layer.thresholds
    const = np.all((t <= lo[:, None]) | (t > hi[:, None]), axis=1)
    vals = apply_thresholds(lo[None, :].astype(np.int64), t, layer.odt)[0]
    return {int(c): int(vals[c]) for c in np.flatnonzero(const)}


def _layer_of(design, name):
    return None if name == INPUT else design.layer(name)


def _concat_part(layer: Concat, c: int) -> tuple[int, int]:
    """Output channel c of a concat -> (input index, channel of that input)."""
    off = 0
    for i, n in enumerate(layer.channels):
        if c < off + n:
            return i, c - off
        off += n
    raise IndexError(c)


def _concat_offset(layer: Concat, i: int) -> int:
    return int(sum(layer.channels[:i]))


class _Cut:
    """One channel's removal: the streams that lose it (a set of (producer, channel)
    linked by channel-wise layers and joins), the MVAU rows that produce it (the roots)
    and the MVAU columns that read it (the leaves), with the channel's value on each
    stream (an int when it is constant, None when it is only unread)."""

    def __init__(self):
        self.items: list[tuple[str, int]] = []        # (producer, channel) streams
        self.leaves: list[tuple[str, list, tuple, str | None]] = []   # (mvau, cols, item, swg)
        self.value: dict[tuple[str, int], int | None] = {}
        self.folds: list[tuple[str, int, int, tuple]] = []   # (add, operand, out channel, item)


def _leaf_cols(design, reader: str, shape: tuple, c: int):
    """(MVAU, its columns, sliding window or None) that read channel c of a stream of
    `shape`, or None if the reader is no MVAU read directly or through a window."""
    r = design.layer(reader)
    if isinstance(r, MVAU):
        if tuple(r.in_shape) == (int(np.prod(shape)),):          # fully connected
            return r.name, list(_cols_of(r, shape, c)), None
        if tuple(r.in_shape) == tuple(shape) and r.border is None:   # pointwise
            return r.name, [c], None
        return None
    if isinstance(r, SlidingWindow) and not r.depthwise:
        mv = list(design.graph.successors(reader))
        if len(mv) != 1 or not isinstance(design.layer(mv[0]), MVAU):
            return None
        k = r.kernel[0] * r.kernel[1]
        return mv[0], [j * r.channels + c for j in range(k)], r.name
    return None


def _grow(design, readers: dict, seed: tuple, fold: bool = False) -> _Cut | None:
    """Every stream that must lose channel `seed[1]` with `seed[0]`'s stream: through
    channel-wise layers both ways, into both operands of an add (or, with `fold`, into
    the add as a constant operand: the add keeps the channel), into the one input of a
    concat that holds the channel. None if it reaches something that cannot lose a
    channel (the host's input or output, label select, a depthwise or pooled sum...)."""
    cut, todo, seen = _Cut(), [seed], set()
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        cut.items.append(item)
        name, c = item
        layer = _layer_of(design, name)
        # upward: who produces this channel
        if isinstance(layer, MVAU):
            pass
        elif isinstance(layer, (Thresholding, MaxPool)) and not isinstance(layer, SumPool):
            todo.append((design.inputs_of(name)[0], c))
        elif isinstance(layer, AddStreams):
            for i, p in enumerate(design.inputs_of(name)):
                j = layer.operand_channel(i, c)
                if j is not None:
                    todo.append((p, j))
        elif isinstance(layer, Concat):
            i, ci = _concat_part(layer, c)
            todo.append((design.inputs_of(name)[i], ci))
        else:
            return None
        if any(p == INPUT for p, _ in todo):
            return None
        # downward: who reads it
        rs = readers.get(name, [])
        if not rs:
            return None                 # the host reads this stream
        for r, i in rs:
            rl = design.layer(r)
            if isinstance(rl, AddStreams):
                co = rl.output_channel(i, c)
                if fold:
                    cut.folds.append((r, i, co, item))
                else:
                    todo.append((r, co))
            elif isinstance(rl, (Thresholding, MaxPool)) and not isinstance(rl, SumPool):
                todo.append((r, c))
            elif isinstance(rl, Concat):
                todo.append((r, _concat_offset(rl, i) + c))
            else:
                leaf = _leaf_cols(design, r, layer.out_shape, c)
                if leaf is None:
                    return None
                cut.leaves.append(leaf[:2] + (item, leaf[2]))
    if any((a, co) in seen for a, _, co, _ in cut.folds):
        return None                      # an add both folded and removed: not this way
    return cut


def _offset_leaves(design, readers: dict, name: str, c: int, off: int, out: list) -> bool:
    """Readers of channel c of `name`'s stream take the hardware value h = true - off:
    collect how each absorbs `off` (thresholds, MVAU rows through their columns; max
    pooling, concat and adds pass it on). False if some reader cannot."""
    rs = readers.get(name, [])
    if not rs or off == 0:
        return bool(rs)
    layer = design.layer(name)
    for r, i in rs:
        rl = design.layer(r)
        if isinstance(rl, Thresholding):
            out.append(("thr", r, c, off))
        elif isinstance(rl, MaxPool) and not isinstance(rl, SumPool):
            if not _offset_leaves(design, readers, r, c, off, out):
                return False
        elif isinstance(rl, Concat):
            if not _offset_leaves(design, readers, r, _concat_offset(rl, i) + c, off, out):
                return False
        elif isinstance(rl, AddStreams):
            co = rl.output_channel(i, c)
            k = rl.factors()[i][co]
            if not _offset_leaves(design, readers, r, co, int(k) * off, out):
                return False
        else:
            leaf = _leaf_cols(design, r, layer.out_shape, c)
            if leaf is None:
                return False
            mv, cols, swg = leaf
            m = design.layer(mv)
            if m.binary or (swg is not None and any(design.layer(swg).pads)):
                return False             # padded positions hold the pad code, unshifted
            shift = (m.weights[:, cols] * off).sum(1).astype(np.int64)
            if m.thresholds is None:
                if readers.get(mv) and np.any(shift != 0):
                    return False
                lo, hi = mvau_acc_range(m.weights, m.idt, m.binary)
                if max(abs(int(lo.min())), abs(int(hi.max()))) >= F32_EXACT:
                    return False
            out.append(("mvau", mv, None, shift))
    return True


def _fold_plan(design, cut: _Cut, readers: dict):
    """For a cut whose constant operand channels fold into adds: the offsets the adds'
    readers absorb (the add reads 0 where the operand was v, so its sum is ka*v lower),
    or None if some fold has no known constant or some reader cannot absorb it."""
    out: list = []
    for add, i, co, item in cut.folds:
        v = cut.value[item]
        if v is None:
            return None
        k = int(design.layer(add).factors()[i][co])
        if not _offset_leaves(design, readers, add, co, k * v, out):
            return None
    return out


def _values(design, cut: _Cut, order: dict, consts) -> None:
    """The channel's value on each stream of the cut, producers before readers."""
    for name, c in sorted(cut.items, key=lambda it: order[it[0]]):
        layer = design.layer(name)
        if isinstance(layer, MVAU):
            v = consts(name).get(c)
        elif isinstance(layer, Thresholding):
            vin = cut.value[(design.inputs_of(name)[0], c)]
            if vin is not None:
                x = np.full((1, layer.channels), 0, np.int64)
                x[0, c] = -vin if layer.negate is not None and layer.negate[c] else vin
                v = int(apply_thresholds(x, layer.thresholds, layer.odt)[0, c])
            else:
                v = consts(name).get(c)
        elif isinstance(layer, MaxPool):
            v = cut.value[(design.inputs_of(name)[0], c)]
        elif isinstance(layer, AddStreams):
            va, vb = (0 if layer.operand_channel(i, c) is None else
                      cut.value[(p, layer.operand_channel(i, c))]
                      for i, p in enumerate(design.inputs_of(name)))
            ka, kb = layer.factors()
            v = None if va is None or vb is None else int(ka[c] * va + kb[c] * vb)
        else:                            # Concat
            i, ci = _concat_part(layer, c)
            v = cut.value[(design.inputs_of(name)[i], ci)]
        cut.value[(name, c)] = v


def _leaf_shifts(design, cut: _Cut, readers: dict):
    """Per leaf MVAU, (columns, accumulator shift per row), or None if some leaf cannot
    absorb the channel exactly."""
    out: dict[str, tuple[list, np.ndarray]] = {}
    for mv, cols, item, swg in cut.leaves:
        r, v = design.layer(mv), cut.value[item]
        w = r.weights[:, cols]
        if v is None:                  # unread: only if the reader ignores it already
            if r.binary or np.any(w != 0):
                return None
            shift = np.zeros(r.mh, np.int64)
        else:
            if swg is not None:
                s = design.layer(swg)
                # padded positions hold the pad code, not v: a constant shift only when
                # they are equal (and no border class corrects a bipolar -1 padding)
                if any(s.pads) and (v != s.pad_value or r.border is not None):
                    return None
            shift = ((w == v).sum(1) if r.binary else (w * v).sum(1)).astype(np.int64)
            if r.thresholds is None:
                if readers.get(mv) and np.any(shift != 0):
                    return None        # a raw accumulator read in hardware (label select)
                lo, hi = mvau_acc_range(r.weights, r.idt, r.binary)
                if max(abs(int(lo.min())), abs(int(hi.max()))) >= F32_EXACT:
                    return None
        old = out.get(mv, ([], 0))
        out[mv] = (old[0] + list(cols), old[1] + shift)
    return out
