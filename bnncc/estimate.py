"""Performance and resource estimate of a folded design on a board.

`estimate(design, board, clock_mhz)` is the one place where the design-level figures are
computed: the initiation interval is the slowest block's cycles per frame (layers and
width converters), fps = clock / interval, latency is the first frame's, from each
block's fill and drain (`first_frame`); resources are the sum of every block's model
(bnncc/layers/*, calibrated against Yosys in docs/calibration.md) plus the FIFO the RTL
backend puts in front of it. `table(est)` renders it as text, `plot_png(est)` as a PNG.
"""
from __future__ import annotations

import io

import numpy as np

from .boards import DEFAULT_BUDGET, budget_of
from .ir import INPUT
from .layers import MVAU, VVAU, SlidingWindow, in_elems, out_elems
from .layers.cost import RES, add, fifo_resources, generic_resources
from .passes.fifos import fifo_depths

STYLE_NAMES = {"block": "BRAM", "lut": "LUTRAM", "uram": "URAM", "distributed": "LUTRAM"}


def layer_estimates(design) -> list[dict]:
    """One row per hardware block in stream order, the FIFOs in front of it included."""
    rows = []
    layers = design.layers()
    depths = fifo_depths(design)
    for l in layers:
        fn = getattr(l, "resources", None)
        r = fn() if fn is not None else generic_resources(l)
        fifo = {r_: 0 for r_ in RES}
        for i, p in enumerate(design.inputs_of(l.name)):
            if p == INPUT:
                continue
            prod = design.layer(p)
            fifo = add(fifo, fifo_resources(out_elems(prod) * prod.odt.bits, depths[(l.name, i)]))
        tot = add(r, fifo)
        if isinstance(l, (MVAU, VVAU)):
            style = STYLE_NAMES[l.mem_style or l.default_mem_style()]
        elif isinstance(l, SlidingWindow):
            style = STYLE_NAMES[l.buffer_shape()[2]]
        else:
            style = None
        rows.append({"name": l.name, "kind": l.kind, "PE": getattr(l, "pe", None),
                     "SIMD": getattr(l, "simd", None), "cycles": int(l.cycles()),
                     **{k: int(tot[k]) for k in RES}, "mem_style": style,
                     "fifo_LUT": int(fifo["LUT"]), "in_elems": in_elems(l),
                     "out_elems": out_elems(l)})
    return rows


def interval(design) -> int:
    """Initiation interval (cycles per frame) of the dataflow pipeline."""
    return max(int(l.cycles()) for l in design.layers())


STAGE = 3        # register stages a word passes in a block and the FIFO behind it


def _words(layer, shape, elems) -> int:
    return max(1, int(np.prod(shape)) // max(1, elems))


def first_frame(design) -> dict[str, tuple[float, float]]:
    """When each block emits the first and the last word of frame 0 (cycles after the first
    input word), from how the pipeline really runs: a block starts on its first input
    word, emits its first word once it has read `fill` words (a fully connected layer: the
    whole input vector; a window: the rows its first output row needs), and ends no sooner
    than `drain` cycles after its last input word nor before its own cycles per frame have
    passed. Input words arrive spread evenly between the producer's first and last word."""
    times: dict[str, tuple[float, float]] = {}
    for l in design.layers():                      # topological order
        ins = [p for p in design.inputs_of(l.name) if p != INPUT]
        n_in = _words(l, l.in_shapes[0], in_elems(l))
        if ins:
            s_in = max(times[p][0] for p in ins) + 1
            e_in = max(times[p][1] for p in ins) + 1
        else:                                      # the host offers a word every cycle
            s_in, e_in = 0.0, float(n_in - 1)
        fill, drain = l.fill_drain() if hasattr(l, "fill_drain") else (1, 0)
        fill = min(max(1, fill), n_in)
        arrive = s_in + (e_in - s_in) * (fill - 1) / max(1, n_in - 1)
        stage = l.pipeline_latency() if hasattr(l, "pipeline_latency") else STAGE
        first = max(arrive, s_in + fill - 1) + stage
        last = max(e_in + drain, s_in + int(l.cycles()) - 1) + stage
        times[l.name] = (first, max(first, last))
    return times


def first_frame_latency(design) -> int:
    """Cycles from the first input word accepted to the last output word of frame 0."""
    t = first_frame(design)
    return int(round(max(e for _, e in t.values()))) + 1


def estimate(design, board, clock_mhz: float | None = None, budget: dict | None = None) -> dict:
    clock = float(clock_mhz or board.clock_mhz)
    rows = layer_estimates(design)
    ii = max(r["cycles"] for r in rows)
    lat = first_frame_latency(design)
    totals = {k: sum(r[k] for r in rows) for k in RES}
    bud = budget_of(board, budget)
    cap = board.capacity()
    fits = all(totals[k] <= bud[k] + 1e-9 for k in RES)
    frac = dict(DEFAULT_BUDGET)
    frac.update({k: v for k, v in (budget or {}).items()})
    return {
        "board": board.name, "part": board.part, "clock_mhz": clock,
        "fps": clock * 1e6 / ii, "cycles_per_frame": ii, "latency_cycles": int(lat),
        "latency_us": lat / clock, "fits": bool(fits),
        "totals": totals,
        "budget": {k: int(bud[k]) for k in RES},
        "capacity": cap,
        "utilization": {k: (totals[k] / cap[k] if cap[k] else (0.0 if totals[k] == 0 else None))
                        for k in RES},
        "bottleneck": max(rows, key=lambda r: r["cycles"])["name"],
        "layers": rows,
    }


def table(est: dict) -> str:
    """Per-layer table, totals with % of the board, fps, latency and the verdict."""
    head = (f"{'layer':<24} {'kind':<14} {'PE':>4} {'SIMD':>5} {'cycles':>9} {'LUT':>8} "
            f"{'FF':>8} {'BRAM18':>7} {'URAM':>5} {'DSP':>5}  mem")
    lines = [head, "-" * len(head)]
    for r in est["layers"]:
        pe = "" if r["PE"] is None else r["PE"]
        simd = "" if r["SIMD"] is None else r["SIMD"]
        lines.append(f"{r['name'][:24]:<24} {r['kind'][:14]:<14} {pe:>4} {simd:>5} "
                     f"{r['cycles']:>9} {r['LUT']:>8} {r['FF']:>8} {r['BRAM18']:>7} "
                     f"{r['URAM']:>5} {r['DSP']:>5}  {r['mem_style'] or ''}")
    lines.append("-" * len(head))
    t, b, c = est["totals"], est["budget"], est["capacity"]
    lines.append(f"{'total':<24} {'':<14} {'':>4} {'':>5} {est['cycles_per_frame']:>9} "
                 + " ".join(f"{t[k]:>{w}}" for k, w in zip(RES, (8, 8, 7, 5, 5))))
    lines.append(f"{'% of board':<24} {'':<14} {'':>4} {'':>5} {'':>9} "
                 + " ".join(f"{(100 * t[k] / c[k] if c[k] else 0):>{w - 1}.1f}%"
                            for k, w in zip(RES, (8, 8, 7, 5, 5))))
    lines.append(f"{'budget':<24} {'':<14} {'':>4} {'':>5} {'':>9} "
                 + " ".join(f"{b[k]:>{w}}" for k, w in zip(RES, (8, 8, 7, 5, 5))))
    lines.append("")
    lines.append(f"{est['board']} ({est['part']}) at {est['clock_mhz']:g} MHz: "
                 f"{est['fps']:,.0f} frames/s ({est['cycles_per_frame']} cycles per frame, "
                 f"bottleneck {est['bottleneck']}), latency {est['latency_cycles']} cycles "
                 f"({est['latency_us']:.1f} us)")
    over = [k for k in RES if t[k] > b[k]]
    lines.append("fits the budget" if est["fits"] else
                 "DOES NOT FIT the budget: " + ", ".join(f"{k} {t[k]} > {b[k]}" for k in over))
    return "\n".join(lines)


def plot_png(est: dict) -> bytes:
    """Per-layer cycles (log scale, with the interval line) and LUT / FF / BRAM18 as % of
    the board, as a deterministic PNG. Drawn with Pillow's built-in bitmap font: no font
    scanning, so `bnncc compile` stays fast and writes no font cache anywhere."""
    import math

    from PIL import Image, ImageDraw, ImageFont

    rows = est["layers"]
    font = ImageFont.load_default()
    n = max(1, len(rows))
    slot, left, top, panel, gap, label_h = 36, 70, 30, 200, 30, 110
    w = left + slot * n + 20
    h = top + 2 * panel + gap + label_h + 12
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.text((left, 8), f"{est['board']} @ {est['clock_mhz']:g} MHz: {est['fps']:,.0f} frames/s, "
           f"interval {est['cycles_per_frame']} cycles", fill="black", font=font)

    # cycles per frame, log scale
    y0, y1 = top + panel, top + 10
    hi = math.log10(max([r["cycles"] for r in rows] + [10]))
    ypos = lambda c: y0 + (y1 - y0) * (math.log10(max(c, 1)) / hi)
    d.rectangle([left, y1, w - 20, y0], outline="black")
    for e in range(int(hi) + 1):
        y = ypos(10 ** e)
        d.line([left - 4, y, left, y], fill="black")
        d.text((8, y - 5), f"1e{e}", fill="black", font=font)
    d.text((8, y1 - 12), "cycles", fill="black", font=font)
    for i, r in enumerate(rows):
        x = left + i * slot + 6
        d.rectangle([x, ypos(r["cycles"]), x + slot - 12, y0], fill=(76, 114, 176))
    yi = ypos(est["cycles_per_frame"])
    d.line([left, yi, w - 20, yi], fill=(196, 78, 82), width=1)

    # resources, % of the board
    cap = est["capacity"]
    res = [(k, c) for k, c in (("LUT", (85, 168, 104)), ("FF", (129, 114, 178)),
                               ("BRAM18", (221, 132, 82))) if cap[k]]
    b0, b1 = top + 2 * panel + gap, top + panel + gap + 10
    pct = [100 * r[k] / cap[k] for r in rows for k, _ in res]
    pmax = max(pct + [1.0])
    d.rectangle([left, b1, w - 20, b0], outline="black")
    d.text((8, b1 - 12), "% of board", fill="black", font=font)
    d.text((8, b1), f"{pmax:.0f}%", fill="black", font=font)
    for j, (k, c) in enumerate(res):
        d.rectangle([w - 90, b1 + 4 + 12 * j, w - 82, b1 + 12 + 12 * j], fill=c)
        d.text((w - 78, b1 + 2 + 12 * j), k, fill="black", font=font)
    bw = (slot - 12) // max(1, len(res))
    for i, r in enumerate(rows):
        for j, (k, c) in enumerate(res):
            x = left + i * slot + 6 + j * bw
            y = b0 - (b0 - b1) * (100 * r[k] / cap[k]) / pmax
            d.rectangle([x, y, x + bw - 1, b0], fill=c)
        lab = Image.new("RGB", (label_h, 12), "white")
        ImageDraw.Draw(lab).text((0, 0), r["name"][:18], fill="black", font=font)
        img.paste(lab.rotate(90, expand=True), (left + i * slot + 10, b0 + 4))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


