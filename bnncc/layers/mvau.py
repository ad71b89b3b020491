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
from .thresholding import apply_thresholds


def _pack_bits(v: np.ndarray) -> np.ndarray:
    """Bipolar values (..., K) -> uint64 words (..., ceil(K/64)), bit 1 = +1, zero-padded."""
    bits = (v > 0).astype(np.uint8)
    k = bits.shape[-1]
    pad = (-k) % 64
    if pad:
        bits = np.concatenate([bits, np.zeros(bits.shape[:-1] + (pad,), np.uint8)], -1)
    packed = np.packbits(bits, axis=-1, bitorder="little")
    return packed.view(np.uint64)


def xnor_popcount(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """#positions where bipolar x (R, K) equals bipolar w (M, K) -> (R, M), bit-packed."""
    k = x.shape[-1]
    xp, wp = _pack_bits(x), _pack_bits(w)
    out = np.empty((xp.shape[0], wp.shape[0]), dtype=np.int64)
    chunk = max(1, (1 << 22) // max(1, wp.shape[0] * wp.shape[1]))
    for i in range(0, xp.shape[0], chunk):
        diff = np.bitwise_count(xp[i:i + chunk, None, :] ^ wp[None, :, :]).sum(-1, dtype=np.int64)
        out[i:i + chunk] = k - diff   # padding bits are 0 in both, never differ
    return out


def int_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact integer x (R, K) @ w.T (M, K): float64 BLAS when no partial sum can exceed
    2**53, otherwise int64 arithmetic."""
    bound = float(np.abs(x).max(initial=0)) * float(np.abs(w).sum(1).max(initial=0))
    if bound < 2.0 ** 53:
        return (x.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int64)
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

    def accumulate(self, x: np.ndarray) -> np.ndarray:
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.mw)
        acc = xnor_popcount(flat, self.weights) if self.binary else int_matmul(flat, self.weights)
        return acc.reshape(lead + (self.mh,))

    def execute(self, x: np.ndarray) -> np.ndarray:
        acc = self.accumulate(x)
        if self.thresholds is None:
            return acc
        return apply_thresholds(acc, self.thresholds, self.odt)

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
