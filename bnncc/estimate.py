"""Performance and resource estimate of a folded design on a board.

`estimate(design, board, clock_mhz)` is the one place where the design-level figures are
computed: the initiation interval is the slowest block's cycles per frame (layers and
width converters), fps = clock / interval, latency is the first frame's, from each
block's fill and drain (`first_frame`); resources are the sum of every block's model
(bnncc/layers/*, calibrated against Yosys in docs/calibration.md) plus the FIFO the RTL
backend puts in front of it. `table(est)` renders it as text (bnncc.plot draws it).
"""
from __future__ import annotations


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
        elif hasattr(l, "buffer_style"):             # a DepthToSpace block's buffer
            style = STYLE_NAMES[l.buffer_style()]
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
    depth = logic_depth(design, rows, board, clock)
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
        "logic_depth": depth,
        "ports": port_bandwidth(design, clock * 1e6 / ii),
        "layers": rows,
    }


def logic_depth(design, rows: list[dict], board, clock_mhz: float) -> dict:
    """Per-block logic depth (bnncc.timing: levels of the longest register-to-register
    path) into each row, and the design's worst block against the family's budget."""
    from . import timing
    budget = timing.budget(board.family, clock_mhz)
    worst = None
    for r, l in zip(rows, design.layers()):
        stages = timing.layer_depth(l, board.family)
        stage = max(stages, key=stages.get)
        r["logic_depth"], r["depth_stage"] = int(stages[stage]), stage
        if worst is None or r["logic_depth"] > worst["levels"]:
            worst = {"levels": r["logic_depth"], "layer": r["name"], "stage": stage}
    worst = worst or {"levels": 0, "layer": None, "stage": None}
    return {"family": board.family, "budget": budget, "ns_per_level": timing.NS_PER_LEVEL.get(
        board.family, 1.0), **{f"worst_{k}": v for k, v in worst.items()},
        "ok": worst["levels"] <= budget}


def port_bandwidth(design, fps: float) -> dict:
    """Width and bytes/s of the two external AXI streams at the design's rate (a word of
    w bits travels as ceil(w / 8) bytes), so the host link's limit on fps is visible."""
    from .passes.streams import check_streams
    first, last = check_streams(design)
    out = {}
    for port, layer, elems, dt, shape in (
            ("input", first, in_elems(first), first.idt, first.in_shapes[0]),
            ("output", last, out_elems(last), last.odt, last.out_shape)):
        bits = elems * dt.bits
        words = max(1, int(np.prod(shape)) // max(1, elems))
        nbytes = -(-bits // 8)
        out[port] = {"layer": layer.name, "width_bits": bits, "bytes_per_word": nbytes,
                     "words_per_frame": words, "bytes_per_frame": words * nbytes,
                     "bytes_per_s": words * nbytes * fps}
    return out


def table(est: dict) -> str:
    """Per-layer table, totals with % of the board, fps, latency and the verdict."""
    head = (f"{'layer':<24} {'kind':<14} {'PE':>4} {'SIMD':>5} {'cycles':>9} {'LUT':>8} "
            f"{'FF':>8} {'BRAM18':>7} {'URAM':>5} {'DSP':>5} {'depth':>5}  mem")
    lines = [head, "-" * len(head)]
    for r in est["layers"]:
        pe = "" if r["PE"] is None else r["PE"]
        simd = "" if r["SIMD"] is None else r["SIMD"]
        lines.append(f"{r['name'][:24]:<24} {r['kind'][:14]:<14} {pe:>4} {simd:>5} "
                     f"{r['cycles']:>9} {r['LUT']:>8} {r['FF']:>8} {r['BRAM18']:>7} "
                     f"{r['URAM']:>5} {r['DSP']:>5} {r.get('logic_depth', ''):>5}  "
                     f"{r['mem_style'] or ''}")
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
    c = est.get("compression")   # bnncc.compression: channel removal against all kept
    if c:
        lines.append(f"channel removal: {c['channels_removed']} channels, weight bits "
                     f"{c['weight_bits']['kept']:,} -> {c['weight_bits']['removed']:,}; against "
                     f"every channel kept at {c['kept_fps']:,.0f} frames/s: " +
                     ", ".join(f"{k} {v:+,}" for k, v in c["saved"].items() if v) + " saved")
    ld = est.get("logic_depth")
    if ld:
        lines.append(f"logic depth: worst {ld['worst_levels']} levels ({ld['worst_layer']}, "
                     f"{ld['worst_stage']}); budget {ld['budget']} levels on {ld['family']} at "
                     f"{est['clock_mhz']:g} MHz ({ld['ns_per_level']:g} ns per level): "
                     + ("meets the clock" if ld["ok"] else "OVER the budget"))
    for port, p in est.get("ports", {}).items():
        lines.append(f"{port} stream: {p['width_bits']} bits ({p['bytes_per_word']} bytes) x "
                     f"{p['words_per_frame']} words per frame = {p['bytes_per_s'] / 1e6:,.1f} MB/s "
                     f"at {est['fps']:,.0f} frames/s")
    over = [k for k in RES if t[k] > b[k]]
    lines.append("fits the budget" if est["fits"] else
                 "DOES NOT FIT the budget: " + ", ".join(f"{k} {t[k]} > {b[k]}" for k in over))
    return "\n".join(lines)
