"""Verilator cycle-simulation speed: simulated cycles/s for TFC-w1a1, frames/s for CNV-w1a1,
and both for a fully parallel TFC-w1a1 (one frame per cycle; goal: >= 1 M cycles/s and
>= 100k frames/s), at backpressure 0 and at random backpressure 0.5 (checked exact).

usage: python bench/rtlsim.py [MODEL_DIR] [--tfc-frames N] [--cnv-frames N] [--full-frames N]
MODEL_DIR holds tfc_1w1a.onnx and cnv_1w1a.onnx (default: tests/fixtures/brevitas, then
../shared/models/brevitas). Compilation is cached and excluded from the timings.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bnncc import api
from bnncc.folding import fold_simple
from bnncc.sim import rtlsim

REPO = Path(__file__).resolve().parent.parent


def find(name: str, model_dir: str | None) -> Path | None:
    dirs = [Path(model_dir)] if model_dir else [REPO / "tests" / "fixtures" / "brevitas",
                                                 REPO.parent / "shared" / "models" / "brevitas"]
    for d in dirs:
        if (d / name).exists():
            return d / name
    return None


def bench(path: Path, frames: int, target: int | None = None, bp: float = 0.0) -> dict:
    d = api.load(str(path))
    fold_simple(d) if target is None else fold_simple(d, target)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (frames,) + tuple(d.input_shape[1:])).astype(np.float32)
    q = d.quantize_input(x)
    rtlsim.simulate(d, q[:1])                    # compile (cached) outside the timing
    t = time.perf_counter()
    y, st = rtlsim.simulate(d, q, backpressure=bp, input_gaps=bp / 2)
    dt = time.perf_counter() - t
    ok = bool(np.array_equal(y, d.run_layers(q)))
    return dict(model=path.name, frames=frames, seconds=dt, cycles=st["total_cycles"],
                cycles_per_s=st["total_cycles"] / dt, frames_per_s=frames / dt,
                cycles_per_frame=st["cycles_per_frame"],
                estimated=st["cycles_per_frame_estimated"], exact=ok)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir", nargs="?")
    ap.add_argument("--tfc-frames", type=int, default=200)
    ap.add_argument("--cnv-frames", type=int, default=10)
    ap.add_argument("--full-frames", type=int, default=5000)
    a = ap.parse_args()
    p = find("tfc_1w1a.onnx", a.model_dir)
    for bp in ((0.0, 0.5) if p is not None else ()):
        r = bench(p, a.full_frames, target=1, bp=bp)
        print(f"fully parallel tfc_1w1a, backpressure {bp}: {r['frames']} frames, {r['cycles']} "
              f"cycles in {r['seconds']:.2f} s = {r['cycles_per_s'] / 1e6:.3f} M cycles/s "
              f"(goal 1), {r['frames_per_s'] / 1e3:.1f}k frames/s (goal 100k); cycles/frame "
              f"{r['cycles_per_frame']:.2f} vs estimated {r['estimated']}; bit-exact: {r['exact']}")
    for name, n in (("tfc_1w1a.onnx", a.tfc_frames), ("cnv_1w1a.onnx", a.cnv_frames)):
        p = find(name, a.model_dir)
        if p is None:
            print(f"{name}: not found, skipped")
            continue
        r = bench(p, n)
        print(f"{r['model']}: {r['frames']} frames, {r['cycles']} cycles in {r['seconds']:.2f} s "
              f"= {r['cycles_per_s'] / 1e6:.2f} M cycles/s, {r['frames_per_s']:.1f} frames/s; "
              f"cycles/frame measured {r['cycles_per_frame']:.0f} vs estimated {r['estimated']}; "
              f"bit-exact: {r['exact']}")


if __name__ == "__main__":
    main()
