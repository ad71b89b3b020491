"""Zero padding of bipolar activations, exactly: border classes and accumulator corrections.

A bipolar stream has no code for 0, so a zero-padded convolution over +-1 activations
cannot be streamed as it is written. The sliding window pads with the code -1 (bit 0)
instead, and the MVAU starts each output's accumulation from a per-(class, channel)
correction rather than from 0. The identity, for one output pixel and one output
channel with weights w_i over the window positions i, and P the window positions that
fall outside the image (the padded ones):

    true dot  d  = sum_{i not in P} w_i x_i                (x_i = 0 on P)
    hw dot    d' = sum_{i not in P} w_i x_i + sum_{i in P} w_i * (-1) = d - S_P,
                   S_P = sum_{i in P} w_i

so d = d' + S_P, and S_P depends only on P and the channel. P is fixed by which rows and
columns of the window leave the image, i.e. by the output pixel's *border class*: the
pair (row class, column class), where output rows with the same set of out-of-image
kernel rows share a row class (for a 3x3 window with pads 1 and stride 1: top, interior,
bottom, so 3 x 3 = 9 classes). In an XNOR-popcount MVAU the accumulator is the popcount
p = (d + MW) / 2, so p_true = p' + S_P / 2; S_P has the parity of |P| (a sum of |P|
values +-1), which is even whenever the number of input channels is even, because
|P| = (padded window pixels) * C. A layer with an odd |P| in some class runs on the
add/sub (multiply-mode) datapath instead, where the correction S_P is always an integer.

Hence the hardware computes the exact accumulator of the zero-padded convolution, and
everything after it (thresholds, max pooling, raw outputs, widths) is unchanged: the
corrected accumulator ranges over a subset of the unpadded range, and every partial sum
on the way stays inside it too (a partial sum is the true partial sum over the valid
positions seen so far plus S over the padded positions not yet seen, each bounded by the
sum of |w| over its positions; in popcount form it may dip to -MW/2, which the signed
accumulator holds). A channel that threshold folding flips (negated weights, or
inverted bits) gets the negated correction, since the corrections are derived from the
weights the layer holds. Cost: one ROM of NCLS x MH small corrections read once per
output and a mux at the accumulator's first input; no extra adder, no change to the
threshold memory or the popcount datapath.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def axis_classes(n_in: int, n_out: int, k: int, stride: int, pad_lo: int) -> tuple[np.ndarray, list]:
    """Per output index along one axis: its class id, and per class the kernel offsets
    that fall outside [0, n_in). Class ids follow first appearance along the axis."""
    ids, sets = np.zeros(n_out, np.int64), []
    for o in range(n_out):
        out = tuple(d for d in range(k) if not 0 <= o * stride - pad_lo + d < n_in)
        if out not in sets:
            sets.append(out)
        ids[o] = sets.index(out)
    return ids, sets


@dataclass
class Border:
    """Border-class geometry of a zero-padded window over bipolar input (padded with -1)."""

    in_hw: tuple        # (H, W) of the unpadded input
    out_hw: tuple       # (OH, OW)
    kernel: tuple       # (KH, KW)
    stride: tuple
    pads: tuple         # top, left, bottom, right
    channels: int       # C: window columns are (ky, kx, c)

    def rows(self):
        return axis_classes(self.in_hw[0], self.out_hw[0], self.kernel[0], self.stride[0], self.pads[0])

    def cols(self):
        return axis_classes(self.in_hw[1], self.out_hw[1], self.kernel[1], self.stride[1], self.pads[1])

    @property
    def n_row(self) -> int:
        return len(self.rows()[1])

    @property
    def n_col(self) -> int:
        return len(self.cols()[1])

    @property
    def n_classes(self) -> int:
        return self.n_row * self.n_col

    def pixel_classes(self) -> np.ndarray:
        """(OH * OW,) class id of every output pixel, row-major: row class * NCOL + col class."""
        return (self.rows()[0][:, None] * self.n_col + self.cols()[0][None, :]).reshape(-1)

    def masks(self) -> np.ndarray:
        """(NCLS, KH*KW*C) bool: the window columns that are padding in each class."""
        (kh, kw), c = self.kernel, self.channels
        _, rsets = self.rows()
        _, csets = self.cols()
        out = np.zeros((len(rsets), len(csets), kh, kw, c), bool)
        for i, rs in enumerate(rsets):
            for j, cs in enumerate(csets):
                out[i, j, list(rs), :, :] = True
                out[i, j, :, list(cs), :] = True
        return out.reshape(len(rsets) * len(csets), -1)

    def pad_sums(self, weights: np.ndarray) -> np.ndarray:
        """(NCLS, MH) S_P: sum of each row's weights over the padded columns of each class."""
        m = self.masks().astype(np.int64)
        return m @ np.asarray(weights, np.int64).T

    def popcount_ok(self) -> bool:
        """Every class pads an even number of columns, so S_P / 2 is an integer."""
        return bool(np.all(self.masks().sum(1) % 2 == 0))

    def corrections(self, weights: np.ndarray, binary: bool) -> np.ndarray:
        """(NCLS, MH) value each output's accumulator starts from (see the module text)."""
        s = self.pad_sums(weights)
        if binary:
            if np.any(s % 2):
                raise ValueError("an odd number of padded columns in an XNOR-popcount layer")
            return s // 2
        return s

    def describe(self) -> dict:
        return {"border_classes": self.n_classes}
