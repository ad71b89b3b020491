"""Op handlers, one module per op family, registered by ONNX op type.

Each family is a mixin of `bnncc.frontend.lower.Lowering`; `@handles("Conv")` on a method
registers it for that op type. A new op is one decorated method in its family's module.
"""
from __future__ import annotations

OPS: dict = {}   # ONNX op type -> handler(lowering, node, ins, attrs)


def handles(*op_types: str):
    def register(fn):
        for t in op_types:
            if t in OPS:
                raise RuntimeError(f"two handlers for op {t}")
            OPS[t] = fn
        return fn
    return register
