"""Verilator cycle-simulation speed: simulated cycles/s for TFC-w1a1, frames/s for CNV-w1a1,
and both for a fully parallel TFC-w1a1 (one frame per cycle; goal: >= 1 M cycles/s and
>= 100k frames/s), at backpressure 0 and at random backpressure 0.5 (checked exact).
Each figure is given over the whole run and as the marginal rate (two batch sizes), which
leaves out a run's fixed cost (process start, $readmemh of the weights, packing).
$BNNCC_RTLSIM_OPT sets the g++ optimization of the model (default -Og).

usage: python bench/rtlsim.py [MODEL_DIR] [--tfc-frames N] [--cnv-frames N] [--full-frames N]
MODEL_DIR holds tfc_1w1a.onnx and cnv_1w1a.onnx (default: tests/fixtures/brevitas, then
../shared/models/brevitas). Compilation is cached and excluded from the timings.
"""
from __future__ import annotations

import argparse
import resource
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


def _child_cpu() -> float:
    """CPU seconds of finished child processes (the simulator): on a shared machine the
    wall clock also counts other people's work."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench(path: Path, frames: int, target: int | None = None, bp: float = 0.0) -> dict:
    """Times a batch of `frames` and one of frames // 10: the difference gives the
    simulator's marginal rate, apart from the fixed cost of a run (process start, reading
    the weight files, packing frames in Python)."""
    d = api.load(str(path))
    fold_simple(d) if target is None else fold_simple(d, target)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (frames,) + tuple(d.input_shape[1:])).astype(np.float32)
    q = d.quantize_input(x)
    t = time.perf_counter()
    rtlsim.simulate(d, q[:1])                    # compile (cached) outside the timing
    build = time.perf_counter() - t
    runs, cpu = [], []
    for n in (max(1, frames // 10), frames):
        t, c = time.perf_counter(), _child_cpu()
        y, st = rtlsim.simulate(d, q[:n], backpressure=bp, input_gaps=bp / 2)
        runs.append((n, st["total_cycles"], time.perf_counter() - t))
        cpu.append(_child_cpu() - c)
    ok = bool(np.array_equal(y, d.run_layers(q)))
    (n0, c0, t0), (n1, c1, t1) = runs
    marg = max(t1 - t0, 1e-9)
    return dict(model=path.name, frames=frames, seconds=t1, cycles=c1, build_s=build,
                cycles_per_s=c1 / t1, frames_per_s=n1 / t1,
                marginal_cycles_per_s=(c1 - c0) / marg, marginal_frames_per_s=(n1 - n0) / marg,
                fixed_s=max(0.0, t0 - (c0 / ((c1 - c0) / marg))),
                cpu_cycles_per_s=(c1 - c0) / max(cpu[1] - cpu[0], 1e-9),
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
              f"cycles in {r['seconds']:.2f} s = {r['cycles_per_s'] / 1e6:.3f} M cycles/s, "
              f"{r['frames_per_s'] / 1e3:.1f}k frames/s; marginal "
              f"{r['marginal_cycles_per_s'] / 1e6:.3f} M cycles/s (goal 1), "
              f"{r['marginal_frames_per_s'] / 1e3:.1f}k frames/s (goal 100k), fixed "
              f"{r['fixed_s']:.2f} s per run; simulator CPU time only: "
              f"{r['cpu_cycles_per_s'] / 1e6:.3f} M cycles/s; cycles/frame {r['cycles_per_frame']:.2f} vs "
              f"estimated {r['estimated']}; bit-exact: {r['exact']}; first call "
              f"(build unless cached) {r['build_s']:.1f} s")
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
