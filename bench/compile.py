"""Wall time of `bnncc compile` on CNV-w1a1 to a full project (HLS, RTL, report).

usage: python bench/compile.py [MODEL] [--repeat N]

Prints the best of N in-process runs (bnncc.cli.main, imports already warm), a breakdown
of the in-process run by stage, and the wall time of `bnncc compile` as a fresh
subprocess (Python start-up and imports included), against FINN's figure for the same
model on this machine (issue 3: its front end alone takes 17 s to reach its estimates
for CNV-w1a1, 30 s for LFC).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT = REPO / "tests" / "fixtures" / "brevitas" / "cnv_1w1a.onnx"
FINN_SECONDS = 17.0
GOAL_SECONDS = 2.0


def stages(model: str, out: Path) -> dict[str, float]:
    from bnncc import api
    from bnncc.backends import hls, rtl
    from bnncc.boards import get_board
    from bnncc.folding import fold
    from bnncc.project import render_project, write_project
    from bnncc.report import report_files
    t = {}
    t0 = time.perf_counter()
    d = api.load(model)
    t["load + lower"] = time.perf_counter() - t0
    board = get_board("pynq-z2")
    t0 = time.perf_counter()
    fold(d, board, board.clock_mhz)          # what `bnncc compile` does: --max-fps
    t["fold (max-fps)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    hls.render(d, part=board.part, clock_mhz=board.clock_mhz)
    t["render hls"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rtl.render(d)
    t["render rtl"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    report_files(d, board, board.clock_mhz, model)
    t["report"] = time.perf_counter() - t0
    files = render_project(d, board, board.clock_mhz, model)
    t0 = time.perf_counter()
    write_project(files, str(out), force=True)
    t["write"] = time.perf_counter() - t0
    return t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    from bnncc.cli import main as cli_main
    tmp = Path(tempfile.mkdtemp(prefix="bnncc-bench-compile-"))
    try:
        out = tmp / "out"
        best = float("inf")
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            rc = cli_main(["compile", a.model, "-o", str(out)])
            best = min(best, time.perf_counter() - t0)
            if rc != 0:
                print(f"bnncc compile failed with exit {rc}")
                return rc
        nfiles = sum(1 for p in out.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        name = Path(a.model).name
        print(f"{name}: bnncc compile in-process {best:.2f} s (best of {a.repeat}), "
              f"{nfiles} files, {size / 1e6:.1f} MB")
        for k, v in stages(a.model, tmp / "stages").items():
            print(f"  {k:<14} {v:.3f} s")
        sub = float("inf")
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "bnncc", "compile", a.model, "-o",
                                str(tmp / "sub")], capture_output=True, text=True)
            sub = min(sub, time.perf_counter() - t0)
            if r.returncode != 0:
                print(r.stderr)
                return r.returncode
        print(f"{name}: bnncc compile as a subprocess {sub:.2f} s (best of {a.repeat}, "
              f"Python start-up and imports included)")
        print(f"goal <= {GOAL_SECONDS:.0f} s: {'met' if sub <= GOAL_SECONDS else 'NOT met'}; "
              f"FINN's front end needs {FINN_SECONDS:.0f} s to reach its estimates for "
              f"CNV-w1a1 here ({FINN_SECONDS / sub:.0f}x the subprocess time)")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
