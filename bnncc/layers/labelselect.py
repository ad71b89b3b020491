"""Top-k label select: the indices of the k largest values, largest first; ties go to
the lower index (ONNX TopK / ArgMax semantics)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Layer
from .bits import unpacked


@dataclass
class LabelSelect(Layer):
    k: int = 1
    pe: int = 1
    kind = "LabelSelect"

    @property
    def labels(self) -> int:
        return self.in_shape[-1]

    def execute(self, x) -> np.ndarray:
        x = unpacked(x)
        order = np.argsort(-x, axis=-1, kind="stable")
        return order[..., : self.k].astype(np.int64)

    def describe(self) -> dict:
        return {"k": self.k, "labels": self.labels}

    def cycles(self) -> int:
        return self.labels // self.pe
