"""Elementwise float ops (Mul, Add, Sub, Div, BatchNormalization, Relu, Clip): they
collect into an Act's float chain, which the next quantizer folds into thresholds."""
from __future__ import annotations

import numpy as np

from ...passes.chain import ChainOp
from ..values import Act, Const
from . import handles


class ElementwiseOps:
    def _binary(self, node, ins, attrs, op, rop):
        folded = self.generic(node, ins, attrs)
        if folded is not None:
            return folded
        a, b = ins
        if isinstance(a, Act) and isinstance(b, Act):
            if node.op_type in ("Add", "Sub"):
                return self.add_streams(node, a, b, 1 if node.op_type == "Add" else -1)
            raise self.err(f"{node.op_type} of two non-constant tensors is not supported", node)
        x, c, name = (a, b.value, op) if isinstance(a, Act) else (b, a.value, rop)
        if name is None:
            raise self.err(f"{node.op_type} with the constant as first operand is not supported",
                           node)
        if hasattr(x, "head"):
            raise self.err("float op after the output head is not supported", node)
        if np.broadcast_shapes(np.shape(c), x.shape) != tuple(x.shape):
            raise self.err(f"constant of shape {list(np.shape(c))} would broadcast the "
                           f"tensor of shape {list(x.shape)}", node)
        p = np.broadcast_to(np.asarray(c, np.float32), x.shape).copy()
        if not np.all(np.isfinite(p)):
            raise self.err(f"{node.op_type} by a constant holding NaN or Inf", node)
        return Act(x.shape, x.pos, x.src, x.dtype, x.chain + [ChainOp(name, (p,), node.name)],
                   x.shared or self.consumers.get(node.input[0], 1) > 1)

    @handles("Mul")
    def op_Mul(self, node, ins, attrs):
        return self._binary(node, ins, attrs, "mul", "mul")

    @handles("Add")
    def op_Add(self, node, ins, attrs):
        return self._binary(node, ins, attrs, "add", "add")

    @handles("Sub")
    def op_Sub(self, node, ins, attrs):
        return self._binary(node, ins, attrs, "sub", "rsub")

    @handles("Div")
    def op_Div(self, node, ins, attrs):
        return self._binary(node, ins, attrs, "div", None)

    @handles("BatchNormalization")
    def op_BatchNormalization(self, node, ins, attrs):
        x = ins[0]
        if not isinstance(x, Act):
            return self._const_only(node, ins, attrs)
        if attrs.get("training_mode", 0) or len([o for o in node.output if o]) > 1:
            raise self.err("BatchNormalization in training mode is not supported", node)
        shp = (1, x.shape[1]) + (1,) * (len(x.shape) - 2)
        params = tuple(np.broadcast_to(self.const(n, node).reshape(shp), x.shape).copy()
                       for n in node.input[1:5])
        eps = np.float32(attrs.get("epsilon", 1e-5))
        if not all(np.all(np.isfinite(p)) for p in params):
            raise self.err("BatchNormalization parameters hold NaN or Inf", node)
        if np.any(params[3] + eps <= 0):
            raise self.err("BatchNormalization variance + epsilon must be positive", node)
        return Act(x.shape, x.pos, x.src, x.dtype,
                   x.chain + [ChainOp("bn", params + (eps,), node.name)], x.shared)

    @handles("Relu")
    def op_Relu(self, node, ins, attrs):
        x = ins[0]
        if isinstance(x, Const):
            return self._const_only(node, ins, attrs)
        return Act(x.shape, x.pos, x.src, x.dtype, x.chain + [ChainOp("relu", (), node.name)],
                   x.shared)

    @handles("Clip")
    def op_Clip(self, node, ins, attrs):
        x = ins[0]
        if isinstance(x, Const):
            return self._const_only(node, ins, attrs)
        lo = self.const(node.input[1], node) if len(node.input) > 1 and node.input[1] else \
            attrs.get("min", -np.inf)
        hi = self.const(node.input[2], node) if len(node.input) > 2 and node.input[2] else \
            attrs.get("max", np.inf)
        p = (np.broadcast_to(np.float32(lo), x.shape).copy(),
             np.broadcast_to(np.float32(hi), x.shape).copy())
        return Act(x.shape, x.pos, x.src, x.dtype, x.chain + [ChainOp("clip", p, node.name)],
                   x.shared)
