"""Stream width converter: regroups a stream of `in_elems`-element words into
`out_elems`-element words. Inserted by folding wherever a producer's output word and its
consumer's input word hold different numbers of elements. Values pass unchanged."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Layer


@dataclass
class WidthConverter(Layer):
    in_elems: int = 1
    out_elems: int = 1
    kind = "WidthConverter"

    def execute(self, x: np.ndarray) -> np.ndarray:
        return x

    def describe(self) -> dict:
        return {"in_elems": self.in_elems, "out_elems": self.out_elems}

    @property
    def elems(self) -> int:
        return int(np.prod(self.in_shape))

    def cycles(self) -> int:
        return self.elems // min(self.in_elems, self.out_elems)
