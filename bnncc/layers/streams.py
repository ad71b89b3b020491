"""Layers that join or split streams: residual adds, channel concatenation, and the
duplication of a stream that feeds two consumers."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..datatypes import DataType
from ..ir import Layer
from .bits import unpacked


@dataclass
class AddStreams(Layer):
    """out = ka * a + kb * b, elementwise. ka / kb is the exact ratio of the two inputs'
    real scales, so the sum is exact in integers (a residual add)."""

    idt_b: DataType = None
    ka: int = 1
    kb: int = 1
    inputs: list = field(default_factory=list)   # [producer of a, producer of b]
    pe: int = 1
    kind = "AddStreams"

    def execute(self, a, b) -> np.ndarray:
        a, b = unpacked(a).astype(np.int64), unpacked(b).astype(np.int64)
        return (self.ka * a + self.kb * b).astype(self.odt.np_dtype)

    def describe(self) -> dict:
        return {"ka": self.ka, "kb": self.kb, "idt_b": str(self.idt_b)}

    def cycles(self) -> int:
        return int(np.prod(self.in_shape)) // self.pe


@dataclass
class Concat(Layer):
    """Channel concatenation: each output pixel is a's channels, then b's."""

    idt_b: DataType = None
    channels: tuple = ()                          # channels of each input
    inputs: list = field(default_factory=list)
    kind = "Concat"

    @property
    def in_shapes(self) -> list[tuple]:
        return [tuple(self.in_shape[:-1]) + (c,) for c in self.channels]

    def execute(self, *xs) -> np.ndarray:
        parts = [unpacked(x).astype(self.odt.np_dtype) for x in xs]
        return np.concatenate(parts, axis=-1)

    def describe(self) -> dict:
        return {"channels": list(self.channels)}

    def cycles(self) -> int:
        return int(np.prod(self.out_shape))


@dataclass
class Duplicate(Layer):
    """Copies one stream to `n` consumers (inserted before hardware backends)."""

    n: int = 2
    pe: int = 1
    kind = "Duplicate"

    def execute(self, x):
        return x

    def describe(self) -> dict:
        return {"outputs": self.n}

    def cycles(self) -> int:
        return int(np.prod(self.in_shape)) // self.pe
