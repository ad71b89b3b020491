"""Which float arithmetic evaluates a model's float ops when they are folded into integers.

Default float32, op by op as onnxruntime / qonnx compute them: with power-of-two scales
that is bit-exact to the reference. With arbitrary float scales no float32 evaluation
can reproduce onnxruntime's (its convolution sums float32 products in its own order), so
near a rounding tie every float32 implementation gives its own answer; `exact()` then
evaluates the same formulas in float64, which decides every rounding as real arithmetic
does unless a value lies within float64 error of a tie (bnncc.testing.exact_onnx checks
that margin on its reference runs).
"""
from __future__ import annotations

import contextlib
import contextvars

import numpy as np

_FLOAT = contextvars.ContextVar("bnncc_float", default=np.float32)


def ftype():
    """The float type of chain and quantizer evaluation (np.float32 or np.float64)."""
    return _FLOAT.get()


@contextlib.contextmanager
def exact():
    """Evaluate float chains and quantizers in float64 (real arithmetic) inside."""
    tok = _FLOAT.set(np.float64)
    try:
        yield
    finally:
        _FLOAT.reset(tok)
