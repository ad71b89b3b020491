"""Bind the symbolic batch axis of real exports to 1 before anything reads shapes.

torch.onnx's dynamic_axes, the dynamo exporter's dynamic shapes and tf2onnx mark the
leading input axis symbolic (`batch`, `N`, `s0`, `unk__41`, ...). bnncc streams one frame
at a time, so that axis is 1; with it bound, every Shape in the graph is a constant and
the walk folds the shape arithmetic (Shape / Gather / Unsqueeze / Concat / Expand /
ConstantOfShape ...) on constants. Any other symbolic axis cannot be chosen for the
user and is an error naming the input and the axis.
"""
from __future__ import annotations

import onnx

from ..errors import UnsupportedError


def _symbolic(d) -> bool:
    return not d.HasField("dim_value")


def bind_batch(model: onnx.ModelProto, path: str) -> onnx.ModelProto:
    """Set a symbolic leading axis of the graph inputs to 1 (in place). Outputs and value
    infos are left alone: the lowering derives every shape from the input's."""
    g = model.graph
    inits = {t.name for t in g.initializer}
    for inp in g.input:
        if inp.name in inits or not inp.type.tensor_type.HasField("shape"):
            continue
        dims = inp.type.tensor_type.shape.dim
        for axis, d in enumerate(dims):
            if not _symbolic(d):
                continue
            if axis != 0:
                raise UnsupportedError(
                    f"input '{inp.name}' has a symbolic axis {axis} "
                    f"('{d.dim_param or '?'}'); only the leading (batch) axis may be "
                    "symbolic: export with static shapes for the other axes", file=path)
        if dims and _symbolic(dims[0]):
            dims[0].Clear()
            dims[0].dim_value = 1
    return model
