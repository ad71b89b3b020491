"""Independent check of zero padding over bipolar input (bnncc/layers/border.py).

For every output pixel of a border MVAU, every output channel and every reachable value d
of the zero-padded convolution's dot product at that pixel, build a window the way the
sliding window streams it (the pixel's in-image positions chosen so that the dot over
them is d, its out-of-image positions -1), run the MVAU, and compare with

  * thresholds: the original ONNX nodes between the Conv and its quantizer (qonnx
    executor) on the float conv output of d, as tests/threshold_oracle.py does;
  * raw accumulators: the unpadded accumulator that has dot d, exactly.

The out-of-image positions come from padding an image of ones with zeros (no border
classes involved), so the test does not trust the class tables it checks.
"""
from __future__ import annotations

import numpy as np

from bnncc.layers import MVAU, SlidingWindow
from bnncc.layers.bits import unpacked
from threshold_oracle import original_levels


def valid_masks(swg: SlidingWindow) -> np.ndarray:
    """(OH, OW, KH*KW*C) bool: window columns inside the image, by brute force."""
    h, w, c = swg.in_shape
    t, l, b, r = swg.pads
    img = np.pad(np.ones((h, w, c), bool), ((t, b), (l, r), (0, 0)))
    (kh, kw), (sh, sw) = swg.kernel, swg.stride
    oh, ow = swg.out_shape[:2]
    return np.array([[img[y * sh:y * sh + kh, x * sw:x * sw + kw].reshape(-1)
                      for x in range(ow)] for y in range(oh)])


def witnesses(w: np.ndarray, valid: np.ndarray) -> dict[int, np.ndarray]:
    """Every reachable sum over the valid columns of w * x (x = +-1 there, -1 elsewhere)
    -> one input vector reaching it (subset-sum walk, one witness per sum)."""
    x0 = -np.ones(len(w), np.int64)
    idx = np.nonzero(valid)[0]
    if np.all(np.abs(w) == 1):     # +-1 weights: x = w on the first j valid columns, -w after
        out = {}
        for j in range(len(idx) + 1):
            x = x0.copy()
            x[idx] = -w[idx]
            x[idx[:j]] = w[idx[:j]]
            out[2 * j - len(idx)] = x
        return out
    reach = {0: x0.copy()}
    for i in idx:
        nxt = {}
        for s, x in reach.items():
            for v in (-1, 1):
                k = s + v * int(w[i])
                if k not in nxt:
                    y = x.copy()
                    y[i] = v
                    nxt[k] = y
        reach = nxt
    return reach


def check_border_layer(model, swg: SlidingWindow, layer: MVAU) -> int:
    """Returns the number of (pixel, channel, value) points compared; raises on a mismatch."""
    assert layer.border is not None
    masks = valid_masks(swg)
    oh, ow, mw = layer.in_shape
    mh = layer.mh
    neg = layer.negated if layer.negated is not None else np.zeros(mh, bool)
    per = [[[witnesses(layer.weights[o], masks[y, x]) for o in range(mh)]
            for x in range(ow)] for y in range(oh)]
    n_max = max(len(per[y][x][o]) for y in range(oh) for x in range(ow) for o in range(mh))
    dots = np.zeros((n_max, oh, ow, mh), np.int64)      # d of the layer's (flipped) weights
    valid = np.zeros((n_max, oh, ow, mh), bool)
    got = np.zeros((n_max, oh, ow, mh), np.int64)
    for o in range(mh):
        frames = -np.ones((n_max, oh, ow, mw), np.int64)
        for y in range(oh):
            for x in range(ow):
                items = sorted(per[y][x][o].items())
                for r, (d, vec) in enumerate(items):
                    frames[r, y, x] = vec
                    dots[r, y, x, o], valid[r, y, x, o] = d, True
        got[..., o] = unpacked(layer.execute(frames))[..., o]
    d_orig = np.where(neg, -dots, dots)
    if layer.thresholds is None:                          # raw accumulators: exact integers
        want = (dots + mw) // 2 if layer.binary else dots
        bad = valid & (got != want)
    else:
        assert layer.odt.is_bipolar, "the oracle compares bipolar outputs"
        mul, add = layer.real_of_acc
        acc = (d_orig + mw) / 2 if layer.binary else d_orig   # unpadded accumulator with dot d
        real = (acc.astype(np.float64) * mul + add).astype(np.float32).reshape(-1, mh)
        want = np.sign(original_levels(model, layer, real, 2)).reshape(got.shape)
        bad = valid & (want != got)
    if np.any(bad):
        r, y, x, o = np.argwhere(bad)[0]
        raise AssertionError(f"{layer.name} pixel ({y}, {x}) channel {o} dot {dots[r, y, x, o]}: "
                             f"hardware {got[r, y, x, o]} vs reference {want[r, y, x, o]}")
    return int(valid.sum())
