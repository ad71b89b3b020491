"""Elementwise float ops (Mul, Add, Sub, Div, BatchNormalization, Relu, Clip): they
collect into an Act's float chain, which the next quantizer folds into thresholds."""
from __future__ import annotations

import numpy as np

from ...passes.chain import ChainOp, compose_affine
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
        ste = self._straight_through(node, ins)
        if ste is not None:
            return ste
        return self._binary(node, ins, attrs, "add", "add")

    @handles("Sub")
    def op_Sub(self, node, ins, attrs):
        users = self.users.get(node.output[0], [])
        if len(users) == 1 and users[0].op_type == "Add" and node.input[1] in users[0].input \
                and self._ste_parts(ins[1], ins[0]):
            return ins[0]    # the `sign(x) - x` half of a straight-through sign: see op_Add
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

    def _straight_through(self, node, ins):
        """The straight-through sign `x + (sign(x) - x).detach()`: Add(x, Sub(s, x)) is s
        exactly in float32 when |x| <= 1 (a Hardtanh / Clip to [-1, 1] before it) and s is
        -1, 0 or +1, so the pair is the sign s itself. Anything else is an ordinary Add."""
        for i in (0, 1):
            sub = self.producers.get(node.input[1 - i])
            if sub is not None and sub.op_type == "Sub" and sub.input[1] == node.input[i] and \
                    self._ste_parts(ins[i], self.vals.get(sub.input[0])):
                return self.vals[sub.input[0]]
        return None

    def _ste_parts(self, x, s) -> bool:
        if not isinstance(x, Act) or not isinstance(s, Act) or not x.chain or s.dtype is None:
            return False
        last = x.chain[-1]
        if last.op != "clip" or np.any(last.params[0] < -1) or np.any(last.params[1] > 1):
            return False
        affine = compose_affine(s.chain)
        return affine is not None and np.all(affine[0] == 1) and np.all(affine[1] == 0) and \
            s.dtype.min >= -1 and s.dtype.max <= 1
