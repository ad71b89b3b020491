"""Wall time of `bnncc inspect` on CNV-w1a1 (load + lower, the front end alone).

usage: python bench/inspect_speed.py [MODEL] [--repeat N]

Prints the median (and range) of N runs of the in-process load (imports warm) and of
`bnncc inspect` as a fresh subprocess. Run it with PYTHONPATH pointing at two
checkouts to compare a front-end change against main: medians, not a test.
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


def in_process(model: str) -> float:
    from bnncc import api
    t = time.perf_counter()
    api.load(model)
    return time.perf_counter() - t


def in_process_cpu(model: str) -> float:
    """CPU time of the load: on a shared machine the wall time mostly measures the load."""
    from bnncc import api
    t = time.process_time()
    api.load(model)
    return time.process_time() - t


def cli(model: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bnncc", "inspect", model], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    in_process(a.model)   # warm the imports
    for label, fn in (("in-process load (wall)", in_process),
                      ("in-process load (CPU)", in_process_cpu),
                      ("bnncc inspect (subprocess)", cli)):
        ts = [fn(a.model) for _ in range(a.repeat)]
        print(f"{label:28s} median {statistics.median(ts):.3f} s "
              f"(range {min(ts):.3f}-{max(ts):.3f}, n={a.repeat})")


if __name__ == "__main__":
    main()
