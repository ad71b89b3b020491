"""The weight-matrix geometry the MVAU and the VVAU share."""
from __future__ import annotations

import numpy as np


class WeightMatrix:
    """A layer with an (MH output channels x MW columns) integer weight matrix applied to
    every pixel of its input (one pixel for a fully connected layer)."""

    @property
    def mh(self) -> int:
        return self.weights.shape[0]

    @property
    def mw(self) -> int:
        """Columns of one output channel's weight row (what a binary popcount counts)."""
        return self.weights.shape[1]

    @property
    def pixels(self) -> int:
        """Output vectors per frame: 1 for a fully connected layer, OH*OW for a conv."""
        return int(np.prod(self.in_shape[:-1])) if len(self.in_shape) > 1 else 1
