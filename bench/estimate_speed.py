"""Wall time of `bnncc estimate` on CNV-w1a1 (load, --max-fps fold, estimate).

usage: python bench/estimate_speed.py [MODEL] [--repeat N] [--board B]

Prints the median (and range) of N runs of the in-process path (imports warm) and of
`bnncc estimate --json` as a fresh subprocess (Python start-up and imports included),
with the goal beside them. These were timed tests once; on a shared 2-core machine a
wall-clock bound measures the machine, so they are figures here.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT = REPO / "tests" / "fixtures" / "brevitas" / "cnv_1w1a.onnx"
GOAL_CLI_SECONDS = 1.0
GOAL_IN_PROCESS_SECONDS = 1.0


def in_process(model: str, board: str) -> float:
    from bnncc import api
    from bnncc.boards import get_board
    from bnncc.estimate import estimate
    from bnncc.folding import fold_max_fps
    t = time.perf_counter()
    b = get_board(board)
    d = api.load(model)
    fold_max_fps(d, b, b.clock_mhz)
    estimate(d, b, b.clock_mhz)
    return time.perf_counter() - t


def cli(model: str, board: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bnncc", "estimate", model, "--board", board,
                    "--json"], check=True, capture_output=True)
    return time.perf_counter() - t


def show(label: str, runs: list[float], goal: float) -> None:
    med = statistics.median(runs)
    print(f"{label:<28} median {med:6.3f} s  (min {min(runs):.3f}, max {max(runs):.3f}, "
          f"{len(runs)} runs)  goal < {goal:.1f} s  {'ok' if med < goal else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--board", default="pynq-z2")
    a = ap.parse_args()
    in_process(a.model, a.board)                 # warm imports and kernel builds
    show("estimate in process", [in_process(a.model, a.board) for _ in range(a.repeat)],
         GOAL_IN_PROCESS_SECONDS)
    show("bnncc estimate (subprocess)", [cli(a.model, a.board) for _ in range(a.repeat)],
         GOAL_CLI_SECONDS)


if __name__ == "__main__":
    main()
