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
        """Per row: LABELS / PE words in, one word a cycle; the k labels of a row go out
        while the next row (or frame) is read, so a row waits only if it is shorter than k."""
        rows = int(np.prod(self.in_shape[:-1])) if len(self.in_shape) > 1 else 1
        return rows * max(self.labels // self.pe, self.k)

    # ------------------------------------------------------------------ resource model
    def features(self, style=None) -> tuple[list, list]:
        from .cost import fifo_resources, ubits
        vw = self.idt.bits + 1
        ixw = ubits(self.labels)
        fifo = fifo_resources(self.odt.bits, 2)
        lut = [self.pe * self.k * vw, self.pe * self.k * (vw + ixw + 1), self.k * ixw,
               fifo["LUT"] + 2 * ixw, 1.0]
        ff = [self.k * (vw + ixw + 1) + ixw + ubits(self.k - 1) + 1 + fifo["FF"], 1.0]
        return lut, ff

    def resources(self, mem_style: str | None = None) -> dict:
        """templates/rtl/labelselect.v.j2: a sorted list of k (value, index) registers
        and a PE x k insertion network of comparators and muxes."""
        from .cost import res
        fl, ff = self.features()
        return res(LUT=sum(c * f for c, f in zip(LABEL_LUT, fl)),
                   FF=sum(c * f for c, f in zip(LABEL_FF, ff)))

    def held_words(self) -> int:
        return self.labels // self.pe + 2

    def tree_levels(self) -> list[int]:
        """Lists per level of the registered merge tree of templates/rtl/labelselect.v.j2:
        level k merges pairs of level k-1, from PE lane lists down to one."""
        out, n = [], self.pe
        while n > 1:
            n = -(-n // 2)
            out.append(n)
        return out

    def pipeline_latency(self) -> int:
        """templates/rtl/labelselect.v.j2: the merge tree's registers, then the sorted
        indices once after the last input word (`oi`), then it emits them."""
        return len(self.tree_levels()) + 1

    def fill_drain(self) -> tuple[int, int]:
        """Every label before the first index; then the k indices."""
        return self.labels // self.pe, self.k


from .cost import coef  # noqa: E402

LABEL_LUT, LABEL_FF = coef("LABEL")
