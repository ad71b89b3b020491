"""onnxruntime's QOperator format (quantize_static(quant_format=QOperator), or ORT's own
QDQ fusion): QLinearConv, QLinearMatMul and com.microsoft QGemm on integer tensors.

onnxruntime computes these on integers and requantizes in float32: the int32
accumulator (bias included) is converted to float, multiplied by the float32 multiplier
x_scale * w_scale / y_scale, rounded half to even, offset by the output zero point and
saturated. The lowering builds the same MVAU as Conv / MatMul on the integers minus
their zero points and gives the quantizer exactly that float chain, so the thresholds
reproduce onnxruntime bit for bit. The tensors between these ops are the integers
themselves (their ONNX value), as after QuantizeLinear.
"""
from __future__ import annotations

import numpy as np

from ...datatypes import DataType
from ...passes.chain import ChainOp
from ...quantizers import LinearQuant
from ..values import Act, Const
from . import handles

_F32 = np.float32


class QOperatorOps:
    def _qscalar(self, node, i, what):
        v = np.asarray(self.const(node.input[i], node))
        if v.size != 1:
            raise self.err(f"{what} must be one value (per-tensor), got shape {list(v.shape)}",
                           node)
        return v.reshape(())

    def _qint_operand(self, node, x, i_zp) -> Act:
        """An integer tensor minus its zero point, as an Act the compute lowering takes."""
        if not isinstance(x, Act) or x.src is None:
            raise self.err("the quantized input must come from QuantizeLinear or another "
                           "QLinear op", node)
        zp = self._qscalar(node, i_zp, "input zero point") if len(node.input) > i_zp and \
            node.input[i_zp] else np.zeros((), np.uint8)
        chain = x.chain + [ChainOp("sub", (self.full(_F32(zp), x.shape).astype(_F32),), node.name)]
        return Act(x.shape, x.pos, x.src, x.dtype, chain, x.shared)

    def _qweights(self, node, i_w, i_zp, axis) -> Const:
        w = np.asarray(self.const(node.input[i_w], node))
        if not np.issubdtype(w.dtype, np.integer):
            raise self.err("quantized weights must be an integer tensor", node)
        zp = np.asarray(self.const(node.input[i_zp], node)) if len(node.input) > i_zp and \
            node.input[i_zp] else np.zeros((), np.int64)
        if zp.size > 1:
            shape = [1] * w.ndim
            shape[axis] = zp.size
            zp = zp.reshape(shape)
        return Const((w.astype(np.int64) - zp.astype(np.int64)).astype(np.float32))

    def _requantize(self, node, y: Act, bias, mult, i_ys, i_yzp, axis_shape):
        """acc (+ bias) -> float32 -> * multiplier -> round, + zero point, saturate."""
        mul, add = y.chain[0].params
        if bias is not None:    # int32 bias joins the exact integer accumulator
            add = add + np.asarray(bias, np.float64).reshape(axis_shape)
        chain = [ChainOp("affine", (mul, np.broadcast_to(add, y.shape).copy()), node.name),
                 ChainOp("mul", (np.broadcast_to(mult.reshape(axis_shape), y.shape)
                                 .astype(_F32).copy(),), node.name)]
        y = Act(y.shape, y.pos, y.src, y.dtype, chain, y.shared)
        if i_ys is None:         # QGemm without output scale: float output
            return y
        yzp_v = np.asarray(self.const(node.input[i_yzp], node)) if len(node.input) > i_yzp \
            and node.input[i_yzp] else np.zeros((), np.uint8)
        info = np.iinfo(yzp_v.dtype)
        dtype = DataType.for_range(int(info.min), int(info.max))
        ones = np.ones(y.shape)
        q = self.quantize(node, y, LinearQuant(dtype, ones, np.broadcast_to(
            np.asarray(yzp_v, np.float64).reshape(()), y.shape).copy()))
        q.chain = [ChainOp("affine", (self.full(1.0, q.shape), self.full(0.0, q.shape)),
                           node.name)]
        return q

    def _multiplier(self, node, i_xs, i_ws, i_ys, alpha=1.0):
        xs = _F32(self._qscalar(node, i_xs, "input scale"))
        ws = np.asarray(self.const(node.input[i_ws], node), _F32).reshape(-1)
        m = (xs * ws).astype(_F32)
        if alpha != 1.0:
            m = (_F32(alpha) * m).astype(_F32)
        if i_ys is not None:
            m = (m / _F32(self._qscalar(node, i_ys, "output scale"))).astype(_F32)
        if np.any(m <= 0):
            raise self.err("requantization multiplier must be positive", node)
        return m

    @handles("QLinearConv")
    def op_QLinearConv(self, node, ins, attrs):
        x = self._qint_operand(node, ins[0], 2)
        w = self._qweights(node, 3, 5, 0)
        y = self.op_Conv(node, [x, w], attrs)
        bias = np.asarray(self.const(node.input[8], node)) if len(node.input) > 8 and \
            node.input[8] else None
        oc = y.shape[1]
        return self._requantize(node, y, bias, np.broadcast_to(self._multiplier(node, 1, 4, 6),
                                                               (oc,)), 6, 7, (1, oc, 1, 1))

    @handles("QLinearMatMul")
    def op_QLinearMatMul(self, node, ins, attrs):
        x = self._qint_operand(node, ins[0], 2)
        w = self._qweights(node, 3, 5, 1)
        y = self.dense(node, x, w, transpose=False)
        m = y.shape[1]
        return self._requantize(node, y, None, np.broadcast_to(self._multiplier(node, 1, 4, 6),
                                                               (m,)), 6, 7, (1, m))

    @handles("QGemm")
    def op_QGemm(self, node, ins, attrs):
        if attrs.get("transA", 0):
            raise self.err("QGemm with transA=1 is not supported", node)
        trans_b = bool(attrs.get("transB", 0))
        x = self._qint_operand(node, ins[0], 2)
        w = self._qweights(node, 3, 5, 0 if trans_b else 1)
        y = self.dense(node, x, w, transpose=trans_b)
        m = y.shape[1]
        quantized_out = len(node.input) > 7 and bool(node.input[7])
        bias = np.asarray(self.const(node.input[6], node)) if len(node.input) > 6 and \
            node.input[6] else None
        alpha = float(attrs.get("alpha", 1.0))
        if not quantized_out:
            if bias is not None and np.issubdtype(bias.dtype, np.integer):
                raise self.err("QGemm with a float output takes a float bias", node)
            mult = np.broadcast_to(self._multiplier(node, 1, 4, None, alpha), (m,))
            y = self._requantize(node, y, None, mult, None, None, (1, m))
            if bias is not None:
                y.chain.append(ChainOp("add", (self.full(_F32(bias).reshape(1, m), y.shape)
                                               .astype(_F32),), node.name))
            return y
        mult = np.broadcast_to(self._multiplier(node, 1, 4, 7, alpha), (m,))
        return self._requantize(node, y, bias, mult, 7, 8, (1, m))

    @handles("QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool", "QLinearConcat",
             "QLinearLeakyRelu", "QLinearSigmoid", "QLinearAveragePool")
    def op_qlinear_refused(self, node, ins, attrs):
        raise self.err(f"{node.op_type} is not supported: onnxruntime computes it on "
                       "dequantized operands in float32 or in fixed point depending on the "
                       "CPU's kernel, so no integer design reproduces it bit for bit; quantize "
                       "in QDQ format (quantize_static's default) instead", node)


