"""Remove channels that carry no information, exactly (self-compressing networks).

A channel of a layer's output is *constant* when no reachable input changes it: an MVAU
row whose thresholds no reachable accumulator crosses (a zero-bit weight channel whose
accumulator is always 0, BatchNorm gamma 0, a bias that saturates the quantizer), or a
standalone threshold channel with the same property. Its integer value v is known at
compile time, so the readers absorb it and the channel goes:

  * an integer MVAU reading v in columns J: acc = acc' + sum_J w[m, j] * v, so each of
    row m's thresholds T becomes T - sum_J w[m, j] * v (exact integers);
  * an XNOR-popcount MVAU: popcount = popcount' + #{j in J : w[m, j] == v}, the same shift;
  * a convolution reads the channel at every window position (its sliding window drops
    the channel too); with zero padding the padded positions hold the pad value, not v,
    so a padded window keeps the channel unless v is the pad value;
  * max pooling and standalone thresholding keep a constant constant: they drop the
    channel and pass the (pooled / thresholded) constant on to their readers;
  * a raw-accumulator MVAU (the last layer, read by the host) absorbs the shift into the
    host's output chain, as an exact integer add before the output scale.

A channel whose every reader has all-zero weights in its columns is *unread*: it goes
from the producer and the columns from the readers.

Joins link streams: a channel of a residual add's output is channel c of both operands,
and a channel of a concat is one channel of one input. So a removal is a *cut*
(bnncc.passes.cuts): every stream that must lose the channel together (through
channel-wise layers both ways, into both operands of an add, into the one concat input
that holds it), its roots (the MVAU rows producing it) and its leaves (the MVAU columns
reading it). The channel's value is followed down the cut: an add of two constants is
the constant ka*va + kb*vb, so a channel constant in both operands makes the sum
constant and it is absorbed after the add like any other; a channel the add's readers
ignore goes from the add and from both operands, whatever their values (cascading into
both producers); a concat passes its input's value on, so its readers absorb it at the
shifted column offset, and an unread concat channel goes from the input that holds it.

A channel constant (v) in one operand of an add only, where the other varies, cannot go
from the sum; it is *folded into the add* instead: the operand stops streaming that
channel (AddStreams.live), the add adds 0 there, and the add's readers absorb ka*v the
way constants are absorbed (thresholds shift; MVAU rows shift through their columns;
max pooling, concat and further adds pass the offset on). The add then reads an operand
word only where that operand streams it, so PE must keep every operand's words whole
(AddStreams.pe_channels): the price of the fold is fewer PE choices for the add. A cut
is first tried through the adds it meets, and folded only if that fails.

A cut goes only if every leaf absorbs it exactly and no stream of it is read by the
host or by a layer that cannot drop a channel (label select, depthwise, sum pooling,
the host input); each layer keeps one channel at least. Removing columns can make a row
all-zero and so constant: the pass repeats until nothing changes. `removed` on each
layer says what went and why (joins and channel-wise layers count what passed through
them: sum_constant_channels, folded_constant_channels on an add).

What stays, and why: a constant v != pad code read through a zero-padded window. The
padded positions contribute the pad code, so the shift depends on the output pixel's
border class. An integer window has no per-class accumulator start (only bipolar
windows carry a bnncc.layers.border.Border), and for a bipolar window the per-class
shift would have to join the border corrections (a per-row, per-class table that the
row removals of later steps would have to follow): not done, the channel stays (unread
columns do go: their weights are zero). The same holds for an offset folded into an add
whose output is read through a padded window.
"""
from __future__ import annotations

import copy
import dataclasses

import networkx as nx
import numpy as np

from ..datatypes import DataType
from ..layers import MVAU, AddStreams, Concat, SlidingWindow, Thresholding
from .chain import ChainOp
from .cuts import _concat_part, _constant_rows, _fold_plan, _grow, _leaf_shifts, _values  # noqa: F401
from .streams import insert_duplicates
from .widths import minimize_widths, mvau_acc_range



def _keep(arr, drop, axis=0):
    if arr is None:
        return None
    mask = np.ones(arr.shape[axis], bool)
    mask[list(drop)] = False
    return np.compress(mask, arr, axis=axis)


def _note(layer, key: str, n: int) -> None:
    rec = layer.__dict__.setdefault("removed", {})
    rec[key] = rec.get(key, 0) + n


def _with_channels(shape: tuple, c: int) -> tuple:
    return tuple(shape[:-1]) + (c,)


def _apply_leaves(design, shifts: dict) -> None:
    for name, (cols, shift) in shifts.items():
        shift = np.broadcast_to(np.asarray(shift, np.int64), (design.layer(name).mh,))
        r = design.layer(name)
        if np.any(shift != 0):
            if r.thresholds is not None:
                r.thresholds = r.thresholds - shift[:, None]
            else:
                _shift_host_output(design, r, shift)
            if r.real_of_acc is not None:   # real = mul * (acc' + shift) + add
                mul, add = r.real_of_acc
                r.real_of_acc = (mul, add + mul * shift)
        r.weights = _keep(r.weights, cols, axis=1)
        r.in_shape = _with_channels(r.in_shape, r.mw)
        if cols:
            _note(r, "input_columns", len(set(cols)))


def _apply_streams(design, drop: dict, why: dict) -> None:
    """Each producer in `drop` loses those output channels (`why`: producer -> channel ->
    value, None for unread); windows in front of MVAUs lose them too."""
    for name, chans in drop.items():
        layer, chans = design.layer(name), sorted(set(chans))
        n = layer.out_shape[-1] - len(chans)
        consts = sum(why[name][c] is not None for c in chans)
        if isinstance(layer, MVAU):
            _drop_rows(layer, chans, "constant", consts)
            _drop_rows(layer, [], "unread", len(chans) - consts)
            for r in design.graph.successors(name):
                _shrink_window(design, r, chans)
            continue
        if isinstance(layer, Thresholding):
            layer.thresholds = _keep(layer.thresholds, chans)
            layer.negate = _keep(layer.negate, chans)
        elif isinstance(layer, AddStreams):
            if layer.per_channel:
                layer.ka = tuple(k for i, k in enumerate(layer.ka) if i not in chans)
                layer.kb = tuple(k for i, k in enumerate(layer.kb) if i not in chans)
            layer.live = tuple(None if m is None else
                               tuple(x for i, x in enumerate(m) if i not in chans)
                               for m in layer.live)
        if isinstance(layer, Concat):
            parts = [_concat_part(layer, c)[0] for c in chans]
            layer.channels = tuple(k - parts.count(i) for i, k in enumerate(layer.channels))
            layer.in_shape = _with_channels(layer.in_shape, layer.channels[0])
        else:
            layer.in_shape = _with_channels(layer.in_shape, n)
        layer.out_shape = _with_channels(layer.out_shape, n)
        tag = {AddStreams: "sum", Concat: "concat"}.get(type(layer), "passed")
        if consts:
            _note(layer, f"{tag}_constant_channels", consts)
        if len(chans) > consts:
            _note(layer, f"{tag}_unread_channels", len(chans) - consts)
        for r in design.graph.successors(name):
            _shrink_window(design, r, chans)


def _shrink_window(design, reader: str, chans: list) -> None:
    """A sliding window reading a stream that lost `chans` loses them too (and the
    border classes of its MVAU count the channels left)."""
    s = design.layer(reader)
    if not isinstance(s, SlidingWindow):
        return
    c = s.channels - len(chans)
    s.in_shape = _with_channels(s.in_shape, c)
    s.out_shape = _with_channels(s.out_shape, s.kernel[0] * s.kernel[1] * c)
    for m in design.graph.successors(reader):
        mv = design.layer(m)
        if isinstance(mv, MVAU) and mv.border is not None:
            mv.border = dataclasses.replace(mv.border, channels=c)


def _shift_host_output(design, r: MVAU, shift: np.ndarray) -> None:
    """The last layer's accumulator drops `shift`: add it back on the host, as an exact
    integer add (|acc| < 2^24, so float32 holds it) before the output scale."""
    st = design.output_stage
    off = shift[st.gather % r.mh].reshape(st.shape).astype(np.float64)
    st.chain = [ChainOp("affine", (np.ones(st.shape), off), "prune")] + list(st.chain)


def _drop_rows(layer, rows: list, why: str, count: int | None = None) -> None:
    if rows:
        n = layer.out_shape[-1]
        layer.weights = _keep(layer.weights, rows)
        layer.thresholds = _keep(layer.thresholds, rows)
        layer.negated = _keep(layer.negated, rows)
        if layer.real_of_acc is not None:
            layer.real_of_acc = tuple(_keep(np.broadcast_to(p, (n,)), rows)
                                      for p in layer.real_of_acc)
        layer.out_shape = _with_channels(layer.out_shape, n - len(rows))
    count = len(rows) if count is None else count
    if count:
        if why == "constant":
            layer.const_channels = max(0, layer.const_channels - count)
        _note(layer, f"{why}_channels", count)


def _accept(design, readers, order, consts, seed, left):
    """The cut for `seed` that can go, removing the channel through adds if it can and
    else folding its constant operands into them: (cut, leaf shifts, offsets) or None."""
    for fold in (False, True):
        cut = _grow(design, readers, seed, fold)
        if cut is None or (fold and not cut.folds):
            continue
        per: dict = {}
        for n, _ in cut.items:
            per[n] = per.get(n, 0) + 1
        if any(left[n] - k < 1 for n, k in per.items()):
            continue                           # a stream keeps one channel at least
        _values(design, cut, order, consts)
        sh = _leaf_shifts(design, cut, readers)
        offs = _fold_plan(design, cut, readers) if sh is not None else None
        if sh is not None and offs is not None:
            return cut, per, sh, offs
    return None


def _step(design) -> bool:
    """Remove every channel that can go, each with everything linked to it, against
    one snapshot of the design; True if anything changed."""
    readers = {k: v for k, v in design.reader_map().items()}
    order = {n: i for i, n in enumerate(nx.topological_sort(design.graph))}
    cache: dict = {}
    consts = lambda n: cache.setdefault(n, _constant_rows(design.layer(n)))
    taken: set = set()
    left = {n: design.layer(n).out_shape[-1] for n in design.graph.nodes}
    drop: dict[str, list] = {}
    why: dict[str, dict] = {}
    shifts: dict = {}
    folds, thr_offsets = [], []
    for layer in design.layers():
        if not isinstance(layer, MVAU) or not readers.get(layer.name):
            continue
        for c in range(layer.mh):
            if (layer.name, c) in taken:
                continue
            got = _accept(design, readers, order, consts, (layer.name, c), left)
            if got is None:
                continue
            cut, per, sh, offs = got
            marks = set(cut.items) | {(a, co) for a, _, co, _ in cut.folds}
            if taken & marks:
                continue
            taken |= marks
            for n, k in per.items():
                left[n] -= k
            for n, ch in cut.items:
                drop.setdefault(n, []).append(ch)
                why.setdefault(n, {})[ch] = cut.value[(n, ch)]
            for mv, (cols, s_) in sh.items():
                old = shifts.get(mv, ([], 0))
                shifts[mv] = (old[0] + cols, old[1] + s_)
            for kind, name, ch, off in offs:
                if kind == "thr":
                    thr_offsets.append((name, ch, off))
                else:
                    old = shifts.get(name, ([], 0))
                    shifts[name] = (old[0], old[1] + off)
            folds += [(a, i, co) for a, i, co, _ in cut.folds]
    if not drop:
        return False
    _apply_folds(design, folds, thr_offsets)
    _apply_leaves(design, shifts)
    _apply_streams(design, drop, why)
    return True


def _apply_folds(design, folds: list, thr_offsets: list) -> None:
    """Adds stop reading the folded operand channels; thresholds after them absorb the
    constant (x_true = x_hw + off, so x >= T becomes x_hw >= T - off; -x >= T for a
    negated channel becomes -x_hw >= T + off)."""
    for add, i, co in folds:
        a = design.layer(add)
        live = [list(a.live_mask(k)) if a.live[k] is not None or k == i else None
                for k in (0, 1)]
        live[i][co] = False
        a.live = tuple(None if m is None else tuple(bool(x) for x in m) for m in live)
        _note(a, "folded_constant_channels", 1)
    for name, ch, off in thr_offsets:
        t = design.layer(name)
        neg = t.negate is not None and bool(t.negate[ch])
        t.thresholds = t.thresholds.copy()
        t.thresholds[ch] += off if neg else -off
        t.__dict__["_reclamp"] = True


def _clamp_thresholding(t: Thresholding) -> None:
    """Shifted thresholds into the reachable range of the input (plus one), so the
    threshold type stays narrow; the same answer on every reachable input."""
    lo = np.full(t.channels, t.idt.min if not t.idt.is_bipolar else -1)
    hi = np.full(t.channels, t.idt.max)
    if t.negate is not None:
        lo, hi = np.where(t.negate, -hi, lo), np.where(t.negate, -lo, hi)
    t.thresholds = np.clip(t.thresholds, lo[:, None], hi[:, None] + 1)
    t.tdt = DataType.for_range(int(t.thresholds.min(initial=0)), int(t.thresholds.max(initial=0)))


def self_compressing(design) -> bool:
    """Some quantizer has per-channel bit widths, or some MVAU channel only zero weights."""
    return design.per_channel_widths or any(
        isinstance(l, MVAU) and not l.binary and np.any(np.all(l.weights == 0, axis=1))
        for l in design.layers())


def prune_channels(design, mode: str = "auto"):
    """Remove constant and unread channels until none is left (mode "on"), only in
    self-compressing networks ("auto", the default: per-channel bit widths or zero-weight
    channels), or never ("off").

    "auto" leaves ordinary networks as they are: their constant channels (gamma 0) are
    few, and removing 2 of 64 channels leaves 62, whose folding choices (divisors) can
    cost more than the channels saved; `inspect` reports them as const_channels."""
    if mode == "off" or (mode == "auto" and not self_compressing(design)):
        return design
    before = {l.name: _weight_bits(l) for l in design.layers()}
    kept = copy.deepcopy(design)
    changed = False
    while _step(design):
        changed = True
    if changed:    # for `estimate`: what the design would cost with every channel kept
        design.uncompressed = minimize_widths(insert_duplicates(kept))
    for l in design.layers():
        if isinstance(l, Thresholding) and l.__dict__.pop("_reclamp", False):
            _clamp_thresholding(l)
        if isinstance(l, MVAU):
            _retype(l)
            _clamp_thresholds(l)
            rec = l.__dict__.get("removed")
            if rec is not None:
                rec["weight_bits_before"] = before[l.name]
                rec["weight_bits_after"] = _weight_bits(l)
    return design


def _weight_bits(layer) -> int:
    if not isinstance(layer, MVAU):
        return 0
    return int(layer.weights.size * (1 if layer.binary else layer.wdt.bits))


def _clamp_thresholds(layer: MVAU) -> None:
    """Thresholds into [lo, hi + 1] of the new accumulator range (the same answer on
    every reachable value: lo means always, hi + 1 never), so their type stays narrow."""
    if layer.thresholds is None:
        return
    lo, hi = mvau_acc_range(layer.weights, layer.idt, layer.binary)
    layer.thresholds = np.clip(layer.thresholds, lo[:, None], hi[:, None] + 1)
    layer.tdt = DataType.for_range(int(layer.thresholds.min(initial=0)),
                                   int(layer.thresholds.max(initial=0)))


def _retype(layer: MVAU) -> None:
    """The narrowest weight type of what is left (the widest remaining channel); bipolar
    weights on bipolar inputs become XNOR-popcount again (dot = 2 * popcount - MW)."""
    if layer.binary:
        return
    w = layer.weights
    if layer.idt.is_bipolar and w.size and np.all(np.abs(w) == 1):
        mw = layer.mw
        if layer.thresholds is not None:   # dot >= T  <=>  popcount >= ceil((T + MW) / 2)
            layer.thresholds = -((-(layer.thresholds + mw)) // 2)
            layer.binary, layer.wdt = True, DataType.bipolar()
            if layer.real_of_acc is not None:   # dot = 2 * popcount - MW
                mul, add = layer.real_of_acc
                layer.real_of_acc = (2 * mul, add - mw * mul)
            return
    layer.wdt = DataType.for_values(w) if w.size else layer.wdt

