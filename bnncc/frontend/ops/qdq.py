"""onnxruntime's QDQ format: QuantizeLinear / DequantizeLinear."""
from __future__ import annotations

import numpy as np
import onnx

from ...datatypes import DataType
from ...passes.chain import ChainOp
from ...quantizers import (LinearQuant)
from ..values import Act, Const, QConst
from . import handles


class QdqOps:
    def _qdq_params(self, node, shape, axis):
        scale = np.asarray(self.const(node.input[1], node), np.float64)
        zp_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
        zp_raw = self.const(zp_name, node) if zp_name else np.zeros((), np.uint8)
        zp = np.asarray(zp_raw, np.float64)
        if scale.ndim == 1 and scale.size > 1:   # per-axis
            bshape = [1] * len(shape)
            bshape[axis % len(shape)] = scale.size
            scale, zp = scale.reshape(bshape), (zp.reshape(bshape) if zp.ndim else zp)
        return (np.broadcast_to(scale, shape).copy(), np.broadcast_to(zp, shape).copy(),
                np.asarray(zp_raw).dtype)

    @handles("QuantizeLinear")
    def op_QuantizeLinear(self, node, ins, attrs):
        x = ins[0]
        shape = x.value.shape if isinstance(x, Const) else x.shape
        scale, zp, zdt = self._qdq_params(node, shape, attrs.get("axis", 1))
        if attrs.get("block_size", 0):
            raise self.err("blocked QuantizeLinear is not supported", node)
        out_dt = attrs.get("output_dtype", 0)
        np_dt = onnx.helper.tensor_dtype_to_np_dtype(out_dt) if out_dt else zdt
        if not np.issubdtype(np_dt, np.integer):
            raise self.err(f"QuantizeLinear to {np_dt} is not supported (integer types only)", node)
        info = np.iinfo(np_dt)
        dtype = DataType.for_range(int(info.min), int(info.max))
        if np.any(scale <= 0):
            raise self.err("QuantizeLinear scale must be positive", node)
        y = self.quantize(node, x, LinearQuant(dtype, scale, zp))
        if isinstance(y, Act):   # the ONNX value of QuantizeLinear is the integer itself
            y.chain = [ChainOp("affine", (self.full(1.0, y.shape), self.full(0.0, y.shape)),
                               node.name)]
        else:
            y = Const(y.quant.q.astype(np_dt), QConst(y.quant.q, np.ones(shape), np.zeros(shape),
                                                      dtype))
        return y

    @handles("DequantizeLinear")
    def op_DequantizeLinear(self, node, ins, attrs):
        x = ins[0]
        shape = x.value.shape if isinstance(x, Const) else x.shape
        scale, zp, _ = self._qdq_params(node, shape, attrs.get("axis", 1))
        if isinstance(x, Const):
            q = np.asarray(x.value).astype(np.int64)
            value = ((q - zp) * scale).astype(np.float32)
            dtype = DataType.for_values(q) if q.size else DataType.int(8)
            return Const(value, QConst(q, scale.astype(np.float32), zp, dtype))
        p = np.float32
        chain = x.chain + [ChainOp("sub", (zp.astype(p),), node.name),
                           ChainOp("mul", (scale.astype(p),), node.name)]
        return Act(x.shape, x.pos, x.src, x.dtype, chain, x.shared)
