"""BatchNormalization statistics that quantize identically under any float evaluation
order: random ones with a float32 margin, or dyadic ones with exact ties."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .common import _Act, _act_fn, _Builder, _lsb, _msb, _np_bn, _QAct


def _boundaries(act: _Act) -> np.ndarray:
    """Quantizer decision boundaries on the BatchNorm output."""
    if act.kind in ("bipolar", "sign"):
        return np.zeros(1)
    return (np.arange(act.lo, act.hi) + 0.5) * act.scale


def _margin_bad(mean, var, eps, gamma, beta, unit, lo, hi, bounds):
    """Per channel: True if a decision boundary is too close to a reachable
    accumulator value for float32 evaluation-order differences to be safe."""
    mean = mean.astype(np.float64)
    std = np.sqrt(var.astype(np.float64) + np.float64(np.float32(eps)))
    gamma = gamma.astype(np.float64)
    beta = beta.astype(np.float64)
    bad = np.zeros(len(mean), bool)
    nz = gamma != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        for b in bounds:
            t = (mean + (b - beta) * std / gamma) / unit
            d = np.abs(t - np.round(t))
            tol = 2e-3 + 2.0**-20 * (np.abs(t) + 2 * np.abs(mean / unit))
            bad |= nz & (t >= lo - 1) & (t <= hi + 1) & (d < tol)
        # gamma == 0: output is beta exactly; keep it away from boundaries
        # unless it sits on one exactly (a deliberate tie)
        for b in bounds:
            dist = np.abs(beta - b)
            bad |= (~nz) & (dist > 0) & (dist < 1e-6 * np.maximum(1.0, np.abs(b)))
    return bad


def _bn_exact(mean, var, eps, gamma, beta, unit, A) -> np.ndarray:
    """Per channel: True if y = BN(a) is exact in float32 for every order of
    evaluation, for all accumulators a = k * unit with |a| <= A * unit."""
    e32 = Fraction(float(np.float32(eps)))
    ok = np.ones(len(mean), bool)
    for c in range(len(mean)):
        vals = [float(t[c]) for t in (mean, var, gamma, beta)]
        if any(float(np.float32(v)) != v for v in vals):
            ok[c] = False  # not representable in float32
            continue
        m, v, g, b = (Fraction(x) for x in vals)
        u = Fraction(float(unit[c]))
        amax = Fraction(int(A[c])) * u
        s2 = v + e32
        if s2 <= 0:
            ok[c] = False
            continue
        std = Fraction(math.isqrt(s2.numerator), math.isqrt(s2.denominator))
        if std * std != s2 or (std.numerator & (std.numerator - 1)) or (std.denominator & (std.denominator - 1)):
            ok[c] = False  # std must be an exact power of two
            continue
        if g == 0:
            continue
        big = 10**9
        ns = g / std
        mns = m * ns
        nb = b - mns
        grid_d = min(_lsb(u), _lsb(m) if m else big)
        gd_ns = grid_d + _lsb(ns)
        gd_std = grid_d - _lsb(std) + _lsb(g)
        terms = [  # (grid exponent, max magnitude) of intermediate values
            (_lsb(u * ns), amax * abs(ns)),  # a * (gamma/std)
            (_lsb(mns) if mns else big, abs(mns)),  # mean * (gamma/std)
            (_lsb(nb) if nb else big, abs(nb)),  # beta - mean * gamma/std
            (min(_lsb(u * ns), _lsb(nb) if nb else big), amax * abs(ns) + abs(nb)),
            (grid_d, amax + abs(m)),  # a - mean
            (gd_ns, (amax + abs(m)) * abs(ns)),  # (a - mean) * gamma/std
            (gd_std, (amax + abs(m)) / std * abs(g)),  # (a - mean) / std * gamma
            (min(gd_ns, gd_std, _lsb(b) if b else big), (amax + abs(m)) * abs(ns) + abs(b)),
        ]
        ok[c] = all(not mag or _msb(Fraction(mag)) - grid <= 22 for grid, mag in terms)
    return ok


def _make_bn(B: _Builder, prefix: str, unit, lo, hi, act: _Act, dyadic_ok: bool, info: dict):
    """Choose and emit a BatchNormalization feeding quantizer ``act``.

    Statistics follow the calibration accumulators (so activations are
    informative); every channel with gamma != 0 is re-drawn until its quantized
    output is not (nearly) constant on the calibration set and, depending on the
    mode, its thresholds keep a float32 margin ("random") or the whole BN is
    exact in float32 ("dyadic")."""
    rng = B.rng
    acc = B.cal
    C = acc.shape[1]
    axes = (0,) + tuple(range(2, acc.ndim))
    m = acc.mean(axis=axes)
    s = acc.std(axis=axes)
    s = np.where(s < unit, unit * 2.0, s)
    flat = np.moveaxis(acc, 1, -1).reshape(-1, C)
    varies = flat.min(axis=0) != flat.max(axis=0)
    # decision boundaries: 1-D (same for every channel) or (n, C) per channel
    bounds = act.bounds(C) if isinstance(act, _QAct) else _boundaries(act)
    asc = act.scale  # float, or (C,) per-channel scales (_QAct)
    sign_act = act.kind == "sign"
    qfn = _act_fn(act)

    def pick_bound(c):
        j = rng.integers(len(bounds))
        return bounds[j] if bounds.ndim == 1 else bounds[j, c]
    A = np.maximum(np.abs(lo), np.abs(hi))

    gsign = np.where(rng.random(C) < 0.2, -1.0, 1.0)
    zero_ch = np.zeros(C, bool)
    if C > 1 and rng.random() < 0.35:
        zero_ch[rng.integers(C)] = True

    def draw_scale_shift(idx):
        n = len(idx)
        if act.kind == "int":
            sc = asc if np.isscalar(asc) else asc[idx]
            g = sc * (act.hi - act.lo + 1) / 4 * 2.0 ** rng.uniform(-0.7, 1.0, n)
            b = sc * rng.uniform(act.lo * 0.6, act.hi * 0.6, n)
        else:
            g = 2.0 ** rng.uniform(-2, 2, n)
            b = g * rng.normal(0, 0.5, n)
        return g, b

    def zero_beta(c):
        if rng.random() < 0.5 and not sign_act:
            return float(pick_bound(c))  # exact tie, constant channel
        _, b = draw_scale_shift([c])
        return float(np.float32(b[0])) if b[0] != 0 else 0.5

    mode = "dyadic" if (dyadic_ok and rng.random() < 0.4) else "random"
    if mode == "dyadic":
        # eps a power of two such that var = std^2 - eps is exact in float32
        # for every std the draws below can produce (std^2 + eps = 4^k)
        e_hi = 2 * math.floor(math.log2(s.min() / 2)) - 2
        e_lo = 2 * math.ceil(math.log2(s.max() * 2)) - 22
        e = min(e_hi, -10)
        eps = 2.0**e if e >= e_lo else 0.0
        tie = rng.random(C) < 0.4
    else:
        eps = float(rng.choice([1e-5, 1e-5, 1e-4, 1e-3]))
    gamma, beta, mean, var = (np.zeros(C) for _ in range(4))
    redo = np.ones(C, bool)
    for attempt in range(400):
        idx = np.nonzero(redo)[0]
        k = len(idx)
        g, b = draw_scale_shift(idx)
        mu = m[idx] + s[idx] * rng.normal(0, 0.3, k)
        sd = s[idx] * 2.0 ** rng.uniform(-0.5, 0.5, k)
        if mode == "dyadic":
            un = unit[idx]
            mu = np.round(mu / (un / 2)) * (un / 2)
            sd = 2.0 ** np.round(np.log2(sd))
            g = gsign[idx] * 2.0 ** np.round(np.log2(g)) * rng.choice([1.0, 1.25, 1.5, 1.75], k)
            if act.kind == "int":
                q = (asc if np.isscalar(asc) else asc[idx]) / 4
            else:
                q = 2.0 ** (np.floor(np.log2(np.abs(g))) - 2)
            b = np.round(b / q) * q
            for j, c in enumerate(idx):
                if tie[c]:  # a calibration accumulator lands exactly on a boundary
                    a0 = flat[rng.integers(flat.shape[0]), c]
                    b[j] = pick_bound(c) - g[j] * (a0 - mu[j]) / sd[j]
            v = sd**2 - eps
        else:
            g = gsign[idx] * g
            v = np.maximum(sd**2 - eps, sd**2 * 0.5)
        gamma[idx], beta[idx], mean[idx], var[idx] = g, b, mu, v
        for c in idx:
            if zero_ch[c]:
                gamma[c] = 0.0
                beta[c] = zero_beta(c)
        if mode == "random":
            gamma, beta, mean, var = (t.astype(np.float32).astype(np.float64) for t in (gamma, beta, mean, var))
            bad = _margin_bad(mean, var, eps, gamma, beta, unit, lo, hi, bounds)
        else:
            bad = ~_bn_exact(mean, var, eps, gamma, beta, unit, A)
        if attempt < 150:
            y = qfn(_np_bn(acc, gamma, beta, mean, var, eps))
            yf = np.moveaxis(y, 1, -1).reshape(-1, C)
            for c in range(C):
                if zero_ch[c] or not varies[c]:
                    continue
                _, counts = np.unique(yf[:, c], return_counts=True)
                if counts.max() > 0.9 * len(yf):
                    bad[c] = True
        if not bad.any():
            break
        if mode == "dyadic" and attempt == 60:
            mode, eps = "random", 1e-5
            bad[:] = True
        redo = bad
    else:  # pragma: no cover - practically unreachable
        raise RuntimeError(f"{prefix}: could not choose BatchNorm parameters")

    gamma, beta, mean, var = (np.asarray(t, np.float32) for t in (gamma, beta, mean, var))
    info["bn"] = mode
    info["bn_eps"] = float(eps)
    info["gamma_neg"] = int((gamma < 0).sum())
    info["gamma_zero"] = int((gamma == 0).sum())
    ins = [B.cur] + [B.init(f"{prefix}_bn_{k}", v) for k, v in
                     (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var))]
    B.step("BatchNormalization", ins, f"{prefix}_bn", B.shape,
           lambda x, p=(gamma, beta, mean, var, eps): _np_bn(x, *p), prefix=prefix,
           epsilon=float(eps))
