"""Hand-built depthwise / grouped convolution layers (a depthwise-order sliding window
feeding a VVAU) and an independent NumPy reference of the grouped convolution, shared by
the unit tests and the hardware tests."""
from __future__ import annotations

import numpy as np

from ..datatypes import DataType
from ..layers import VVAU, SlidingWindow
from ..passes.widths import mvau_acc_range
from .designs import rand_values


def reference_conv(x: np.ndarray, w: np.ndarray, groups: int, stride, pads, pad_value: int):
    """Integer grouped convolution by direct summation. x (N, H, W, C_in) channels last,
    w (C_out, CIN, KH, KW) in ONNX layout -> (N, OH, OW, C_out) int64."""
    n, h, wd, c = x.shape
    oc, cin, kh, kw = w.shape
    t, l, b, r = pads
    xp = np.pad(x.astype(np.int64), ((0, 0), (t, b), (l, r), (0, 0)), constant_values=pad_value)
    oh, ow = (h + t + b - kh) // stride[0] + 1, (wd + l + r - kw) // stride[1] + 1
    cout = oc // groups
    y = np.zeros((n, oh, ow, oc), np.int64)
    for o in range(oc):
        g = o // cout
        for ky in range(kh):
            for kx in range(kw):
                patch = xp[:, ky:ky + stride[0] * (oh - 1) + 1:stride[0],
                           kx:kx + stride[1] * (ow - 1) + 1:stride[1], g * cin:(g + 1) * cin]
                y[..., o] += patch @ w[o, :, ky, kx].astype(np.int64)
    return y


def grouped_layers(rng, shape, c_out: int, groups: int, kernel=(3, 3), stride=(1, 1),
                   pads=(0, 0, 0, 0), idt: DataType = None, wdt: DataType = None,
                   nt: int = 0, pe: int = 1, name: str = "dw"):
    """(swg, vvau, w4d): random weights (C_out, CIN, KH, KW) of wdt, a depthwise-order
    window and a VVAU with `nt` random sorted thresholds per channel (0: raw output)."""
    h, wd, c = shape
    cin, kh, kw = c // groups, kernel[0], kernel[1]
    w4 = rand_values(rng, wdt, (c_out, cin, kh, kw))
    binary = idt.is_bipolar and wdt.is_bipolar
    oh, ow = (h + pads[0] + pads[2] - kh) // stride[0] + 1, (wd + pads[1] + pads[3] - kw) // stride[1] + 1
    wm = w4.transpose(0, 2, 3, 1).reshape(c_out, kh * kw * cin)
    lo, hi = mvau_acc_range(wm, idt, binary)
    accdt = DataType.for_range(int(lo.min()), int(hi.max()))
    thr, odt = None, accdt
    if nt:
        odt = DataType.bipolar() if nt == 1 and binary else DataType.for_range(0, nt)
        thr = np.sort(rng.integers(lo.min(), hi.max() + 2, (c_out, nt)), axis=1)
    swg = SlidingWindow(f"{name}_swg", idt, idt, (h, wd, c), (oh, ow, kh * kw * c), [],
                        kernel=(kh, kw), stride=tuple(stride), pads=tuple(pads),
                        pad_value=0 if not idt.is_bipolar else -1, simd=pe * cin,
                        depthwise=True)
    vv = VVAU(name, idt, odt, (oh, ow, kh * kw * c), (oh, ow, c_out), [], weights=wm, wdt=wdt,
              groups=groups, kernel=(kh, kw), binary=binary, accdt=accdt, thresholds=thr,
              tdt=DataType.for_range(int(lo.min()) - 1, int(hi.max()) + 2) if nt else None, pe=pe)
    return swg, vv, w4


# Hand-built unit cases: (H, W, C_in), C_out, groups, kernel, stride, pads, idt, wdt,
# thresholds per channel (0: raw accumulators), PE
UNIT_CASES = [
    ((6, 6, 8), 8, 8, (3, 3), (1, 1), (1, 1, 1, 1), DataType.uint(4), DataType.int(4), 15, 2),
    ((7, 7, 4), 8, 4, (3, 3), (2, 2), (1, 1, 1, 1), DataType.int(3), DataType.int(2), 3, 4),
    ((5, 6, 6), 6, 3, (3, 2), (1, 2), (0, 1, 0, 0), DataType.uint(2), DataType.int(3), 0, 1),
    ((6, 6, 8), 4, 2, (1, 1), (1, 1), (0, 0, 0, 0), DataType.int(4), DataType.bipolar(), 7, 2),
    ((6, 5, 4), 4, 4, (3, 3), (1, 1), (0, 0, 0, 0), DataType.bipolar(), DataType.bipolar(), 1, 2),
    ((6, 6, 6), 12, 3, (2, 2), (2, 1), (0, 0, 1, 1), DataType.bipolar(), DataType.bipolar(), 0, 3),
    ((5, 5, 4), 8, 4, (3, 3), (1, 1), (0, 0, 0, 0), DataType.bipolar(), DataType.int(3), 3, 1),
]
