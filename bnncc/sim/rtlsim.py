"""Cycle simulation of the generated RTL with Verilator.

The design's Verilog and a generated C++ testbench are compiled once by Verilator
(--cc --exe --build) into a binary cached by content hash under $BNNCC_CACHE (default
~/.cache/bnncc)/rtlsim/<hash>/. A batch of frames is packed into a word file, streamed
through the top with seeded random input gaps and output backpressure, and the output
words are read back. The testbench has a watchdog: no output for `watchdog` cycles is a
clear failure, never a hang.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from math import ceil
from pathlib import Path

import numpy as np

from .. import resources
from ..backends import rtl
from ..errors import BnnccError
from ..streams import decode, encode
from .tools import run_limited, slots, verilator_env, verilator_version


class RtlSimError(BnnccError):
    pass


def cache_root() -> Path:
    return resources.cache_dir()


def pack(values: np.ndarray, dt, elems: int) -> np.ndarray:
    """Flat values -> (words, n32) uint32, element i of a word at bits [i*b, (i+1)*b)."""
    b = dt.bits
    codes = encode(np.asarray(values).reshape(-1, elems), dt)
    n = codes.shape[0]
    width = elems * b
    n32 = ceil(width / 32)
    bits = ((codes[:, :, None] >> np.arange(b, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    bits = bits.reshape(n, width)
    bits = np.concatenate([bits, np.zeros((n, n32 * 32 - width), np.uint8)], axis=1)
    return np.packbits(bits, axis=1, bitorder="little").view("<u4").reshape(n, n32)


def unpack(words: np.ndarray, dt, elems: int) -> np.ndarray:
    """(words, n32) uint32 -> flat integer values."""
    n = words.shape[0]
    b = dt.bits
    bits = np.unpackbits(words.astype("<u4").view(np.uint8).reshape(n, -1), axis=1,
                         bitorder="little")[:, : elems * b].reshape(n, elems, b)
    codes = (bits.astype(np.uint64) << np.arange(b, dtype=np.uint64)).sum(-1)
    return decode(codes, dt).reshape(-1)


# Verilator options of every simulator build (the runtime objects below depend on them).
VERILATOR_OPTS = ["--cc", "--exe", "-O3", "--top-module", rtl.TOP, "-Wno-fatal", "-Wno-lint",
                  "-Wno-style", "--x-assign", "fast", "--x-initial", "fast"]
# make variables: the PyPI wheel's verilated.mk leaves the PCH include flag empty; the
# runtime library is built -O2 once (see RUNTIME_OBJS).
MAKE_VARS = ["CFG_CXXFLAGS_PCH_I=-include", "OPT_GLOBAL=-O2", "OPT_SLOW=-O0"]
# g++ optimization of the model's per-cycle code (OPT_FAST). Verilator unrolls the
# datapath into straight-line C++: on wide multi-bit MVAUs (CNV-w2a2: 2.5 MB of C++)
# g++ -O1/-O2 need minutes, -Og seconds. -Og is the default ($BNNCC_RTLSIM_OPT overrides).
OPT_FAST = os.environ.get("BNNCC_RTLSIM_OPT", "-Og")
# Verilator's runtime library, identical for every design built with VERILATOR_OPTS; it
# takes most of a small design's build time, so it is compiled once and cached.
RUNTIME_OBJS = ("verilated.o", "verilated_threads.o")


def _runtime_dir() -> Path:
    key = rtl.content_hash({"opts": " ".join(VERILATOR_OPTS + MAKE_VARS)},
                           verilator_version() + "|runtime-v1")
    return cache_root() / "rtlsim" / f"runtime-{key}"


def build(files: dict[str, str], progress=None) -> Path:
    """Compile (or reuse) the simulator for this set of rtl files; returns its directory,
    which holds the .mem files the binary reads at start-up (run it there)."""
    exe_name = f"V{rtl.TOP}"
    key = rtl.content_hash(files, verilator_version() + "|rtlsim-v2|" +
                           " ".join(VERILATOR_OPTS + MAKE_VARS) + "|" + OPT_FAST)
    root = cache_root() / "rtlsim"
    final = root / key
    if (final / exe_name).exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=key + ".", dir=root))
    try:
        for name, text in files.items():
            (tmp / name).write_text(text)
        vsrc = sorted(n for n in files if n.endswith(".v"))
        exe, env = verilator_env()
        if progress:
            progress("compiling with Verilator", 0, 0)
        r = run_limited([exe, *VERILATOR_OPTS, "-Mdir", "obj", "-o", exe_name,
                         f"tb_{rtl.TOP}.cpp", *vsrc], cwd=tmp, env=env,
                        capture_output=True, text=True)
        if r.returncode != 0:
            raise RtlSimError("Verilator failed:\n" + (r.stdout + r.stderr)[-4000:])
        obj = tmp / "obj"
        runtime = _runtime_dir()
        have_runtime = all((runtime / o).is_file() for o in RUNTIME_OBJS)
        if have_runtime:           # fresh copies: newer than their sources, make keeps them
            for o in RUNTIME_OBJS:
                shutil.copyfile(runtime / o, obj / o)
        with slots(2) as s:      # make -j as many as the free tool slots
            r = subprocess.run(["make", "-j", str(s.n), "-C", str(obj), "-f",
                                f"{exe_name}.mk", *MAKE_VARS, f"OPT_FAST={OPT_FAST}",
                                exe_name], env=env, capture_output=True, text=True)
        if r.returncode != 0 or not (obj / exe_name).exists():
            raise RtlSimError("Verilator build failed:\n" + (r.stdout + r.stderr)[-4000:])
        if not have_runtime:
            rt_tmp = Path(tempfile.mkdtemp(prefix="runtime.", dir=root))
            for o in RUNTIME_OBJS:
                shutil.copyfile(obj / o, rt_tmp / o)
            try:
                os.rename(rt_tmp, runtime)
            except OSError:        # another process cached it first
                shutil.rmtree(rt_tmp, ignore_errors=True)
        shutil.move(str(obj / exe_name), str(tmp / exe_name))
        shutil.rmtree(obj, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:          # another process won the race; use theirs
            shutil.rmtree(tmp, ignore_errors=True)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def simulate(design, q: np.ndarray, backpressure: float = 0.0, input_gaps: float = 0.0,
             seed: int = 0, workdir=None, progress=None, fifo_depth: int = rtl.FIFO_DEPTH
             ) -> tuple[np.ndarray, dict]:
    """Stream the integer frames q (N, *first in_shape) through the RTL.

    Returns (outputs (N, *last out_shape) int64, stats) with stats: cycles_per_frame
    (steady state: mean interval between the completions of the later frames),
    latency_cycles (first input word accepted -> last output word of frame 0),
    stalls (cycles backpressure or input gaps held the design), total_cycles,
    cycles_per_frame_estimated.

    progress, if given, is called as progress(stage, done, total): ("compiling with
    Verilator", 0, 0) before a build, then ("simulating", frames done, frames) as the
    simulation runs."""
    files = rtl.render(design, fifo_depth)
    info = rtl.stream_info(design)
    layers = design.layers()
    first, last = layers[0], layers[-1]
    q = np.asarray(q)
    n = q.shape[0]
    if q[0].size == int(np.prod(first.in_shape)):   # the golden model reshapes the same way
        q = q.reshape((n,) + tuple(first.in_shape))
    if tuple(q.shape[1:]) != tuple(first.in_shape):
        raise RtlSimError(f"input batch shape {q.shape[1:]} != first layer in_shape {first.in_shape}")
    simdir = build(files, progress)
    own_tmp = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="bnncc_rtlsim_")) if own_tmp else Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    try:
        words = pack(q.reshape(n, -1), info["idt"], info["in_elems"])
        (wd / "in.bin").write_bytes(words.tobytes())
        n_out = n * info["out_words"]
        est = info["est_cycles"]
        watchdog = max(100 * est, 100000)
        cmd = [str(simdir / f"V{rtl.TOP}"), str(wd / "in.bin"), str(wd / "out.bin"),
               str(words.shape[0]), str(n_out), str(info["out_words"]), repr(float(backpressure)),
               repr(float(input_gaps)), str(int(seed)), str(watchdog), str(wd / "stats.json")]
        if progress:
            cmd.append("1")
            progress("simulating", 0, n)
            proc = subprocess.Popen(cmd, cwd=simdir, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            for line in proc.stdout:
                if line.startswith("progress "):
                    progress("simulating", int(line.split()[1]), n)
            err = proc.stderr.read()
            rc = proc.wait()
        else:
            r = subprocess.run(cmd, cwd=simdir, capture_output=True, text=True)
            rc, err = r.returncode, r.stderr
        if rc == 3:
            raise RtlSimError("RTL simulation deadlocked: " + err.strip())
        if rc != 0:
            raise RtlSimError(f"RTL simulation failed (exit {rc}): {err.strip()}")
        st = json.loads((wd / "stats.json").read_text())
        n32 = ceil(info["out_w"] / 32)
        raw = np.frombuffer((wd / "out.bin").read_bytes(), dtype="<u4").reshape(-1, n32)
    finally:
        if own_tmp:
            shutil.rmtree(wd, ignore_errors=True)
    if st["in_words"] != words.shape[0]:
        raise RtlSimError(f"design accepted {st['in_words']} of {words.shape[0]} input words")
    if st["out_words"] != n_out or st["extra_words"]:
        raise RtlSimError(f"design produced {st['out_words'] + st['extra_words']} output words, "
                          f"expected {n_out} ({info['out_words']} per frame)")
    y = unpack(raw, info["odt"], info["out_elems"]).reshape((n,) + tuple(last.out_shape))
    done = st["done_at"]
    if n >= 2:
        h = n // 2 if n >= 4 else 0
        cpf = (done[-1] - done[h]) / (n - 1 - h)
    else:
        cpf = float(done[0] - st["first_in"] + 1)
    stats = {"cycles_per_frame": cpf, "latency_cycles": done[0] - st["first_in"] + 1,
             "stalls": st["stalls"], "total_cycles": st["total_cycles"],
             "cycles_per_frame_estimated": est, "frames": n}
    return y.astype(np.int64), stats
