"""Time of a `bnncc sweep` of CNV-w1a1 over every known board (seven now), in process, on
a LocalCluster and on a two-worker Dask cluster (real `dask scheduler` / `dask worker` processes on localhost),
and the Pynq-Z2 front beside FINN's two measured CNV-w1a1 builds.

usage: python bench/sweep.py [MODEL] [--points N] [--repeat N] [--scheduler ADDRESS]

Cold figures are whole `bnncc sweep ... --json` commands (Python start, imports, cluster
start, model loads); warm ones repeat `sweep()` on the same executor, whose workers keep
the loaded model and the folding options of each board. Medians of --repeat runs.
Goal: under 10 s locally on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT = REPO / "tests" / "fixtures" / "brevitas" / "cnv_1w1a.onnx"
GOAL_SECONDS = 10.0
# FINN's CNV-w1a1 on Pynq-Z2 at 100 MHz, synthesized (target fps -> measured).
FINN = [("FINN, 3k fps target", 3028, 26032, 139), ("FINN, 10k fps target", 7972, 59456, 243)]


def timed(fn, repeat: int):
    runs, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t)
    return out, runs


def show(label: str, runs: list[float], goal: float | None = None) -> None:
    med = statistics.median(runs)
    g = f"  goal < {goal:.0f} s  {'ok' if med < goal else 'MISSED'}" if goal else ""
    print(f"{label:<40} median {med:6.2f} s  (min {min(runs):.2f}, max {max(runs):.2f}, "
          f"{len(runs)} runs){g}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=str(DEFAULT))
    ap.add_argument("--points", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scheduler", default=None,
                    help="an existing cluster to time as well as the local ones")
    a = ap.parse_args()

    from bnncc.boards import list_boards
    from bnncc.executor import executor, model_ref, read_model
    from bnncc.sweep import sweep
    from bnncc.testing.dask_cluster import dask_processes
    boards = list_boards()
    ref = model_ref(a.model)
    data = {ref.sha256: read_model(a.model)}
    print(f"{Path(a.model).name}: {len(boards)} boards "
          f"({', '.join(b.key for b in boards)}), {a.points} target intervals per board")

    def run(ex):
        return sweep([ref], boards, None, a.points, None, ex,
                     data if ex.kind == "dask" else None)

    cpu: list[float] = []

    def cli(scheduler):
        cmd = [sys.executable, "-m", "bnncc", "sweep", a.model, "--points", str(a.points),
               "--json", "--scheduler", scheduler]

        def go():
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            out = subprocess.run(cmd, check=True, capture_output=True).stdout
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
            return out
        return go

    for label, sched in (("cold: bnncc sweep --scheduler none", "none"),
                         ("cold: bnncc sweep (LocalCluster)", "local")):
        cpu.clear()
        out_s, runs = timed(cli(sched), a.repeat)
        show(label, runs, GOAL_SECONDS)
        print(f"{'':<40} CPU (user + sys, all processes) median {statistics.median(cpu):.2f} s; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        if sched == "none":
            out = out_s
    out2 = out_s
    with executor("none") as ex:
        res, runs = timed(lambda: run(ex), a.repeat + 1)
    show("warm: in process", runs[1:])
    with executor("local", 2) as ex:
        run(ex)
        res2, runs = timed(lambda: run(ex), a.repeat)
    show("warm: LocalCluster, 2 workers", runs)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        with dask_processes(Path(tmp), 2, repo=REPO) as addr, executor(addr) as ex:
            show("dask scheduler + 2 workers start", [time.perf_counter() - t])
            res3, runs = timed(lambda: run(ex), a.repeat + 1)
            show("cold workers: dask scheduler + 2 workers", runs[:1])
            show("warm: dask scheduler + 2 workers", runs[1:])
    if a.scheduler:
        with executor(a.scheduler) as ex:
            _, runs = timed(lambda: run(ex), a.repeat)
        show(f"cluster at {a.scheduler}", runs)
    print("same JSON from the CLI in process and on a LocalCluster:", out == out2)
    print("same results in process / LocalCluster / cluster:", res == res2 == res3)
    n = [len(r["pareto"]) for r in res["results"]]
    print("front points per board:", dict(zip((r["board"] for r in res["results"]), n)))

    z2 = next(r for r in res["results"] if r["board"] == "pynq-z2")
    print(f"\nPynq-Z2 at {z2['clock_mhz']:g} MHz, bnncc's front and FINN's builds. bnncc's "
          "figures are its estimates\n(calibrated against Yosys, docs/calibration.md), FINN's "
          "are Vivado-synthesized: compare with care.")
    print(f"{'':<24} {'fps':>10} {'LUT':>8} {'BRAM18':>7} {'fits':>5}")
    rows = [("bnncc", p["fps"], p["totals"]["LUT"], p["totals"]["BRAM18"],
             "yes" if p["fits"] else "no") for p in z2["pareto"]]
    rows += [(name, fps, lut, bram, "") for name, fps, lut, bram in FINN]
    for name, fps, lut, bram, fit in sorted(rows, key=lambda r: r[1]):
        print(f"{name:<24} {fps:>10,.0f} {lut:>8} {bram:>7} {fit:>5}")
    for name, fps, lut, bram in FINN:
        p = min((p for p in z2["pareto"] if p["fps"] >= fps), key=lambda p: p["fps"], default=None)
        if p is not None:
            print(f"at >= {fps:,} fps ({name}): bnncc {p['fps']:,.0f} fps with "
                  f"{p['totals']['LUT']} LUT ({p['totals']['LUT'] / lut:.2f}x FINN), "
                  f"{p['totals']['BRAM18']} BRAM18 ({p['totals']['BRAM18'] / bram:.2f}x)")


if __name__ == "__main__":
    main()
