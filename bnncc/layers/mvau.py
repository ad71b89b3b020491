"""Matrix-vector-activation unit: fully connected layers and (after sliding-window
lowering) convolutions.

Weights are an MH x MW integer matrix whose columns follow the input stream order.
Binary mode (bipolar inputs and weights) computes the popcount of XNOR(x, w), which
equals (dot + MW) / 2, so the accumulator range is [0, MW] and thresholds are on the
popcount. Otherwise the accumulator is the integer dot product. With thresholds the unit
emits activations, without it emits raw accumulators (the last layer).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..datatypes import DataType
from ..ir import Layer
from .bits import Packed, pack_bits, unpacked
from .thresholding import apply_thresholds


def xnor_popcount(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """#positions where bipolar x (R, K) equals bipolar w (M, K) -> (R, M), bit-packed.
    x may already be packed words (R, ceil(K/64)); K is taken from w."""
    k = w.shape[-1]
    xp = x if x.dtype == np.uint64 else pack_bits(x)
    wp = pack_bits(w)
    out = np.empty((xp.shape[0], wp.shape[0]), dtype=np.int64)
    chunk = max(1, (1 << 22) // max(1, wp.shape[0] * wp.shape[1]))
    for i in range(0, xp.shape[0], chunk):
        diff = np.bitwise_count(xp[i:i + chunk, None, :] ^ wp[None, :, :]).sum(-1, dtype=np.int64)
        out[i:i + chunk] = k - diff   # padding bits are 0 in both, never differ
    return out


def _fits16(a: np.ndarray) -> bool:
    return a.size == 0 or (int(a.min()) >= -(1 << 15) and int(a.max()) < (1 << 15))


def int_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact integer x (R, K) @ w.T (M, K). Uses float BLAS when no partial sum can leave
    the float's exact integer range (2**24, 2**53); the result then holds exact integers
    in a float array, which compares exactly against integer thresholds."""
    bound = float(np.abs(x).max(initial=0)) * float(np.abs(w).sum(1).max(initial=0))
    if bound < 2.0 ** 31 and _fits16(x) and _fits16(w):
        from ..kernels import int_gemm_c
        fast = int_gemm_c(x, np.ascontiguousarray(w.T, dtype=np.int16))
        if fast is not None:
            return fast
    if bound < 2.0 ** 24:
        return x.astype(np.float32) @ w.T.astype(np.float32)
    if bound < 2.0 ** 53:
        return x.astype(np.float64) @ w.T.astype(np.float64)
    return x.astype(np.int64) @ w.T.astype(np.int64)


@dataclass
class MVAU(Layer):
    weights: np.ndarray = None      # (MH, MW) int64 values (bipolar stored as -1/+1)
    wdt: DataType = None
    binary: bool = False            # XNOR-popcount mode
    accdt: DataType = None          # exact accumulator range
    thresholds: np.ndarray = None   # (MH, nT) int64 or None: raw accumulator out
    tdt: DataType = None
    pe: int = 1
    simd: int = 1
    # provenance for checks and reports: real value of the matmul output as a function
    # of the accumulator of the *original* weights, (mul, add) per channel, and which
    # channels threshold folding flipped (their weights are negated / bits inverted)
    real_of_acc: tuple = None
    negated: np.ndarray = None
    const_channels: int = 0
    kind = "MVAU"

    @property
    def mh(self) -> int:
        return self.weights.shape[0]

    @property
    def mw(self) -> int:
        return self.weights.shape[1]

    @property
    def pixels(self) -> int:
        """Output vectors per frame: 1 for a fully connected layer, OH*OW for a conv."""
        return int(np.prod(self.in_shape[:-1])) if len(self.in_shape) > 1 else 1

    def accumulate(self, x) -> np.ndarray:
        lead = x.shape[:-1]
        if self.binary:
            flat = x.words.reshape(-1, x.words.shape[-1]) if isinstance(x, Packed) \
                else x.reshape(-1, self.mw)
            acc = xnor_popcount(flat, self.weights)
        else:
            acc = int_matmul(unpacked(x).reshape(-1, self.mw), self.weights)
        return acc.reshape(lead + (self.mh,))

    def execute(self, x):
        if self.binary:
            fast = self._execute_fast(x)
            if fast is not None:
                return fast
        acc = self.accumulate(x)
        if self.thresholds is None:
            return acc.astype(np.int64)
        out = apply_thresholds(acc, self.thresholds, self.odt)
        if self.odt.is_bipolar and self.mh % 64 == 0:
            return Packed(pack_bits(out), self.mh)
        return out

    def _packed_weights(self) -> np.ndarray:
        """Packed, transposed weights, recomputed only if the weights object changes."""
        cache = self.__dict__.get("_wt_cache")
        if cache is None or cache[0] is not self.weights:
            cache = (self.weights, np.ascontiguousarray(pack_bits(self.weights).T))
            self.__dict__["_wt_cache"] = cache
        return cache[1]

    def _execute_fast(self, x):
        """The same XNOR-popcount through the compiled kernel (bnncc/kernels.py)."""
        from ..kernels import xnor_popcount_c, xnor_popcount_sign_c
        lead = x.shape[:-1]
        xp = x.words if isinstance(x, Packed) else pack_bits(x)
        xp = xp.reshape(-1, xp.shape[-1])
        wt = self._packed_weights()
        if self.thresholds is not None and self.odt.is_bipolar:
            words = xnor_popcount_sign_c(xp, wt, self.thresholds[:, 0], self.mw)
            if words is None:
                return None
            out = Packed(words.reshape(lead + (words.shape[-1],)), self.mh)
            return out if self.mh % 64 == 0 else out.unpack()
        acc = xnor_popcount_c(xp, wt, self.mw)
        if acc is None:
            return None
        acc = acc.reshape(lead + (self.mh,))
        return acc if self.thresholds is None else apply_thresholds(acc, self.thresholds, self.odt)

    def describe(self) -> dict:
        return {
            "MH": self.mh, "MW": self.mw, "wdt": str(self.wdt),
            "mode": "xnor-popcount" if self.binary else "multiply",
            "accdt": str(self.accdt),
            "thresholds": 0 if self.thresholds is None else self.thresholds.shape[1],
            **({"tdt": str(self.tdt)} if self.thresholds is not None else {}),
            **({"flipped": int(self.negated.sum())} if self.negated is not None else {}),
            **({"const_channels": self.const_channels} if self.const_channels else {}),
        }

    def cycles(self) -> int:
        return (self.mh // self.pe) * (self.mw // self.simd) * self.pixels

    def weight_tiles(self) -> np.ndarray:
        """(PE, MH/PE * MW/SIMD, SIMD) weight values as each PE reads them: PE p owns rows
        nf * PE + p; address nf * (MW/SIMD) + sf holds columns sf*SIMD .. sf*SIMD+SIMD-1."""
        nf, sf = self.mh // self.pe, self.mw // self.simd
        w = self.weights.reshape(nf, self.pe, sf, self.simd)
        return w.transpose(1, 0, 2, 3).reshape(self.pe, nf * sf, self.simd)

    def threshold_tiles(self) -> np.ndarray:
        """(PE, MH/PE, nT) thresholds: PE p, address nf holds row nf * PE + p."""
        nf = self.mh // self.pe
        t = self.thresholds
        return t.reshape(nf, self.pe, t.shape[1]).transpose(1, 0, 2)
