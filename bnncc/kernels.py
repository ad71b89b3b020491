"""Optional compiled kernels for the golden model's matrix products.

The pure NumPy path (bnncc.layers.mvau) is always available and is the definition; this
C version of the same integer computations is built once with the system C compiler
(cached by source hash) and only used to make the golden model fast. Set
BNNCC_NO_CKERNEL=1 to force NumPy.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .resources import cache_dir

import numpy as np

_SRC = Path(__file__).parent / "_kernels" / "popcount.c"
_lib = None
_tried = False


def _build() -> ctypes.CDLL | None:
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        return None
    src = _SRC.read_bytes()
    tag = hashlib.sha256(src + cc.encode()).hexdigest()[:16]
    so = cache_dir() / f"popcount-{tag}.so"
    if not so.exists():
        with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
            out = Path(tmp) / so.name
            # single-threaded on purpose: OpenMP spin-waits collapse on a loaded machine
            for flags in (["-march=native"], []):
                r = subprocess.run([cc, "-O3", *flags, "-shared", "-fPIC",
                                    str(_SRC), "-o", str(out)], capture_output=True)
                if r.returncode == 0:
                    os.replace(out, so)
                    break
            else:
                return None
    lib = ctypes.CDLL(str(so))
    p = np.ctypeslib.ndpointer
    lib.xnor_popcount.argtypes = [p(np.uint64, flags="C"), p(np.uint64, flags="C"),
                                  p(np.int64, flags="C")] + [ctypes.c_long] * 4
    lib.xnor_popcount_sign.argtypes = [p(np.uint64, flags="C"), p(np.uint64, flags="C"),
                                       p(np.int64, flags="C"), p(np.uint64, flags="C")] + \
        [ctypes.c_long] * 4
    lib.int_gemm.argtypes = [p(np.int16, flags="C"), p(np.int16, flags="C"),
                             p(np.int32, flags="C")] + [ctypes.c_long] * 3
    return lib


_numpy_only = 0


class numpy_only:
    """Within this block the golden model uses NumPy only (no kernel build, nothing
    written to the cache): for the few frames `bnncc compile` runs."""

    def __enter__(self):
        global _numpy_only
        _numpy_only += 1

    def __exit__(self, *exc):
        global _numpy_only
        _numpy_only -= 1


def _get():
    global _lib, _tried
    if os.environ.get("BNNCC_NO_CKERNEL") or (_numpy_only and not _tried):
        return None
    if not _tried:
        _tried = True
        try:
            _lib = _build()
        except OSError:
            _lib = None
    return _lib


def xnor_popcount_c(xp: np.ndarray, wt: np.ndarray, k: int) -> np.ndarray | None:
    """Packed rows (R, W) x packed transposed weights (W, M) -> (R, M) agreements."""
    lib = _get()
    if lib is None:
        return None
    xp = np.ascontiguousarray(xp)
    out = np.empty((xp.shape[0], wt.shape[1]), np.int64)
    lib.xnor_popcount(xp, wt, out, xp.shape[0], wt.shape[1], xp.shape[1], k)
    return out


def xnor_popcount_sign_c(xp, wt, t, k: int) -> np.ndarray | None:
    """As above, then bit j = (agreements >= t[j]), packed into (R, ceil(M/64)) words."""
    lib = _get()
    if lib is None:
        return None
    xp = np.ascontiguousarray(xp)
    m = wt.shape[1]
    out = np.empty((xp.shape[0], (m + 63) // 64), np.uint64)
    lib.xnor_popcount_sign(xp, wt, np.ascontiguousarray(t, dtype=np.int64), out,
                           xp.shape[0], m, xp.shape[1], k)
    return out


def int_gemm_c(x: np.ndarray, wt: np.ndarray) -> np.ndarray | None:
    """int16 rows (R, K) x int16 transposed weights (K, M) -> int32 (R, M); the caller
    guarantees every partial sum fits in 32 bits."""
    lib = _get()
    if lib is None:
        return None
    x = np.ascontiguousarray(x, dtype=np.int16)
    out = np.empty((x.shape[0], wt.shape[1]), np.int32)
    lib.int_gemm(x, wt, out, x.shape[0], wt.shape[1], x.shape[1])
    return out
