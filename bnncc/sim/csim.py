"""C simulation: the generated HLS project compiled with g++ and run on a batch.

`simulate(design, q)` emits the project (bnncc.backends.hls), compiles it once per distinct
set of sources (binaries cached by content hash under $BNNCC_CACHE or ~/.cache/bnncc),
streams all frames through one process run, and returns the last layer's integer outputs
plus every layer's output stream, decoded. The testbench runs both the dataflow top
(the outputs) and the layers one by one (the trace) and checks that the two agree.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import BnnccError, VerificationMismatch
from ..backends import hls
from ..datatypes import DataType
from ..streams import decode, encode

CXX = os.environ.get("CXX", "g++")


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
    return Path(os.environ.get("BNNCC_CACHE") or Path.home() / ".cache" / "bnncc") / "csim"


def _cxx_version() -> str:
    try:
        return subprocess.run([CXX, "--version"], capture_output=True, text=True).stdout
    except OSError as e:
        raise BnnccError(f"C++ compiler '{CXX}' not found: {e}")


def compile_cmds(srcdir: Path, exe: Path, flags: str = hls.CXXFLAGS) -> list[list[str]]:
    """Two compiles (run in parallel) and a link."""
    inc = ["-isystem", str(ap_include()), "-I", str(srcdir)]
    objs = [srcdir / "top.o", srcdir / "tb.o"]
    return [[CXX, *flags.split(), *inc, "-c", str(srcdir / "top.cpp"), "-o", str(objs[0])],
            [CXX, *flags.split(), *inc, "-c", str(srcdir / "tb.cpp"), "-o", str(objs[1])],
            [CXX, *flags.split(), *map(str, objs), "-o", str(exe)]]


def _run_all(cmds: list[list[str]]) -> None:
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in cmds]
    errs = [p.communicate()[1] for p in procs]
    for p, err in zip(procs, errs):
        if p.returncode != 0:
            raise BnnccError("g++ failed on the generated HLS C++:\n" + err[-4000:])


def build(files: dict[str, bytes], flags: str = hls.CXXFLAGS) -> Path:
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
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="build-", dir=entry.parent))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        *compiles, link = compile_cmds(tmp, tmp / "tb", flags)
        _run_all(compiles)
        _run_all([link])
        for p in tmp.iterdir():       # keep only the binary
            if p.name != "tb":
                p.unlink()
        try:
            tmp.rename(entry)         # atomic publish; a concurrent build may have won
        except OSError:
            pass
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if not exe.is_file():
        raise BnnccError(f"csim build did not produce {exe}")
    return exe


# -- word files (format documented in templates/hls/tb.cpp.j2) -----------------------------

def words_to_bytes(values: np.ndarray, dt: DataType, elems: int, word_bits: int) -> bytes:
    """Integer values (flat, frames back to back) -> word file contents: `elems` elements
    of dt.bits per word, each word ceil(word_bits/8) bytes, least significant byte first."""
    codes = encode(np.asarray(values).reshape(-1, elems), dt)
    shifts = np.arange(dt.bits, dtype=np.uint64)
    bits = ((codes[..., None] >> shifts) & np.uint64(1)).astype(np.uint8).reshape(len(codes), -1)
    nbytes = (word_bits + 7) // 8
    pad = np.zeros((len(codes), 8 * nbytes - bits.shape[1]), np.uint8)
    return np.packbits(np.concatenate([bits, pad], 1), axis=1, bitorder="little").tobytes()


def bytes_to_values(data: bytes, dt: DataType, elems: int, word_bits: int) -> np.ndarray:
    """Word file contents -> flat integer values (int64)."""
    nbytes = (word_bits + 7) // 8
    raw = np.frombuffer(data, np.uint8)
    if raw.size % nbytes:
        raise BnnccError(f"word file of {raw.size} bytes is not a whole number of "
                         f"{nbytes}-byte words")
    bits = np.unpackbits(raw.reshape(-1, nbytes), axis=1, bitorder="little")
    bits = bits[:, :elems * dt.bits].reshape(-1, elems, dt.bits).astype(np.uint64)
    codes = (bits << np.arange(dt.bits, dtype=np.uint64)).sum(-1, dtype=np.uint64)
    return decode(codes, dt).reshape(-1)


def simulate(design, q: np.ndarray, workdir=None, trace: bool = True
             ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run the C simulation on the integer batch q (N, *first layer in_shape).

    Returns the last layer's outputs (N, *out_shape) int64 and, with trace=True, a dict
    layer name -> (N, *out_shape) int64 of every layer's output stream."""
    files = hls.render(design)
    exe = build(files)
    layers = hls.chain(design)
    ctxs = hls.layer_contexts(design)
    first, last = layers[0], layers[-1]
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
        c0 = ctxs[0]
        (wd / "in.bin").write_bytes(words_to_bytes(q, first.idt, c0["in_elems"],
                                                   8 * ((c0["in_bits"] + 7) // 8)))
        args = [str(exe), str(wd / "in.bin"), str(n), str(wd)] + ([] if trace else ["--no-trace"])
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            raise (VerificationMismatch if r.returncode == 3 else BnnccError)(
                f"C simulation failed (exit {r.returncode}): {r.stderr.strip()[-2000:]}")
        cl = ctxs[-1]
        out = bytes_to_values((wd / "out.bin").read_bytes(), last.odt, cl["out_elems"],
                              8 * ((cl["out_bits"] + 7) // 8))
        out = out.reshape((n,) + tuple(last.out_shape))
        tr: dict[str, np.ndarray] = {}
        if trace:
            for layer, c in zip(layers, ctxs):
                data = (wd / f"trace_{c['name']}.bin").read_bytes()
                v = bytes_to_values(data, layer.odt, c["out_elems"], c["out_bits"])
                tr[layer.name] = v.reshape((n,) + tuple(layer.out_shape))
        return out, tr
    finally:
        if own:
            shutil.rmtree(wd, ignore_errors=True)
