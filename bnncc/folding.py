"""Folding: how many elements each layer handles per cycle (PE output lanes, SIMD input
lanes), the weight memory style of each MVAU, and the width converters that the chosen
widths require between layers.

The optimizer works on *units*: a sliding window and the MVAU it feeds form one unit
(they share SIMD, which must divide the channels; or, for narrow pixels, the window is
parallel, a whole window per cycle, and the MVAU takes any SIMD dividing MW behind a width
converter); every other layer is a unit of its own.
Each unit has a list of legal options (PE | MH, SIMD | MW, PE | channels, memory style),
each with its cycles per frame and its resources from the layer models (bnncc/layers,
calibrated against Yosys). For a target initiation interval T every unit takes its
cheapest option with cycles <= T; "cheapest" weighs each resource by its share of the
budget, and the weights of over-budget resources are raised until the selection fits.

- `fold_for_fps(design, board, clock_mhz, fps)`: the least resources meeting `fps`.
- `fold_max_fps(design, board, clock_mhz, budget)`: the smallest T (highest fps) whose
  selection fits the budget (default 70% LUT, 80% BRAM18; 80% FF, URAM, DSP).
- a per-layer configuration (`config`, a dict or JSON file) pins PE / SIMD / mem_style
  of named layers and may set the budget.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import networkx as nx
import numpy as np

from .boards import DEFAULT_BUDGET, budget_of  # noqa: F401  (re-exported)
from .errors import BnnccError
from .layers import (MVAU, VVAU, AddStreams, Concat, LabelSelect, SlidingWindow,  # noqa: F401
                     WidthConverter, in_elems, out_elems)
from .layers.cost import RES, fifo_resources
from .passes.fifos import FIFO_MIN_DEPTH, base_depth

# Shortest interval the optimizer aims for: one frame per cycle. Every RTL block streams
# one word per cycle on each port (credit-counted output FIFOs, pipelined adder trees),
# so the cycle model holds down to fully parallel layers (PE = MH, SIMD = MW); checked in
# Verilator by hw_tests/test_fullrate.py over intervals 1..64.
MIN_INTERVAL = 1


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def edge_fifo(consumer) -> tuple[int, int]:
    """(width, depth) of the FIFO in front of a layer on a straight path."""
    return in_elems(consumer) * consumer.idt.bits, base_depth(consumer)


# --------------------------------------------------------------------------- fold_simple
def _fold_mvau(layer: MVAU, target: int, simd_div: int) -> None:
    best = None
    for pe in divisors(layer.mh):
        for simd in divisors(simd_div):
            if layer.mw % simd:
                continue
            cyc = (layer.mh // pe) * (layer.mw // simd) * layer.pixels
            key = (cyc > target, pe * simd if cyc <= target else cyc, pe)
            if best is None or key < best[0]:
                best = (key, pe, simd)
    layer.pe, layer.simd = best[1], best[2]


def _fold_channels(layer, channels: int, per_frame: int, target: int) -> None:
    for pe in divisors(channels):
        if per_frame // pe <= target:
            layer.pe = pe
            return
    layer.pe = channels


def fold_simple(design, target_cycles: int = 1 << 15):
    """A balanced folding without a board: every layer gets the least parallelism that
    brings it to `target_cycles` per frame (kept for tests and as a fallback)."""
    strip_width_converters(design)
    g = design.graph
    for name in list(nx.topological_sort(g)):
        layer = g.nodes[name]["layer"]
        if isinstance(layer, MVAU):
            preds = list(g.predecessors(name))
            swg = g.nodes[preds[0]]["layer"] if preds else None
            if isinstance(swg, SlidingWindow):
                _fold_mvau(layer, target_cycles, swg.channels)
                swg.simd, swg.parallel = layer.simd, False
            else:
                _fold_mvau(layer, target_cycles, layer.mw)
        elif isinstance(layer, VVAU):
            layer.pe = next(p for p in layer.legal_pe()
                            if layer.pixels * (layer.groups // p) * layer.k <= target_cycles
                            or p == layer.groups)
            _sync_window(design, layer)
        elif _channel_pe_attr(layer) is not None:
            _fold_channels(layer, _channel_pe_attr(layer), layer.cycles() * layer.pe,
                           target_cycles)
    return insert_width_converters(design)


def _sync_window(design, vv: VVAU) -> None:
    """The depthwise-order window in front of a VVAU carries PE whole groups per word."""
    for p in design.graph.predecessors(vv.name):
        swg = design.layer(p)
        if isinstance(swg, SlidingWindow):
            swg.simd, swg.parallel = vv.in_word, False


# --------------------------------------------------------------------------- width converters
def strip_width_converters(design):
    """Remove WidthConverters (so a design can be folded again)."""
    g = design.graph
    for name in [n for n in g.nodes if isinstance(g.nodes[n]["layer"], WidthConverter)]:
        preds, succs = list(g.predecessors(name)), list(g.successors(name))
        g.remove_node(name)
        for u in preds:
            for v in succs:
                g.add_edge(u, v)
                layer = g.nodes[v]["layer"]
                if getattr(layer, "inputs", None):
                    layer.inputs = [u if i == name else i for i in layer.inputs]
    return design


def insert_width_converters(design):
    """Put a WidthConverter on every edge whose word sizes differ (idempotent)."""
    g = design.graph
    for u, v in list(g.edges):
        a, b = g.nodes[u]["layer"], g.nodes[v]["layer"]
        if isinstance(a, WidthConverter) or isinstance(b, WidthConverter):
            continue
        if out_elems(a) != in_elems(b):
            name = f"dwc_{u}_{v}"
            shape = tuple(a.out_shape)
            dwc = WidthConverter(name, a.odt, a.odt, shape, shape, [],
                                 in_elems=out_elems(a), out_elems=in_elems(b))
            g.remove_edge(u, v)
            g.add_node(name, layer=dwc)
            g.add_edge(u, name)
            g.add_edge(name, v)
            if getattr(b, "inputs", None):
                b.inputs = [name if i == u else i for i in b.inputs]
    return design


# --------------------------------------------------------------------------- units and options
class Unit:
    """One SWG+MVAU pair or one other layer, with its legal options.

    options: list of dicts {layer name: {"pe":, "simd":, "mem_style":}}; cycles (n,) and
    res (n, 5) arrays in RES order (the unit's layers plus the FIFO in front of it)."""

    def __init__(self, layers: list, options: list, cycles, res):
        self.layers = layers
        self.options = options
        self.cycles = np.asarray(cycles, dtype=np.int64)
        self.res = np.asarray(res, dtype=np.float64).reshape(-1, len(RES))

    @property
    def name(self) -> str:
        return self.layers[-1].name


def _vec(d: dict) -> list:
    return [d[r] for r in RES]


def _mvau_styles(layer: MVAU, board, allow_uram: bool) -> list[str]:
    styles = ["block", "lut"]
    if allow_uram and board is not None and board.URAM > 0:
        styles.append("uram")
    return styles


def _channel_pe_attr(layer) -> int | None:
    """Channels a `pe` layer folds over, or None for a layer without PE."""
    if not hasattr(layer, "pe"):
        return None
    if isinstance(layer, LabelSelect):
        return layer.labels
    if isinstance(layer, Concat):          # PE channels of every input per word
        return math.gcd(*layer.channels)
    if isinstance(layer, AddStreams):      # operand words whole (bnncc.passes.prune)
        return layer.pe_channels()
    return int(layer.in_shape[-1])


def _with(layer, **kw):
    """Temporarily set attributes, evaluate, restore."""
    old = {k: getattr(layer, k) for k in kw}
    for k, v in kw.items():
        setattr(layer, k, v)
    return old


def build_units(design, board=None, allow_uram: bool = False, pins: dict | None = None) -> list[Unit]:
    pins = pins or {}
    strip_width_converters(design)
    g = design.graph
    order = list(nx.topological_sort(g))
    taken = set()
    units = []
    for name in order:
        if name in taken:
            continue
        layer = g.nodes[name]["layer"]
        succ = list(g.successors(name))
        if isinstance(layer, SlidingWindow) and len(succ) == 1 and \
                isinstance(g.nodes[succ[0]]["layer"], VVAU):
            taken.add(succ[0])
            units.append(_vvau_unit(g.nodes[succ[0]]["layer"], layer, pins))
        elif isinstance(layer, SlidingWindow) and len(succ) == 1 and \
                isinstance(g.nodes[succ[0]]["layer"], MVAU):
            mv = g.nodes[succ[0]]["layer"]
            taken.add(succ[0])
            units.append(_mvau_unit(mv, layer, board, allow_uram, pins))
        elif isinstance(layer, MVAU):
            units.append(_mvau_unit(layer, None, board, allow_uram, pins))
        else:
            units.append(_pe_unit(layer, pins))
        taken.add(name)
    return units


def _pin(pins: dict, layer, key: str):
    p = pins.get(layer.name) or {}
    for k in (key, key.upper(), key.lower()):
        if k in p:
            return p[k]
    return None


def _mvau_unit(mv: MVAU, swg, board, allow_uram, pins) -> Unit:
    simd_div = swg.channels if swg is not None else mv.mw
    pes = divisors(mv.mh)
    simds = [s for s in divisors(simd_div) if mv.mw % s == 0]
    styles = _mvau_styles(mv, board, allow_uram)
    pe_pin, simd_pin, st_pin = _pin(pins, mv, "pe"), _pin(pins, mv, "simd"), _pin(pins, mv, "mem_style")
    if swg is not None and simd_pin is None:
        simd_pin = _pin(pins, swg, "simd")
    if pe_pin is not None:
        if pe_pin not in pes:
            raise BnnccError(f"config: PE={pe_pin} of {mv.name} does not divide MH={mv.mh}")
        pes = [pe_pin]
    par_pin = pins.get(swg.name, {}).get("parallel") if swg is not None else None
    par_ok = swg is not None and _offer_parallel(swg) and par_pin is not False
    if simd_pin is not None:
        if simd_pin not in simds and not (par_ok and mv.mw % simd_pin == 0):
            raise BnnccError(f"config: SIMD={simd_pin} of {mv.name} must divide MW={mv.mw}"
                             + (f" and the {swg.channels} channels of {swg.name}" if swg else ""))
        simds = [s for s in simds if s == simd_pin]
    if st_pin is not None:
        st_pin = {"bram": "block", "lutram": "lut", "distributed": "lut", "ultra": "uram"}.get(
            str(st_pin).lower(), str(st_pin).lower())
        if st_pin not in ("block", "lut", "uram"):
            raise BnnccError(f"config: mem_style of {mv.name} must be bram, lutram or uram")
        styles = [st_pin]
    old = (mv.pe, mv.simd, mv.mem_style, swg.simd if swg is not None else None,
           swg.parallel if swg is not None else None)
    opts, cyc, res = [], [], []
    swg_cache = {}
    # a parallel window pinned on offers only parallel modes, pinned off only serial ones
    modes = [] if par_ok and par_pin is True else [(s, False) for s in simds]
    if par_ok:
        modes += [(s, True) for s in divisors(mv.mw) if simd_pin is None or s == simd_pin]
    try:
        for simd, par in modes:
            if swg is not None:
                swg.parallel, swg.simd = par, (swg.channels if par else simd)
                # a parallel window is split to the MVAU's SIMD by a width converter
                conv = (WidthConverter("dwc", swg.odt, swg.odt, swg.out_shape, swg.out_shape,
                                       in_elems=mv.mw, out_elems=simd)
                        if par and simd != mv.mw else None)
                swg_cache[(simd, par)] = (
                    max(swg.cycles(), conv.cycles() if conv else 0),
                    np.add(_vec(swg.resources()), _vec(conv.resources()) if conv else 0))
            for pe in pes:
                mv.pe, mv.simd = pe, simd
                c = mv.cycles()
                fw, fd = edge_fifo(mv)
                fifo = _vec(fifo_resources(fw, fd))
                base = mv.resources_by_style(styles)
                for st in styles:
                    r = np.add(_vec(base[st]), fifo)
                    if swg is not None:
                        c2, rs = swg_cache[(simd, par)]
                        r = r + np.asarray(rs) + np.asarray(
                            _vec(fifo_resources(simd * swg.idt.bits, FIFO_MIN_DEPTH)))
                        cc = max(c, c2)
                    else:
                        cc = c
                    o = {mv.name: {"pe": pe, "simd": simd, "mem_style": st}}
                    if swg is not None:
                        o[swg.name] = {"simd": swg.channels if par else simd, "parallel": par}
                    opts.append(o)
                    cyc.append(cc)
                    res.append(r)
    finally:
        mv.pe, mv.simd, mv.mem_style = old[0], old[1], old[2]
        if swg is not None:
            swg.simd, swg.parallel = old[3], old[4]
    layers = [swg, mv] if swg is not None else [mv]
    return Unit(layers, opts, cyc, res)


def _vvau_unit(vv: VVAU, swg, pins) -> Unit:
    """A depthwise-order window and its VVAU: PE groups per cycle (the window's SIMD is
    PE * CIN), weights in BRAM or LUTs."""
    pes, styles = vv.legal_pe(), ["block", "lut"]
    pe_pin, st_pin = _pin(pins, vv, "pe"), _pin(pins, vv, "mem_style")
    if pe_pin is not None:
        if pe_pin not in pes:
            raise BnnccError(f"config: PE={pe_pin} of {vv.name} does not divide its "
                             f"{vv.groups} groups")
        pes = [pe_pin]
    if st_pin is not None:
        st = {"bram": "block", "lutram": "lut", "distributed": "lut"}.get(
            str(st_pin).lower(), str(st_pin).lower())
        if st not in styles:
            raise BnnccError(f"config: mem_style of {vv.name} must be bram or lutram")
        styles = [st]
    old = (vv.pe, vv.mem_style, swg.simd, swg.parallel)
    opts, cyc, res = [], [], []
    try:
        for pe in pes:
            vv.pe, swg.simd, swg.parallel = pe, pe * vv.cin, False
            fw, fd = edge_fifo(vv)
            base = np.add(_vec(swg.resources()), _vec(fifo_resources(fw, fd)))
            base = base + np.asarray(_vec(fifo_resources(swg.simd * swg.idt.bits,
                                                         FIFO_MIN_DEPTH)))
            for st in styles:
                opts.append({vv.name: {"pe": pe, "mem_style": st},
                             swg.name: {"simd": pe * vv.cin, "parallel": False}})
                cyc.append(max(vv.cycles(), swg.cycles()))
                res.append(base + np.asarray(_vec(vv.resources(st))))
    finally:
        vv.pe, vv.mem_style, swg.simd, swg.parallel = old
    return Unit([swg, vv], opts, cyc, res)


def _offer_parallel(swg) -> bool:
    """The parallel window pays off where a pixel is narrow (few channels, the first conv
    layers): there the channel-serial window caps the rate at KH*KW cycles per pixel. For
    wide pixels its window word is very wide, and SIMD over channels already scales."""
    return swg.channels * swg.idt.bits <= 64 and swg.kernel != (1, 1)


def _pe_unit(layer, pins) -> Unit:
    ch = _channel_pe_attr(layer)
    if ch is None:       # no folding parameter: one option
        return Unit([layer], [{}], [layer.cycles()], [_vec(_layer_res(layer))])
    pes = divisors(ch)
    pin = _pin(pins, layer, "pe")
    if pin is not None:
        if pin not in pes:
            raise BnnccError(f"config: PE={pin} of {layer.name} does not divide {ch}")
        pes = [pin]
    old = layer.pe
    opts, cyc, res = [], [], []
    try:
        for pe in pes:
            layer.pe = pe
            opts.append({layer.name: {"pe": pe}})
            cyc.append(layer.cycles())
            w = pe * layer.idt.bits
            res.append(np.add(_vec(_layer_res(layer)), _vec(fifo_resources(w, FIFO_MIN_DEPTH))))
    finally:
        layer.pe = old
    return Unit([layer], opts, cyc, res)


def _layer_res(layer) -> dict:
    from .layers.cost import generic_resources
    fn = getattr(layer, "resources", None)
    return fn() if fn is not None else generic_resources(layer)


# --------------------------------------------------------------------------- selection
def _select(units, T, lam, bud) -> list[int] | None:
    """Index of the cheapest option with cycles <= T per unit (None if some unit cannot)."""
    scale = np.array([lam[i] / max(bud[r], 1e-9) for i, r in enumerate(RES)])
    out = []
    for u in units:
        ok = u.cycles <= T
        if not ok.any():
            return None
        cost = u.res @ scale
        cost = np.where(ok, cost + 1e-12 * u.cycles, np.inf)
        out.append(int(np.argmin(cost)))
    return out


def _totals(units, sel) -> np.ndarray:
    return sum(u.res[i] for u, i in zip(units, sel))


def _fit(units, T, bud, iters: int = 12):
    """A selection for interval T that fits the budget, or (None, best effort)."""
    lam = np.ones(len(RES))
    bvec = np.array([bud[r] for r in RES])
    best = None
    for _ in range(iters):
        sel = _select(units, T, lam, bud)
        if sel is None:
            return None, None
        tot = _totals(units, sel)
        over = tot / np.maximum(bvec, 1e-9)
        if np.all(tot <= bvec + 1e-9):
            return sel, tot
        if best is None or over.max() < best[1]:
            best = (sel, over.max())
        lam = lam * np.where(tot > bvec, 1.0 + 2.0 * (over - 1.0) + 0.5, 1.0)
    return None, best[0]


def _apply(design, units, sel) -> None:
    strip_width_converters(design)
    for u, i in zip(units, sel):
        for name, cfg in u.options[i].items():
            layer = design.layer(name)
            for k, v in cfg.items():
                setattr(layer, k, v)
    insert_width_converters(design)


def load_config(config) -> dict:
    if config is None:
        return {}
    if isinstance(config, dict):
        return config
    try:
        return json.loads(Path(config).read_text())
    except (OSError, ValueError) as e:
        raise BnnccError(f"cannot read folding config: {e}", file=str(config)) from None


def _setup(design, board, budget, config, allow_uram, units=None):
    """Units (built unless given: a sweep builds them once per board) and the budget."""
    cfg = load_config(config)
    pins = cfg.get("layers", {})
    unknown = [n for n in pins if n not in design.graph.nodes]
    if unknown:
        raise BnnccError(f"config names unknown layers: {', '.join(unknown)}")
    b = dict(cfg.get("budget", {}))
    b.update(budget or {})
    allow = bool(cfg.get("allow_uram", allow_uram))
    if units is None:
        units = build_units(design, board, allow, pins)
    return units, budget_of(board, b)


def _no_fit_error(units, bud, board):
    """Name the layer that does not fit even fully folded, and by how much."""
    sel, _ = _fit(units, np.iinfo(np.int64).max, bud)
    lam = np.ones(len(RES))
    sel = sel or _select(units, np.iinfo(np.int64).max, lam, bud)
    tot = _totals(units, sel)
    cap = board.capacity()
    worst = max(range(len(RES)), key=lambda i: tot[i] / max(bud[RES[i]], 1e-9))
    r = RES[worst]
    mins = [(u.res[:, worst].min(), u) for u in units]
    big, u = max(mins, key=lambda t: t[0])
    pct = 100 * bud[r] / cap[r] if cap[r] else 0
    if big > bud[r]:
        raise BnnccError(f"layer {u.name} does not fit {board.name} even fully folded "
                         f"(PE=SIMD=1, best memory style): it needs {big:.0f} {r}, the budget "
                         f"is {bud[r]:.0f} ({pct:.0f}% of {cap[r]}): over by {big - bud[r]:.0f} {r}")
    use = [(u.res[k, worst], u) for k, u in zip(sel, units)]
    most, u = max(use, key=lambda t: t[0])
    raise BnnccError(f"the design does not fit {board.name} even fully folded: {tot[worst]:.0f} {r} "
                     f"needed, budget {bud[r]:.0f} ({pct:.0f}% of {cap[r]}), over by "
                     f"{tot[worst] - bud[r]:.0f} {r}; the largest user is layer {u.name} "
                     f"({most:.0f} {r})")


def fold_max_fps(design, board, clock_mhz: float | None = None, budget: dict | None = None,
                 config=None, allow_uram: bool = False, units=None):
    """The highest-fps folding whose estimated resources fit the budget (`units`:
    build_units(design, board) kept from an earlier call with the same design and pins)."""
    units, bud = _setup(design, board, budget, config, allow_uram, units)
    cands = np.unique(np.concatenate([u.cycles for u in units]))
    floor = max(int(u.cycles.min()) for u in units)
    cands = cands[cands >= max(floor, MIN_INTERVAL)]
    # feasibility is (close to) monotone in T: binary search, then settle
    lo, hi = 0, len(cands) - 1
    sel_hi, _ = _fit(units, cands[hi], bud)
    if sel_hi is None:
        _no_fit_error(units, bud, board)
    best = (cands[hi], sel_hi)

    def fits(T):
        """A selection at interval T whose whole-design estimate (width converters and
        FIFOs included) fits; the units' budget is tightened by what they leave out."""
        b = dict(bud)
        for _ in range(4):
            sel, _ = _fit(units, T, b)
            if sel is None:
                return None
            _apply(design, units, sel)
            tot = _design_totals(design)
            over = {r: tot[r] - bud[r] for r in RES if tot[r] > bud[r] + 1e-9}
            if not over:
                return sel
            unit_tot = _totals(units, sel)
            for r in over:
                b[r] = max(0.0, bud[r] - (tot[r] - unit_tot[RES.index(r)]) - 1)
        return None

    sel_hi = fits(cands[hi])
    if sel_hi is None:
        _no_fit_error(units, bud, board)
    best = (cands[hi], sel_hi)
    while lo < hi:
        mid = (lo + hi) // 2
        sel = fits(cands[mid])
        if sel is not None:
            best = (cands[mid], sel)
            hi = mid
        else:
            lo = mid + 1
    _apply(design, units, best[1])
    return design


def _design_totals(design) -> dict:
    from .estimate import layer_estimates
    rows = layer_estimates(design)
    return {r: sum(x[r] for x in rows) for r in RES}


def fold_for_fps(design, board, clock_mhz: float, fps: float, budget: dict | None = None,
                 config=None, allow_uram: bool = False):
    """The folding with the least resources (weighted by the budget) meeting `fps`."""
    if not fps > 0:
        raise BnnccError(f"--fps must be positive, got {fps}")
    units, bud = _setup(design, board, budget, config, allow_uram)
    T = int(clock_mhz * 1e6 // fps)
    slow = [u for u in units if u.cycles.min() > T]
    if slow:
        u = max(slow, key=lambda u: u.cycles.min())
        best = clock_mhz * 1e6 / max(int(x.cycles.min()) for x in units)
        raise BnnccError(f"{fps:g} fps at {clock_mhz:g} MHz needs at most {T} cycles per frame; "
                         f"layer {u.name} needs {int(u.cycles.min())} even fully parallel "
                         f"(the model's maximum is {best:.0f} fps)")
    _fold_at(design, units, bud, T)
    return design


def _fold_at(design, units, bud, T) -> bool:
    """Apply the cheapest selection meeting interval T (False if some unit cannot)."""
    sel, tot = _fit(units, T, bud)
    if sel is None:       # does not fit the budget: still the cheapest design meeting T
        sel = tot if tot is not None else _select(units, T, np.ones(len(RES)), bud)
    if sel is None:
        return False
    _apply(design, units, sel)
    return True


def fold_intervals(design, board, intervals, budget: dict | None = None, config=None,
                   allow_uram: bool = False, units=None):
    """fold_for_fps at each target interval (cycles per frame) in turn, the units built
    once: yields (T, folded) with the design folded for T (bnncc sweep estimates it)."""
    units, bud = _setup(design, board, budget, config, allow_uram, units)
    for T in intervals:
        yield T, _fold_at(design, units, bud, int(T))


def folding_config(design) -> dict:
    """The folding of a design as a config that `--config` pins back exactly."""
    layers = {}
    for layer in design.layers():
        if isinstance(layer, WidthConverter):
            continue
        if isinstance(layer, MVAU):
            layers[layer.name] = {"PE": layer.pe, "SIMD": layer.simd,
                                  "mem_style": layer.mem_style or layer.default_mem_style()}
        elif isinstance(layer, VVAU):
            layers[layer.name] = {"PE": layer.pe,
                                  "mem_style": layer.mem_style or layer.default_mem_style()}
        elif isinstance(layer, SlidingWindow):
            layers[layer.name] = {"SIMD": layer.simd, "parallel": bool(layer.parallel)}
        elif _channel_pe_attr(layer) is not None:
            layers[layer.name] = {"PE": layer.pe}
    return {"layers": layers}


def fold(design, board, clock_mhz: float, fps: float | None = None, budget: dict | None = None,
         config=None):
    """--fps N or (default) --max-fps."""
    if fps:
        return fold_for_fps(design, board, clock_mhz, fps, budget, config)
    return fold_max_fps(design, board, clock_mhz, budget, config)
