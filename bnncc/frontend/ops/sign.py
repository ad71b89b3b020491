"""Sign as tutorials write it: a comparison (GreaterOrEqual / Greater / Less /
LessOrEqual against a constant, Not) turned into numbers by Where or Cast, e.g.
torch.where(x >= 0, 1, -1) (sign(0) = +1) or (x > 0).float() * 2 - 1. The comparison
and its two outcomes become one 1-bit quantizer (StepQuant), folded into thresholds like
any other; bipolar when the outcomes are +-s."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto

from ...datatypes import DataType
from ...quantizers import StepQuant
from ..values import Act, Cmp, Const
from . import handles

# (strict, negated) of `x OP t` when the activation is the first operand, and when it is
# the second (t OP x): e.g. Less(x, t) = not (x >= t); Less(t, x) = x > t.
_CMP = {"GreaterOrEqual": ((False, False), (True, True)),
        "Greater": ((True, False), (False, True)),
        "Less": ((False, True), (True, False)),
        "LessOrEqual": ((True, True), (False, False))}
CMP_OPS = {"Where", "Cast", "Not"}   # the ops that may consume a Cmp
_NUMERIC = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.INT8,
            TensorProto.INT16, TensorProto.INT32, TensorProto.INT64, TensorProto.UINT8}


class SignOps:
    @handles(*_CMP)
    def op_compare(self, node, ins, attrs):
        folded = self.generic(node, ins, attrs)
        if folded is not None:
            return folded
        a, b = ins
        if isinstance(a, Act) and isinstance(b, Const):
            x, t, form = a, b.value, _CMP[node.op_type][0]
        elif isinstance(b, Act) and isinstance(a, Const):
            x, t, form = b, a.value, _CMP[node.op_type][1]
        else:
            raise self.err(f"{node.op_type} of two non-constant tensors is not supported", node)
        if np.broadcast_shapes(np.shape(t), x.shape) != tuple(x.shape):
            raise self.err(f"constant of shape {list(np.shape(t))} would broadcast the "
                           f"tensor of shape {list(x.shape)}", node)
        if hasattr(x, "head"):
            raise self.err("comparison after the output head is not supported", node)
        t = np.broadcast_to(np.asarray(t, np.float32), x.shape).copy()
        return Cmp(x, t, *form)

    @handles("Not")
    def op_Not(self, node, ins, attrs):
        c = ins[0]
        if isinstance(c, Cmp):
            return Cmp(c.x, c.t, c.strict, not c.neg)
        return self._const_only(node, ins, attrs)

    @handles("Where")
    def op_Where(self, node, ins, attrs):
        c, a, b = ins
        if all(isinstance(v, Const) for v in ins):
            return self.generic(node, ins, attrs)
        if not isinstance(c, Cmp) or not isinstance(a, Const) or not isinstance(b, Const):
            raise self.err("Where is supported as a sign: a comparison of a tensor with a "
                           "constant choosing between two constants", node)
        return self.step(node, c, a.value, b.value)

    @handles("Cast")
    def op_Cast(self, node, ins, attrs):
        x, to = ins[0], attrs.get("to")
        if isinstance(x, Cmp):
            if to == TensorProto.BOOL:
                return x
            if to not in _NUMERIC:
                raise self.err(f"Cast of a comparison to type {to} is not supported", node)
            return self.step(node, x, np.float32(1), np.float32(0))
        if isinstance(x, Act):
            if to in (TensorProto.FLOAT, TensorProto.DOUBLE):
                return x
            raise self.err("Cast of a float tensor to a non-float type rounds; only casts "
                           "of comparisons and constants are supported", node)
        return self._const_only(node, ins, attrs)

    @handles("Neg")
    def op_Neg(self, node, ins, attrs):
        if isinstance(ins[0], Act):
            return self._binary(node, [ins[0], Const(np.float32(-1))], attrs, "mul", "mul")
        return self._const_only(node, ins, attrs)

    def step(self, node, c: Cmp, hi, lo):
        """`hi` where the comparison holds, else `lo`, as one 1-bit quantizer on c.x."""
        x = c.x
        shape = x.shape
        if c.neg:
            hi, lo = lo, hi
        try:
            hi = np.broadcast_to(np.asarray(hi, np.float32), shape).astype(np.float64)
            lo = np.broadcast_to(np.asarray(lo, np.float32), shape).astype(np.float64)
        except ValueError:
            raise self.err("Where outcomes do not broadcast to the compared tensor", node) \
                from None
        if np.array_equal(hi, lo):
            return Const(hi.astype(np.float32))
        if not np.all(hi > lo):
            raise self.err("Where whose outcome decreases as its input grows (or not the same "
                           "way in every element) is not supported; compare the other way", node)
        if np.array_equal(hi, -lo):    # +-s: bipolar, XNOR-popcount downstream
            quant = StepQuant(DataType.bipolar(), hi, np.zeros(shape), c.t, c.strict)
        else:                          # lo + (hi - lo) * {0, 1}
            quant = StepQuant(DataType.uint(1), hi - lo, -lo / (hi - lo), c.t, c.strict)
        return self.quantize(node, x, quant)
