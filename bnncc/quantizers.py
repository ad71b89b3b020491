"""Float semantics of every quantizer bnncc folds into integer thresholds.

Each quantizer maps a float tensor to an integer *level* 0..nlevels-1 (monotone
non-decreasing in its input) and says which integer value and real value each level
stands for. The float arithmetic mirrors the reference executors (qonnx's numpy
implementations, ONNX Sign) operation for operation in float32, so that folding into
thresholds is exact with respect to the original model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arith import ftype
from .datatypes import DataType


def _round(x: np.ndarray, mode: str) -> np.ndarray:
    mode = mode.upper()
    if mode in ("ROUND", "HALF_EVEN"):
        return np.round(x)
    if mode == "CEIL":
        return np.ceil(x)
    if mode == "FLOOR":
        return np.floor(x)
    if mode == "UP":   # away from zero
        return np.sign(x) * np.ceil(np.abs(x))
    if mode == "DOWN":  # towards zero
        return np.fix(x)
    if mode == "HALF_UP":  # ties away from zero
        return np.sign(x) * np.floor(np.abs(x) + 0.5)
    if mode == "HALF_DOWN":  # ties towards zero
        return np.sign(x) * np.ceil(np.abs(x) - 0.5)
    raise ValueError(f"unknown rounding mode {mode}")


ROUNDING_MODES = ("ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN")


@dataclass
class Quantizer:
    """Base: `levels(y)` gives integer levels; level L stands for int value base + step*L."""

    dtype: DataType
    scale: np.ndarray        # real value = scale * (int value - zeropt); broadcastable
    zeropt: np.ndarray

    @property
    def nlevels(self) -> int:
        return (self.dtype.max - self.dtype.min + 1) if not self.dtype.is_bipolar else 2

    def levels(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def values(self, lv: np.ndarray) -> np.ndarray:
        if self.dtype.is_bipolar:
            return 2 * lv - 1
        return self.dtype.min + lv

    def reference(self, y: np.ndarray) -> np.ndarray:
        """The float output the original op computes (used by the host input stage checks)."""
        return ((self.values(self.levels(y)) - self.zeropt) * self.scale).astype(np.float32)


@dataclass
class IntQuant(Quantizer):
    """QONNX Quant: q = round(clamp(y / scale + zeropt)); clamping comes before rounding.

    With a per-channel bit width (self-compressing networks) the clamp bounds are
    per element (`qmin`, `qmax`, qonnx's min_int / max_int of each element's width, which
    for 0 bits are +-0.5 and round to 0) and `sign1` marks signed 1-bit elements, which
    are +-1 as in qonnx; `dtype` is then the union of every element's range."""

    rounding: str = "ROUND"
    qmin: np.ndarray = None
    qmax: np.ndarray = None
    sign1: np.ndarray = None

    def levels(self, y: np.ndarray) -> np.ndarray:
        f32 = ftype()
        q = np.asarray(y, f32) / self.scale.astype(f32) + self.zeropt.astype(f32)
        if self.qmin is not None:
            return self._levels_per_element(q)
        if self.dtype.is_bipolar:   # 1-bit signed Quant behaves as bipolar in qonnx
            return (q >= 0).astype(np.int64)
        q = np.where(q > self.dtype.max, f32(self.dtype.max), q)
        q = np.where(q < self.dtype.min, f32(self.dtype.min), q)
        q = _round(q, self.rounding)
        return q.astype(np.int64) - self.dtype.min

    def _levels_per_element(self, q: np.ndarray) -> np.ndarray:
        f32 = ftype()
        hi, lo = self.qmax.astype(f32), self.qmin.astype(f32)
        r = np.where(q > hi, hi, q)
        r = np.where(r < lo, lo, r)
        r = _round(r, self.rounding)
        r = np.where(self.sign1, np.where(q >= 0, f32(1), f32(-1)), r)
        if self.dtype.is_bipolar:
            return (r > 0).astype(np.int64)
        return r.astype(np.int64) - self.dtype.min


def int_bounds(bits: np.ndarray, signed: bool, narrow: bool) -> tuple[np.ndarray, np.ndarray]:
    """qonnx's min_int / max_int, element by element, as floats (0 bits gives +-0.5)."""
    b = np.asarray(bits, np.float64)
    if signed:
        lo = -(2.0 ** (b - 1)) + (1 if narrow else 0)
        hi = 2.0 ** (b - 1) - 1
    else:
        lo = np.zeros_like(b)
        hi = 2.0 ** b - (2 if narrow else 1)
    return lo, hi


def per_element_int_quant(scale, zeropt, bits, signed: bool, narrow: bool,
                          rounding: str) -> IntQuant:
    """An IntQuant with one bit width per element (broadcast to scale's shape)."""
    from .datatypes import DataType
    bits = np.broadcast_to(np.asarray(bits, np.float64), np.shape(scale)).copy()
    lo, hi = int_bounds(bits, signed, narrow)
    sign1 = (bits == 1) & signed
    # every element's reachable integers: clamp to [lo, hi] (or always lo when lo > hi)
    e_lo = _round(lo.astype(np.float32), rounding)
    e_hi = _round(np.where(lo > hi, lo, hi).astype(np.float32), rounding)
    e_lo, e_hi = np.where(sign1, -1, e_lo), np.where(sign1, 1, e_hi)
    if np.all(sign1):
        dtype = DataType.bipolar()
    else:
        dtype = DataType.for_range(int(e_lo.min()), int(e_hi.max()))
    return IntQuant(dtype, scale, zeropt, rounding, qmin=lo, qmax=hi, sign1=sign1)


@dataclass
class BipolarQuant(Quantizer):
    """QONNX BipolarQuant: +scale where y >= 0, else -scale."""

    def levels(self, y: np.ndarray) -> np.ndarray:
        return (np.asarray(y, ftype()) >= 0).astype(np.int64)


@dataclass
class SignQuant(Quantizer):
    """ONNX Sign: -1, 0, +1. Becomes bipolar when no accumulator value lands on zero."""

    def levels(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, ftype())
        return (y >= 0).astype(np.int64) + (y > 0).astype(np.int64)


@dataclass
class FloatThresholds(Quantizer):
    """FINN MultiThreshold: level = #{j : y >= T[c, j]} (thresholds per channel)."""

    thresholds: np.ndarray = None   # broadcastable to (..., nT) against y[..., None]

    @property
    def nlevels(self) -> int:
        return self.thresholds.shape[-1] + 1

    def levels(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, ftype())[..., None]
        return (y >= self.thresholds.astype(ftype())).sum(-1).astype(np.int64)


@dataclass
class StepQuant(Quantizer):
    """A comparison as a 1-bit quantizer: level 1 where y >= t (y > t when strict), as
    tutorials write sign, e.g. torch.where(x >= 0, 1, -1) (sign(0) = +1)."""

    threshold: np.ndarray = None
    strict: bool = False

    def levels(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, ftype())
        t = np.asarray(self.threshold, ftype())
        return (y > t if self.strict else y >= t).astype(np.int64)


@dataclass
class TruncQuant(Quantizer):
    """QONNX Trunc (5-input v1 and 6-input v2): drop low bits of an integer-valued input."""

    in_scale: np.ndarray = None
    in_zeropt: np.ndarray = None
    trunc_scale: np.ndarray = None   # power of two
    rounding: str = "FLOOR"
    clamp: bool = True               # v2 clamps to the output range, v1 does not

    def levels(self, y: np.ndarray) -> np.ndarray:
        f32 = ftype()
        q = np.asarray(y, f32) / self.in_scale.astype(f32) + self.in_zeropt.astype(f32)
        q = np.round(q) / self.trunc_scale.astype(f32)
        if self.clamp:
            q = np.where(q > self.dtype.max, f32(self.dtype.max), q)
            q = np.where(q < self.dtype.min, f32(self.dtype.min), q)
        q = _round(q, self.rounding)
        q = np.clip(q, self.dtype.min, self.dtype.max)
        return q.astype(np.int64) - self.dtype.min


@dataclass
class LinearQuant(Quantizer):
    """ONNX QuantizeLinear: q = saturate(round_half_even(y / scale) + zero_point)."""

    def levels(self, y: np.ndarray) -> np.ndarray:
        f32 = ftype()
        q = np.round(np.asarray(y, f32) / self.scale.astype(f32)) + self.zeropt.astype(f32)
        q = np.clip(q, self.dtype.min, self.dtype.max)
        return q.astype(np.int64) - self.dtype.min


@dataclass
class FixedInput(Quantizer):
    """A declared input type (no quantizer in the model): q = round_half_even(x / scale).
    Values outside the type's range are an error, not clamped."""

    def levels(self, y: np.ndarray) -> np.ndarray:
        q = np.round(np.asarray(y, np.float64) / np.asarray(self.scale, np.float64))
        if self.dtype.is_bipolar:
            if np.any((q != 1) & (q != -1)):
                bad = np.asarray(y)[(q != 1) & (q != -1)].ravel()[:3]
                raise ValueError(f"input values {bad.tolist()} are not BIPOLAR (+-1)")
            return (q > 0).astype(np.int64)
        if np.any(q < self.dtype.min) or np.any(q > self.dtype.max):
            bad = np.asarray(y)[(q < self.dtype.min) | (q > self.dtype.max)].ravel()[:3]
            raise ValueError(f"input values {bad.tolist()} are outside the declared input "
                             f"type {self.dtype} x {float(np.ravel(self.scale)[0]):g}")
        return q.astype(np.int64) - self.dtype.min


def parse_dtype(name: str) -> DataType:
    """BIPOLAR, BINARY, INTn, UINTn (FINN / QONNX datatype names)."""
    import re
    n = name.strip().upper()
    if n == "BIPOLAR":
        return DataType.bipolar()
    if n == "BINARY":
        return DataType.uint(1)
    m = re.fullmatch(r"(U?INT)(\d+)", n)
    if not m or not 1 <= int(m.group(2)) <= 64:
        raise ValueError(f"unknown integer type '{name}' (BIPOLAR, BINARY, INTn, UINTn)")
    return (DataType.uint if m.group(1) == "UINT" else DataType.int)(int(m.group(2)))
