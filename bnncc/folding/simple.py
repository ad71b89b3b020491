"""fold_simple: a balanced folding without a board (tests, fallback)."""
from __future__ import annotations

import networkx as nx

from ..layers import MVAU, VVAU, SlidingWindow, WindowMax
from .converters import follow_neighbours, insert_width_converters, strip_width_converters
from .options import _channel_pe_attr, divisors


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
            layer.simd = 1
            layer.pe = next(p for p in layer.legal_pe()
                            if layer.pixels * (layer.groups // p) * layer.k <= target_cycles
                            or p == layer.groups)
            _sync_window(design, layer)
        elif isinstance(layer, WindowMax):
            _fold_channels(layer, layer.channels, layer.cycles() * layer.pe, target_cycles)
            _sync_window(design, layer)
        elif _channel_pe_attr(layer) is not None:
            _fold_channels(layer, _channel_pe_attr(layer), layer.cycles() * layer.pe,
                           target_cycles)
    follow_neighbours(design)
    return insert_width_converters(design)


def _sync_window(design, vv) -> None:
    """The depthwise-order window in front of a VVAU carries PE whole groups per word, in
    front of a WindowMax PE channels."""
    for p in design.graph.predecessors(vv.name):
        swg = design.layer(p)
        if isinstance(swg, SlidingWindow):
            swg.simd, swg.parallel = (vv.pe if isinstance(vv, WindowMax) else vv.in_word), False
