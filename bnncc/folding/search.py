"""The optimizer search: for a target interval every unit takes its cheapest option;
fold_max_fps searches the smallest interval whose selection fits the budget."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..boards import budget_of
from ..errors import BnnccError
from ..layers import MVAU, VVAU, SlidingWindow, WidthConverter
from ..layers.cost import RES
from .converters import follow_neighbours, insert_width_converters, strip_width_converters
from .options import _channel_pe_attr, build_units

# Shortest interval the optimizer aims for: one frame per cycle. Every RTL block streams
# one word per cycle on each port (credit-counted output FIFOs, pipelined adder trees),
# so the cycle model holds down to fully parallel layers (PE = MH, SIMD = MW); checked in
# Verilator by hw_tests/test_fullrate.py over intervals 1..64.
MIN_INTERVAL = 1


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
    follow_neighbours(design, {u.name for u in units if len(u.options) == 1})
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
    from ..estimate import layer_estimates
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
            layers[layer.name] = {"PE": layer.pe, "SIMD": layer.simd,
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
