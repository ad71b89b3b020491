"""Verification ladder: run the same integer input stream through several engines and
compare the integer outputs exactly; report the first layer and element that differ."""
from __future__ import annotations

import numpy as np

ENGINES = ("golden", "csim", "rtlsim")


class ProgressBar:
    """A carriage-return progress bar for long simulations: call it as
    bar(stage, done, total); total 0 shows the stage alone. Write it to a terminal only."""

    def __init__(self, stream, width: int = 30):
        self.stream, self.width, self.open = stream, width, False

    def __call__(self, stage: str, done: int, total: int) -> None:
        if total:
            fill = self.width * done // total
            bar = "#" * fill + "." * (self.width - fill)
            text = f"\r{stage} [{bar}] {done}/{total} frames"
        else:
            text = f"\r{stage} ..."
        self.stream.write(text.ljust(self.width + 40))
        self.stream.flush()
        self.open = True
        if total and done >= total:
            self.close()

    def close(self) -> None:
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


def run_engine(design, engine: str, q: np.ndarray, backpressure: float = 0.0,
               seed: int = 0, progress=None, trace: bool = False):
    """-> (last-layer integers, per-layer trace or None, stats dict)."""
    if engine == "golden":
        t: dict = {}
        return design.run_layers(q, t if trace else None), t, {}
    if engine == "csim":
        from . import csim
        out, t = csim.simulate(design, q, trace=trace)
        return out, (t if trace else None), {}
    if engine == "rtlsim":
        from . import rtlsim
        out, st = rtlsim.simulate(design, q, backpressure=backpressure,
                                  input_gaps=backpressure, seed=seed, progress=progress)
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


def cosim(design, x: np.ndarray, levels: list[str], backpressure: float = 0.0,
          seed: int = 0, progress=None) -> dict:
    q = design.quantize_input(x)
    results = {lv: run_engine(design, lv, q, backpressure, seed, progress) for lv in levels}
    base = levels[0]
    ref_out, ref_trace, _ = results[base]
    report = {"exact": True, "frames": int(len(x)), "levels": list(levels)}
    for lv in levels[1:]:
        out, trace, stats = results[lv]
        for k, v in stats.items():
            report[k] = v
        mm = first_mismatch(ref_out, out)
        if mm is None:
            continue
        report["exact"] = False
        layer = design.last().name
        frame, index = mm
        if lv == "csim" and base == "golden":   # rerun with per-layer traces to locate it
            _, ref_trace, _ = run_engine(design, base, q, trace=True)
            _, trace, _ = run_engine(design, lv, q, trace=True)
        if ref_trace and trace:   # first layer (in stream order) whose output differs
            for l in design.layers():
                if l.name in trace and l.name in ref_trace:
                    m2 = first_mismatch(np.asarray(ref_trace[l.name]), np.asarray(trace[l.name]))
                    if m2 is not None:
                        layer, (frame, index) = l.name, m2
                        ref_out, out = ref_trace[l.name], trace[l.name]
                        break
        r = np.asarray(ref_out).reshape(len(x), -1)
        g = np.asarray(out).reshape(len(x), -1)
        report["first_mismatch"] = {
            "levels": [base, lv], "layer": layer, "frame": frame, "index": index,
            "values": [int(r[frame, index]) if r.size else None,
                       int(g[frame, index]) if g.size else None]}
        break
    return report
