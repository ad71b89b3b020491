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
from the producer and the columns from the readers. Removing columns can make a row
all-zero and so constant: the pass repeats until nothing changes. Readers it cannot see
through (residual adds, concat, label select, several readers of which one cannot
absorb) keep the channel; `removed` on each layer says what went and why.
"""
from __future__ import annotations

import copy

import numpy as np

from ..datatypes import DataType
from ..layers import MVAU, MaxPool, SlidingWindow, SumPool, Thresholding
from ..layers.thresholding import apply_thresholds
from .chain import ChainOp
from .streams import insert_duplicates
from .widths import minimize_widths, mvau_acc_range

F32_EXACT = 1 << 24


def _readers(design, name):
    return [v for v in design.graph.successors(name)]


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


class _Plan:
    """What removing one channel of one producer does to the layers downstream."""

    def __init__(self):
        self.drop_channel: dict[str, list] = {}     # pass-through layer -> channels
        self.drop_cols: dict[str, list] = {}        # MVAU -> columns
        self.shift: dict[str, np.ndarray] = {}      # MVAU -> per-row accumulator shift
        self.drop_swg: dict[str, list] = {}         # sliding window -> channels

    def merge(self, other: "_Plan") -> None:
        for mine, theirs in ((self.drop_channel, other.drop_channel),
                             (self.drop_cols, other.drop_cols), (self.drop_swg, other.drop_swg)):
            for k, v in theirs.items():
                mine.setdefault(k, []).extend(v)
        for k, v in other.shift.items():
            self.shift[k] = self.shift.get(k, 0) + v


def _cols_of(reader: MVAU, shape: tuple, c: int) -> np.ndarray:
    """Columns of a fully connected reader that hold channel c of a (..., C) stream."""
    nch = shape[-1]
    k = np.arange(reader.mw)
    return k[k % nch == c]


def _absorb_const(design, reader_name: str, prod_shape: tuple, c: int, v: int | None):
    """A plan for reader to absorb channel c (constant value v; None = an unread channel,
    which the reader must not read at all), or None if it cannot."""
    r = design.layer(reader_name)
    plan = _Plan()
    if isinstance(r, MVAU) and r.in_shape == (int(np.prod(prod_shape)),) and len(r.in_shape) == 1:
        cols = _cols_of(r, prod_shape, c)
        return _mvau_plan(design, r, cols, v, plan)
    if isinstance(r, SlidingWindow):
        mv = [design.layer(n) for n in _readers(design, reader_name)]
        if len(mv) != 1 or not isinstance(mv[0], MVAU):
            return None
        if v is not None and any(r.pads) and v != r.pad_value:
            return None
        nch = r.channels
        cols = np.array([k * nch + c for k in range(r.kernel[0] * r.kernel[1])])
        plan.drop_swg[r.name] = [c]
        return _mvau_plan(design, mv[0], cols, v, plan)
    if isinstance(r, (MaxPool, Thresholding)) and not isinstance(r, SumPool):
        if isinstance(r, Thresholding):
            if v is not None:
                x = np.full((1, r.channels), v, np.int64)
                x[0, c] = -v if r.negate is not None and r.negate[c] else v
                v = int(apply_thresholds(x, r.thresholds, r.odt)[0, c])
        plan.drop_channel[r.name] = [c]
        for rr in _readers(design, r.name):
            sub = _absorb_const(design, rr, r.out_shape, c, v)
            if sub is None:
                return None
            plan.merge(sub)
        return plan
    return None


def _mvau_plan(design, r: MVAU, cols: np.ndarray, v: int | None, plan: _Plan):
    w = r.weights[:, cols]
    if v is None:                      # unread: only if the reader ignores it already
        if r.binary or np.any(w != 0):
            return None
        plan.drop_cols[r.name] = list(cols)
        return plan
    shift = (w == v).sum(1) if r.binary else (w * v).sum(1)
    if r.thresholds is None:
        if _readers(design, r.name):   # a raw accumulator read in hardware (label select)
            if np.any(shift != 0):
                return None
        lo, hi = mvau_acc_range(r.weights, r.idt, r.binary)
        if max(abs(int(lo.min())), abs(int(hi.max()))) >= F32_EXACT:
            return None
    plan.drop_cols[r.name] = list(cols)
    plan.shift[r.name] = shift.astype(np.int64)
    return plan


def _keep(arr, drop, axis=0):
    if arr is None:
        return None
    mask = np.ones(arr.shape[axis], bool)
    mask[list(drop)] = False
    return np.compress(mask, arr, axis=axis)


def _note(layer, key: str, n: int) -> None:
    rec = layer.__dict__.setdefault("removed", {})
    rec[key] = rec.get(key, 0) + n


def _apply(design, plan: _Plan) -> None:
    for name, cols in plan.drop_cols.items():
        r = design.layer(name)
        shift = plan.shift.get(name)
        if shift is not None and np.any(shift != 0):
            if r.thresholds is not None:
                r.thresholds = r.thresholds - shift[:, None]
            else:
                _shift_host_output(design, r, shift)
            if r.real_of_acc is not None:   # real = mul * (acc' + shift) + add
                mul, add = r.real_of_acc
                r.real_of_acc = (mul, add + mul * shift)
        r.weights = _keep(r.weights, cols, axis=1)
        r.in_shape = tuple(r.in_shape[:-1]) + (r.mw,)
        _note(r, "input_columns", len(set(cols)))
    for name, chans in plan.drop_swg.items():
        s = design.layer(name)
        c = s.channels - len(set(chans))
        s.in_shape = tuple(s.in_shape[:-1]) + (c,)
        s.out_shape = tuple(s.out_shape[:-1]) + (s.kernel[0] * s.kernel[1] * c,)
    for name, chans in plan.drop_channel.items():
        layer = design.layer(name)
        if isinstance(layer, Thresholding):
            layer.thresholds = _keep(layer.thresholds, chans)
            layer.negate = _keep(layer.negate, chans)
        c = layer.in_shape[-1] - len(set(chans))
        layer.in_shape = tuple(layer.in_shape[:-1]) + (c,)
        layer.out_shape = tuple(layer.out_shape[:-1]) + (c,)


def _shift_host_output(design, r: MVAU, shift: np.ndarray) -> None:
    """The last layer's accumulator drops `shift`: add it back on the host, as an exact
    integer add (|acc| < 2^24, so float32 holds it) before the output scale."""
    st = design.output_stage
    off = shift[st.gather % r.mh].reshape(st.shape).astype(np.float64)
    st.chain = [ChainOp("affine", (np.ones(st.shape), off), "prune")] + list(st.chain)


def _drop_rows(layer, rows: list, why: str) -> None:
    n = layer.out_shape[-1]
    if isinstance(layer, MVAU):
        layer.weights = _keep(layer.weights, rows)
        layer.thresholds = _keep(layer.thresholds, rows)
        layer.negated = _keep(layer.negated, rows)
        if layer.real_of_acc is not None:
            layer.real_of_acc = tuple(_keep(np.broadcast_to(p, (n,)), rows)
                                      for p in layer.real_of_acc)
        if why == "constant":
            layer.const_channels = max(0, layer.const_channels - len(rows))
    else:
        layer.thresholds = _keep(layer.thresholds, rows)
        layer.negate = _keep(layer.negate, rows)
        layer.in_shape = tuple(layer.in_shape[:-1]) + (n - len(rows),)
    layer.out_shape = tuple(layer.out_shape[:-1]) + (n - len(rows),)
    _note(layer, f"{why}_channels", len(rows))


def _try_channel(design, layer, c: int, v: int | None):
    readers = _readers(design, layer.name)
    if not readers:
        return None
    plan = _Plan()
    for r in readers:
        sub = _absorb_const(design, r, layer.out_shape, c, v)
        if sub is None:
            return None
        plan.merge(sub)
    return plan


def _unread_rows(design, layer) -> list[int]:
    if not isinstance(layer, (MVAU, Thresholding)) or not _readers(design, layer.name):
        return []
    return [c for c in range(layer.out_shape[-1])
            if _try_channel(design, layer, c, None) is not None]


def _step(design) -> bool:
    """Remove every removable channel of one producer; True if anything changed."""
    for layer in design.layers():
        if not isinstance(layer, (MVAU, Thresholding)):
            continue
        if layer.out_shape[-1] <= 1:
            continue
        consts = _constant_rows(layer)
        for why, cands in (("constant", consts), ("unread", None)):
            rows, plan = [], _Plan()
            items = consts.items() if cands is not None else \
                ((c, None) for c in _unread_rows(design, layer))
            for c, v in items:
                if len(rows) + 1 >= layer.out_shape[-1]:
                    break                      # a layer keeps at least one channel
                p = _try_channel(design, layer, c, v)
                if p is not None:
                    rows.append(c)
                    plan.merge(p)
            if rows:
                _apply(design, plan)
                _drop_rows(layer, rows, why)
                return True
    return False


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

