"""The candidate foldings of each layer kind: a unit (a sliding window and the MVAU or
VVAU it feeds, or any other single layer) and its legal options (PE, SIMD, memory
style), each with its cycles per frame and resources from the layer models."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np

from ..errors import BnnccError
from ..layers import (MVAU, VVAU, Concat, LabelSelect, SlidingWindow, WidthConverter, WindowMax,
                      in_elems)
from ..layers.cost import RES, fifo_resources
from ..passes.fifos import FIFO_MIN_DEPTH, base_depth
from .converters import strip_width_converters


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def edge_fifo(consumer) -> tuple[int, int]:
    """(width, depth) of the FIFO in front of a layer on a straight path."""
    return in_elems(consumer) * consumer.idt.bits, base_depth(consumer)


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
    if hasattr(layer, "pe_channels"):      # e.g. DepthToSpace: elements neighbours in both orders
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
                isinstance(g.nodes[succ[0]]["layer"], WindowMax):
            taken.add(succ[0])
            units.append(_window_max_unit(g.nodes[succ[0]]["layer"], layer, pins))
        elif isinstance(layer, SlidingWindow) and len(succ) == 1 and \
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
    PE * CIN), weights in BRAM or LUTs; and, where the window can be parallel (narrow
    pixels), every group and every kernel position per cycle (VVAU SIMD = K, one window
    word per pixel: the depthwise order of all channels is the plain window order)."""
    pes, styles = vv.legal_pe(), ["block", "lut"]
    pe_pin, st_pin = _pin(pins, vv, "pe"), _pin(pins, vv, "mem_style")
    simd_pin = _pin(pins, vv, "simd")
    if pe_pin is not None:
        if pe_pin not in pes:
            raise BnnccError(f"config: PE={pe_pin} of {vv.name} does not divide its "
                             f"{vv.groups} groups")
        pes = [pe_pin]
    if simd_pin not in (None, 1, vv.k) or (simd_pin == vv.k > 1 and not (
            _offer_parallel(swg) and vv.groups in pes)):
        raise BnnccError(f"config: SIMD of {vv.name} must be 1 or, with PE={vv.groups} "
                         f"and a window of at most 64-bit pixels, {vv.k}")
    if st_pin is not None:
        st = {"bram": "block", "lutram": "lut", "distributed": "lut"}.get(
            str(st_pin).lower(), str(st_pin).lower())
        if st not in styles:
            raise BnnccError(f"config: mem_style of {vv.name} must be bram or lutram")
        styles = [st]
    forms = [(pe, 1, False) for pe in pes] if simd_pin in (None, 1) else []
    if simd_pin in (None, vv.k) and vv.k > 1 and vv.groups in pes and _offer_parallel(swg):
        forms.append((vv.groups, vv.k, True))
    old = (vv.pe, vv.simd, vv.mem_style, swg.simd, swg.parallel)
    opts, cyc, res = [], [], []
    try:
        for pe, simd, par in forms:
            vv.pe, vv.simd = pe, simd
            swg.simd, swg.parallel = (swg.channels, True) if par else (pe * vv.cin, False)
            fw, fd = edge_fifo(vv)
            base = np.add(_vec(swg.resources()), _vec(fifo_resources(fw, fd)))
            base = base + np.asarray(_vec(fifo_resources(in_elems(swg) * swg.idt.bits,
                                                         FIFO_MIN_DEPTH)))
            for st in styles:
                opts.append({vv.name: {"pe": pe, "simd": simd, "mem_style": st},
                             swg.name: {"simd": swg.simd, "parallel": par}})
                cyc.append(max(vv.cycles(), swg.cycles()))
                res.append(base + np.asarray(_vec(vv.resources(st))))
    finally:
        vv.pe, vv.simd, vv.mem_style, swg.simd, swg.parallel = old
    return Unit([swg, vv], opts, cyc, res)


def _window_max_unit(wm: WindowMax, swg, pins) -> Unit:
    """A depthwise-order window and the WindowMax behind it share PE (channels per word)."""
    pes = divisors(wm.channels)
    pin = _pin(pins, wm, "pe")
    if pin is not None:
        if pin not in pes:
            raise BnnccError(f"config: PE={pin} of {wm.name} does not divide its "
                             f"{wm.channels} channels")
        pes = [pin]
    old = (wm.pe, swg.simd, swg.parallel)
    opts, cyc, res = [], [], []
    try:
        for pe in pes:
            wm.pe, swg.simd, swg.parallel = pe, pe, False
            w = pe * swg.idt.bits
            r = np.add(_vec(swg.resources()), _vec(wm.resources()))
            r = r + np.asarray(_vec(fifo_resources(w, FIFO_MIN_DEPTH))) * 2
            opts.append({wm.name: {"pe": pe}, swg.name: {"simd": pe, "parallel": False}})
            cyc.append(max(wm.cycles(), swg.cycles()))
            res.append(r)
    finally:
        wm.pe, swg.simd, swg.parallel = old
    return Unit([swg, wm], opts, cyc, res)


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
    from ..layers.cost import generic_resources
    fn = getattr(layer, "resources", None)
    return fn() if fn is not None else generic_resources(layer)
