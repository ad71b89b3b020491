"""Verification ladder: the same frames through the original model (`onnx`), the golden
integer model, C simulation and RTL simulation.

The integer levels (golden, csim, rtlsim) must agree exactly; a difference is reported
with the first layer (in stream order) and element that differ. The float levels are
judged from the user's side: top-1 accuracy on the labels, agreement of top-1 with a
reference (the user's expected outputs, else the onnx level), the largest absolute
output error against it, and time and frames/s per level.
"""
from __future__ import annotations

import time

import numpy as np

from .. import progress

ENGINES = ("golden", "csim", "rtlsim")
LEVELS = ("onnx",) + ENGINES


def run_engine(design, engine: str, q: np.ndarray, backpressure: float = 0.0,
               seed: int = 0, trace: bool = False):
    """-> (last-layer integers, per-layer trace or None, stats dict)."""
    n = len(q)
    if engine == "golden":
        t: dict = {}
        with progress.task("golden model", n):
            return design.run_layers(q, t if trace else None), t, {}
    if engine == "csim":
        from . import csim
        with progress.task("C simulation (g++ build and run)", n):
            out, t = csim.simulate(design, q, trace=trace)
        return out, (t if trace else None), {}
    if engine == "rtlsim":
        from . import rtlsim
        out, st = rtlsim.simulate(design, q, backpressure=backpressure,
                                  input_gaps=backpressure, seed=seed,
                                  progress=progress.callback("RTL simulation",
                                                            "generating Verilog"))
        progress.reporter().finish()
        stats = {"cycles_per_frame_measured": st["cycles_per_frame"],
                 "cycles_per_frame_estimated": st["cycles_per_frame_estimated"],
                 "latency_cycles_measured": st["latency_cycles"],
                 "stalls_seen": st["stalls"], "total_cycles": st["total_cycles"]}
        return out, None, stats
    raise ValueError(engine)


def first_mismatch(ref: np.ndarray, got: np.ndarray):
    """(frame, flat index) of the first differing element, or None."""
    ref = ref.reshape(ref.shape[0], -1)
    got = got.reshape(got.shape[0], -1)
    if ref.shape != got.shape:
        return (0, 0)
    bad = np.argwhere(ref != got)
    return (int(bad[0][0]), int(bad[0][1])) if len(bad) else None


def top1(design, y: np.ndarray) -> np.ndarray:
    """Predicted class per frame: the output itself when the model ends in an
    argmax / top-k (its first index), else the argmax of the scores."""
    y = np.asarray(y).reshape(len(y), -1)
    if getattr(design.output_stage, "out_dtype", "float32") == "int64":
        return y[:, 0].astype(np.int64)
    return np.argmax(y, axis=1)


def _locate(design, hw, base: str, lv: str, q, ref_out, out, n: int) -> dict:
    """The first layer and element where level lv differs from base."""
    layer = design.last().name
    frame, index = first_mismatch(ref_out, out)
    if "rtlsim" not in (base, lv):      # rerun with per-layer traces to find the layer
        _, ref_trace, _ = run_engine(design if base == "golden" else hw, base, q, trace=True)
        _, trace, _ = run_engine(design if lv == "golden" else hw, lv, q, trace=True)
        for l in design.layers():
            if l.name in trace and l.name in ref_trace:
                m2 = first_mismatch(np.asarray(ref_trace[l.name]), np.asarray(trace[l.name]))
                if m2 is not None:
                    layer, (frame, index) = l.name, m2
                    ref_out, out = ref_trace[l.name], trace[l.name]
                    break
    r = np.asarray(ref_out).reshape(n, -1)
    g = np.asarray(out).reshape(n, -1)
    return {"levels": [base, lv], "layer": layer, "frame": frame, "index": index,
            "values": [int(r[frame, index]) if r.size else None,
                       int(g[frame, index]) if g.size else None]}


def cosim(design, x: np.ndarray, levels: list[str], backpressure: float = 0.0,
          seed: int = 0, labels=None, expect=None, original=None, hardware=None) -> dict:
    """Run the levels on the batch x; returns the report `bnncc cosim --json` prints.

    original: callable x -> outputs of the original model (the onnx level).
    hardware: the design the csim / rtlsim levels build (default `design`; a test can
    pass a deliberately broken copy)."""
    hw = design if hardware is None else hardware
    n = int(len(x))
    q = design.quantize_input(x) if any(lv in ENGINES for lv in levels) else None
    ints, floats, seconds, report = {}, {}, {}, {"exact": True, "frames": n,
                                                "levels": list(levels)}
    for lv in levels:
        t0 = time.perf_counter()
        if lv == "onnx":
            floats[lv] = np.asarray(original(x))
        else:
            out, _, stats = run_engine(design if lv == "golden" else hw, lv, q,
                                       backpressure, seed)
            ints[lv] = out
            floats[lv] = np.asarray(design.dequantize_output(out))
            report.update(stats)
        seconds[lv] = time.perf_counter() - t0
    report["seconds"] = {lv: round(s, 3) for lv, s in seconds.items()}
    report["fps"] = {lv: float(f"{n / s:.4g}") if s > 0 else None for lv, s in seconds.items()}

    int_levels = [lv for lv in levels if lv in ints]
    for lv in int_levels[1:]:
        if first_mismatch(ints[int_levels[0]], ints[lv]) is not None:
            report["exact"] = False
            report["first_mismatch"] = _locate(design, hw, int_levels[0], lv, q,
                                               ints[int_levels[0]], ints[lv], n)
            break

    pred = {lv: top1(design, y) for lv, y in floats.items()}
    ref_name, ref = None, None
    if expect is not None:
        ref_name, ref = "expect", np.asarray(expect)
    elif "onnx" in floats:
        ref_name, ref = "onnx", floats["onnx"]
    if labels is not None:
        lab = np.asarray(labels).reshape(-1).astype(np.int64)
        report["accuracy"] = {lv: float(np.mean(p == lab)) if n else None
                              for lv, p in pred.items()}
        if expect is not None:
            report["accuracy"]["expect"] = float(np.mean(top1(design, ref) == lab))
    if ref is not None:
        rp = top1(design, ref)
        report["reference"] = ref_name
        report["agreement"] = {lv: float(np.mean(p == rp)) if n else None
                               for lv, p in pred.items() if lv != ref_name}
        rf = ref.reshape(n, -1).astype(np.float64)
        report["max_abs_error"] = {
            lv: float(np.max(np.abs(y.reshape(n, -1).astype(np.float64) - rf))) if n else 0.0
            for lv, y in floats.items() if lv != ref_name and y.size == ref.size}
        report["agrees"] = all(v == 1.0 for v in report["agreement"].values())
    return report


def summary(rep: dict) -> str:
    """The report as a Markdown table, one row per level, and a verdict line."""
    levels = rep["levels"] + (["expect"] if rep.get("reference") == "expect" else [])
    ref = rep.get("reference")
    head = ["level", "seconds", "frames/s"]
    if "accuracy" in rep:
        head.append("top-1 accuracy")
    if ref:
        head += [f"agreement with {ref}", f"max abs error vs {ref}"]
    rows = [head, ["---"] * len(head)]
    fmt = lambda v, f: "" if v is None else format(v, f)
    for lv in levels:
        f = rep.get("fps", {}).get(lv)
        r = [lv, fmt(rep.get("seconds", {}).get(lv), ".2f"),
             "" if f is None else (f"{f:,.0f}" if f >= 100 else f"{f:.3g}")]
        if "accuracy" in rep:
            r.append(fmt(rep["accuracy"].get(lv), ".4f"))
        if ref:
            r += [fmt(rep["agreement"].get(lv), ".4f") if lv != ref else "(reference)",
                  fmt(rep["max_abs_error"].get(lv), ".3g") if lv != ref else ""]
        rows.append(r)
    w = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w[i]) if r is not rows[1] else "-" * w[i]
                               for i, c in enumerate(r)) + " |" for r in rows]
    ints = [lv for lv in rep["levels"] if lv in ENGINES]
    if len(ints) >= 2:
        verdict = "bit-exact" if rep["exact"] else "MISMATCH"
        lines.append(f"\n{verdict}: {' == '.join(ints)} on {rep['frames']} frames (integers)")
    if ref and "agrees" in rep:
        lines.append(("top-1 agrees with " if rep["agrees"] else "top-1 DIFFERS from ")
                     + f"{ref} on {'every' if rep['agrees'] else 'some'} frame")
    for k in ("cycles_per_frame_measured", "cycles_per_frame_estimated",
              "latency_cycles_measured", "stalls_seen"):
        if k in rep:
            lines.append(f"{k}: {rep[k]}")
    return "\n".join(lines)
