"""C simulation: the generated HLS project compiled with g++ and run on a batch.

`simulate(design, q)` emits the project (bnncc.backends.hls), compiles it once per distinct
set of sources (binaries cached by content hash under $BNNCC_CACHE or ~/.cache/bnncc),
streams all frames through one process run, and returns the last layer's integer outputs
and, when asked (trace=True), every layer's output stream, decoded. With the trace the
testbench runs both the dataflow top (the outputs) and the layers one by one and checks
that the two agree.

Build time dominates small simulations, so the build
  - parses Xilinx's ap_int.h once: a precompiled header cached beside the binaries
    (same compiler, flags and AP_INT_MAX_W), passed with -include;
  - uses -O1 (g++ -O2 costs ~50% more compile time on large weight arrays for little
    run-time gain) and -w (the strict -Wall -Werror compile is tested separately);
  - compiles top.cpp and tb.cpp in parallel.
`hw_path=True` defines BNNCC_HW_PATH: C simulation then runs the synthesis code of the
MVAU inner loops (ap_int arithmetic) instead of its built-in-integer twin.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .. import resources
from ..errors import BnnccError, VerificationMismatch
from ..backends import hls
from ..layers import in_elems, out_elems
from ..streams import bytes_to_values, words_to_bytes  # noqa: F401  (word files)
from .tools import run_limited, slots

CXX = os.environ.get("CXX", "g++")
CSIM_FLAGS = "-O1 -std=c++14 -w"
# ap_int.h in the same pragma frame as bnncc_common.h includes it; the precompiled header.
_PCH_HEADER = """// bnncc C simulation: precompiled Xilinx arbitrary-precision types.
{define}#include <ap_int.h>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
"""


def ap_include() -> Path:
    """Directory holding Xilinx's ap_int.h: $XILINX_HLS/include, else the hls4ml wheel's copy."""
    xh = os.environ.get("XILINX_HLS")
    if xh and (Path(xh) / "include" / "ap_int.h").is_file():
        return Path(xh) / "include"
    spec = importlib.util.find_spec("hls4ml")
    if spec is not None and spec.submodule_search_locations:
        d = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
        if (d / "ap_int.h").is_file():
            return d
    raise BnnccError("ap_int.h not found: set XILINX_HLS or pip install hls4ml "
                     "(the bnncc[dev] extra)")


def cache_dir() -> Path:
    return resources.cache_dir("csim")


def _cxx_version() -> str:
    try:
        return subprocess.run([CXX, "--version"], capture_output=True, text=True).stdout
    except OSError as e:
        raise BnnccError(f"C++ compiler '{CXX}' not found: {e}")


def compile_cmds(srcdir: Path, exe: Path, flags: str = CSIM_FLAGS,
                 pch: Path | None = None) -> list[list[str]]:
    """Two compiles (run in parallel) and a link."""
    inc = ["-isystem", str(ap_include()), "-I", str(srcdir)]
    if pch is not None:
        inc = ["-include", str(pch)] + inc
    objs = [srcdir / "top.o", srcdir / "tb.o"]
    return [[CXX, *flags.split(), *inc, "-c", str(srcdir / "top.cpp"), "-o", str(objs[0])],
            [CXX, *flags.split(), *inc, "-c", str(srcdir / "tb.cpp"), "-o", str(objs[1])],
            [CXX, *flags.split(), *map(str, objs), "-o", str(exe)]]


def _run_all(cmds: list[list[str]]) -> None:
    """Run the commands, as many at once as there are free tool slots."""
    todo = list(cmds)
    while todo:
        with slots(len(todo)) as s:
            batch, todo = todo[:s.n], todo[s.n:]
            procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for c in batch]
            errs = [p.communicate()[1] for p in procs]
        for p, err in zip(procs, errs):
            if p.returncode != 0:
                raise BnnccError("g++ failed on the generated HLS C++:\n" + err[-4000:])


def _publish(tmp: Path, entry: Path) -> None:
    try:
        tmp.rename(entry)         # atomic publish; a concurrent build may have won
    except OSError:
        pass
    if tmp.exists():
        shutil.rmtree(tmp, ignore_errors=True)


def _ap_int_max_w(common_h: bytes) -> int | None:
    m = re.search(rb"^#define AP_INT_MAX_W (\d+)", common_h, re.M)
    return int(m.group(1)) if m else None


def precompiled_header(flags: str, max_w: int | None) -> Path | None:
    """Path of the cached header whose .gch holds ap_int.h parsed with these flags (built on
    first use), or None when the compiler cannot make one (the build then parses ap_int.h)."""
    text = _PCH_HEADER.format(define=f"#define AP_INT_MAX_W {max_w}\n" if max_w else "")
    h = hashlib.sha256()
    for key in (flags, str(ap_include()), _cxx_version(), text):
        h.update(key.encode() + b"\0")
    entry = cache_dir() / ("pch-" + h.hexdigest()[:24])
    header = entry / "bnncc_pch.h"
    if (entry / "bnncc_pch.h.gch").is_file():
        return header
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="pch-", dir=entry.parent))
    (tmp / "bnncc_pch.h").write_text(text)
    r = run_limited([CXX, *flags.split(), "-isystem", str(ap_include()), "-x", "c++-header",
                        str(tmp / "bnncc_pch.h"), "-o", str(tmp / "bnncc_pch.h.gch")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        return None
    _publish(tmp, entry)
    return header if (entry / "bnncc_pch.h.gch").is_file() else None


def build(files: dict[str, bytes], flags: str = CSIM_FLAGS) -> Path:
    """Compile the project (file name -> contents) unless a cached binary exists; returns it."""
    h = hashlib.sha256()
    for key in (flags, str(ap_include()), _cxx_version()):
        h.update(key.encode() + b"\0")
    for name, data in sorted(files.items()):
        h.update(name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    entry = cache_dir() / h.hexdigest()[:32]
    exe = entry / "tb"
    if exe.is_file():
        return exe
    pch_flags = " ".join(f for f in flags.split() if not f.startswith("-D"))
    pch = precompiled_header(pch_flags, _ap_int_max_w(files.get("bnncc_common.h", b"")))
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="build-", dir=entry.parent))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        *compiles, link = compile_cmds(tmp, tmp / "tb", flags, pch)
        _run_all(compiles)
        _run_all([link])
        for p in tmp.iterdir():       # keep only the binary
            if p.name != "tb":
                p.unlink()
        _publish(tmp, entry)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if not exe.is_file():
        raise BnnccError(f"csim build did not produce {exe}")
    return exe


def simulate(design, q: np.ndarray, workdir=None, trace: bool = False, hw_path: bool = False
             ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run the C simulation on the integer batch q (N, *first layer in_shape).

    The first layer is the one reading the host input, the last the one no layer reads
    (bnncc.backends.hls.endpoints). Returns the last layer's outputs (N, *out_shape) int64
    and, with trace=True, a dict layer name -> (N, *out_shape) int64 of every layer's
    output stream (else empty). hw_path=True simulates the synthesis code of the inner
    loops (-DBNNCC_HW_PATH)."""
    files = hls.render(design)
    exe = build(files, CSIM_FLAGS + (" -DBNNCC_HW_PATH" if hw_path else ""))
    first, last = hls.endpoints(design)
    names = hls.layer_names(design)
    q = np.asarray(q)
    n = q.shape[0]
    if q.ndim >= 1 and q.size == n * int(np.prod(first.in_shape)):
        q = q.reshape((n,) + tuple(first.in_shape))   # as run_layers does
    if tuple(q.shape[1:]) != tuple(first.in_shape):
        raise BnnccError(f"csim input has shape {list(q.shape)}, the first layer needs "
                         f"(N, {', '.join(map(str, first.in_shape))})")
    own = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="bnncc-csim-")) if own else Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    try:
        ie = in_elems(first)
        (wd / "in.bin").write_bytes(words_to_bytes(q, first.idt, ie,
                                                   8 * ((ie * first.idt.bits + 7) // 8)))
        args = [str(exe), str(wd / "in.bin"), str(n), str(wd)] + ([] if trace else ["--no-trace"])
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            raise (VerificationMismatch if r.returncode == 3 else BnnccError)(
                f"C simulation failed (exit {r.returncode}): {r.stderr.strip()[-2000:]}")
        oe = out_elems(last)
        out = bytes_to_values((wd / "out.bin").read_bytes(), last.odt, oe,
                              8 * ((oe * last.odt.bits + 7) // 8))
        out = out.reshape((n,) + tuple(last.out_shape))
        tr: dict[str, np.ndarray] = {}
        if trace:
            for layer in design.layers():
                data = (wd / f"trace_{names[layer.name]}.bin").read_bytes()
                oe = out_elems(layer)
                v = bytes_to_values(data, layer.odt, oe, oe * layer.odt.bits)
                tr[layer.name] = v.reshape((n,) + tuple(layer.out_shape))
        return out, tr
    finally:
        if own:
            shutil.rmtree(wd, ignore_errors=True)


def loop_counts(design, q: np.ndarray) -> dict[str, int]:
    """Iterations of every layer's II=1 loop over the frames of q, counted by an
    instrumented C simulation (-DBNNCC_COUNT_LOOPS, a build of its own; synthesis never
    sees the counters): layer name -> iterations. Divided by the frames, these are the
    cycles per frame Vitis schedules, which the estimate's cycles must equal."""
    import json
    files = hls.render(design)
    exe = build(files, CSIM_FLAGS + " -DBNNCC_COUNT_LOOPS")
    first, _ = hls.endpoints(design)
    names = hls.layer_names(design)
    q = np.asarray(q).reshape((q.shape[0],) + tuple(first.in_shape))
    with tempfile.TemporaryDirectory(prefix="bnncc-loops-") as td:
        wd = Path(td)
        ie = in_elems(first)
        (wd / "in.bin").write_bytes(words_to_bytes(q, first.idt, ie,
                                                   8 * ((ie * first.idt.bits + 7) // 8)))
        r = subprocess.run([str(exe), str(wd / "in.bin"), str(q.shape[0]), str(wd),
                            "--no-trace"], capture_output=True, text=True)
        if r.returncode != 0:
            raise BnnccError(f"C simulation failed (exit {r.returncode}): {r.stderr[-2000:]}")
        counts = json.loads((wd / "loops.json").read_text())
    back = {v: k for k, v in names.items()}
    return {back.get(k, k): int(n) for k, n in counts.items()}
