"""Longest silence of `bnncc cosim` on CNV-w1a1 with RTL simulation, stderr not a
terminal (issue: a progress line at least every 10 s in a log or CI).

usage: python bench/progress_gaps.py [--frames N] [--repeat R]

Runs the command R times as a fresh subprocess (the Verilator build is cached after the
first run; set BNNCC_CACHE to an empty folder to include it) and prints, per run, the
wall time, the number of stderr lines and the longest gap between lines, with the goal
beside it. A wall-clock figure on a shared machine: a benchmark, not a test.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CNV = REPO / "tests" / "fixtures" / "brevitas" / "cnv_1w1a.onnx"
GOAL_S = 10.0


def run(frames: int, workdir: str) -> tuple[float, int, float]:
    refs = np.load(REPO / "tests" / "fixtures" / "brevitas" / "cnv_1w1a.refs.npz")
    x = os.path.join(workdir, "x.npy")
    np.save(x, refs["inputs"][:frames])
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "bnncc", "cosim", str(CNV), "-i", x,
                          "--levels", "golden,rtlsim"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    stamps = [time.monotonic() - t0 for _ in p.stderr]
    p.wait()
    end = time.monotonic() - t0
    gaps = np.diff([0.0] + stamps + [end])
    return end, len(stamps), float(gaps.max())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    worst = []
    with tempfile.TemporaryDirectory() as d:
        for i in range(a.repeat):
            end, n, gap = run(a.frames, d)
            worst.append(gap)
            print(f"run {i + 1}: {end:7.1f} s, {n} progress lines, longest gap {gap:5.1f} s")
    med = statistics.median(worst)
    print(f"longest gap: median {med:.1f} s over {a.repeat} runs (max {max(worst):.1f} s), "
          f"goal <= {GOAL_S:g} s: {'ok' if max(worst) <= GOAL_S else 'MISSED'}")


if __name__ == "__main__":
    main()
