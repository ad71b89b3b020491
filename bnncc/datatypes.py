"""Integer datatypes with exact value ranges.

Bipolar values {-1, +1} are stored as one bit (1 means +1). Narrow signed types are
ordinary signed types whose minimum is one above the two's complement minimum; the range
is what matters for accumulator sizing, the bit width for storage.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DataType:
    kind: str   # "BIPOLAR" | "INT" | "UINT"
    bits: int
    min: int
    max: int

    @staticmethod
    def bipolar() -> "DataType":
        return DataType("BIPOLAR", 1, -1, 1)

    @staticmethod
    def int(bits: int, narrow: bool = False) -> "DataType":
        lo = -(1 << (bits - 1))
        return DataType("INT", bits, lo + 1 if narrow else lo, (1 << (bits - 1)) - 1)

    @staticmethod
    def uint(bits: int, narrow: bool = False) -> "DataType":
        hi = (1 << bits) - 1
        return DataType("UINT", bits, 0, hi - 1 if narrow else hi)

    @staticmethod
    def for_range(lo: int, hi: int) -> "DataType":
        """Narrowest INT/UINT holding every value in [lo, hi] (exact range kept)."""
        lo, hi = int(lo), int(hi)
        if lo >= 0:
            bits = max(1, int(hi).bit_length())
            return DataType("UINT", bits, lo, hi)
        bits = max(int(hi).bit_length(), int(-lo - 1).bit_length()) + 1
        return DataType("INT", bits, lo, hi)

    @staticmethod
    def for_values(values: np.ndarray) -> "DataType":
        v = np.asarray(values)
        lo, hi = (int(v.min()), int(v.max())) if v.size else (0, 0)
        if set(np.unique(v).tolist()) <= {-1, 1} and lo == -1:
            return DataType.bipolar()
        return DataType.for_range(lo, hi)

    @property
    def signed(self) -> bool:
        return self.kind != "UINT"

    @property
    def is_bipolar(self) -> bool:
        return self.kind == "BIPOLAR"

    @property
    def name(self) -> str:
        base = "BIPOLAR" if self.is_bipolar else f"{self.kind}{self.bits}"
        full = (DataType.bipolar() if self.is_bipolar else
                DataType.int(self.bits) if self.kind == "INT" else DataType.uint(self.bits))
        if (self.min, self.max) != (full.min, full.max):
            base += f"[{self.min}..{self.max}]"
        return base

    def __str__(self) -> str:
        return self.name

    def contains(self, values: np.ndarray) -> bool:
        v = np.asarray(values)
        ok = bool(np.all((v >= self.min) & (v <= self.max)))
        return ok and (not self.is_bipolar or not np.any(v == 0))

    @property
    def np_dtype(self):
        """Smallest NumPy integer type holding every value (golden tensors use it)."""
        for t in (np.int8, np.int16, np.int32):
            if np.iinfo(t).min <= self.min and self.max <= np.iinfo(t).max:
                return t
        return np.int64

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "bits": self.bits,
                "min": self.min, "max": self.max}
