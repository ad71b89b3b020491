"""Folding: how many elements each layer handles per cycle (PE output lanes, SIMD input
lanes), and the width converters that the chosen widths require between layers.

`fold_simple` is a valid, balanced folding used until the board-aware optimizer lands:
every layer gets the least parallelism that brings it to `target_cycles` per frame (or
as close as its divisibility allows).
"""
from __future__ import annotations

import networkx as nx

from .layers import MVAU, LabelSelect, MaxPool, SlidingWindow, Thresholding, WidthConverter


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def in_elems(layer) -> int:
    """Elements per input word."""
    if isinstance(layer, (MVAU, SlidingWindow)):
        return layer.simd
    if isinstance(layer, WidthConverter):
        return layer.in_elems
    return layer.pe


def out_elems(layer) -> int:
    """Elements per output word."""
    if isinstance(layer, SlidingWindow):
        return layer.simd
    if isinstance(layer, LabelSelect):
        return 1
    if isinstance(layer, WidthConverter):
        return layer.out_elems
    return layer.pe


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
    g = design.graph
    for name in list(nx.topological_sort(g)):
        layer = g.nodes[name]["layer"]
        if isinstance(layer, MVAU):
            preds = list(g.predecessors(name))
            swg = g.nodes[preds[0]]["layer"] if preds else None
            if isinstance(swg, SlidingWindow):
                _fold_mvau(layer, target_cycles, swg.channels)
                swg.simd = layer.simd
            else:
                _fold_mvau(layer, target_cycles, layer.mw)
        elif isinstance(layer, (Thresholding, MaxPool)):
            ch = layer.in_shape[-1]
            _fold_channels(layer, ch, layer.cycles() * layer.pe, target_cycles)
        elif isinstance(layer, LabelSelect):
            _fold_channels(layer, layer.labels, layer.labels, target_cycles)
    return insert_width_converters(design)


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
    return design
