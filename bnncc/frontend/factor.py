"""Float weights that are a per-output-channel scale times small integers.

The dynamo exporter (and users' own fusion) folds BatchNorm into Conv / Gemm, so a
binary layer's weights arrive as s_c * sign(w) and an integer layer's as s_c * q. Each
channel is factored exactly: w[c, i] == s_c * q[c, i] in exact arithmetic, checked
element by element (products of a float32 and an integer below 2^24 are exact in
float64), so the hardware computes the integer dot product and the scale moves into the
channel's thresholds or requantization.
"""
from __future__ import annotations

import numpy as np

MAX_STEPS = 128   # |q| <= 128 * (smallest nonzero |q|): integer parts up to 8 bits


def factor_channels(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(q int64 shaped like w, s (C,) float64 > 0) with w == s * q per channel along
    `axis`, the integers as small as possible; None if some channel does not factor."""
    w = np.asarray(w, np.float32)
    if not np.all(np.isfinite(w)):
        return None
    rows = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1).astype(np.float64)
    q = np.zeros(rows.shape, np.int64)
    s = np.ones(rows.shape[0])
    for c, row in enumerate(rows):
        nz = np.abs(row[row != 0])
        if nz.size == 0:
            continue
        m = nz.min()
        for d in range(1, MAX_STEPS + 1):   # s = m / d: q = row * d / m must be integers
            qc = np.rint(row * d / m)
            if np.array_equal(row * d, m * qc):
                q[c], s[c] = qc.astype(np.int64), m / d
                break
        else:
            return None
    shape = (w.shape[axis],) + tuple(np.delete(w.shape, axis))
    return np.moveaxis(q.reshape(shape), 0, axis), s
