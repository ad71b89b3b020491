"""Pooling: MaxPool over integers, AveragePool / GlobalAveragePool as an integer sum
pool with the division left in the float chain (folded into the next quantizer)."""
from __future__ import annotations

import numpy as np

from ...datatypes import DataType
from ...layers import MaxPool, SumPool
from ...passes.chain import ChainOp, compose_affine, reduce_channels
from ..values import Act, _s, canonical_pos
from . import handles


class PoolOps:
    @handles("MaxPool")
    def op_MaxPool(self, node, ins, attrs):
        x = ins[0]
        if not isinstance(x, Act):
            return self._const_only(node, ins, attrs)
        x = self.integer(x, node)
        self._spatial(node, x)
        if len([o for o in node.output if o]) > 1:
            raise self.err("MaxPool with an indices output is not supported", node)
        if any(attrs.get("pads", [0, 0, 0, 0])) or \
                _s(attrs.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
            raise self.err("padded MaxPool (pads of -inf) is not supported: bnncc pads only "
                           "in a Conv's sliding window; export the pool without padding", node)
        if any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise self.err("dilated MaxPool is not supported", node)
        affine = compose_affine(x.chain)
        if affine is None or np.any(np.asarray(affine[0]) <= 0):
            raise self.err("MaxPool must follow a quantizer (max commutes only with an "
                           "increasing affine map from integers)", node)
        affine = tuple(np.broadcast_to(v, x.shape) for v in affine)
        kh, kw = attrs["kernel_shape"]
        sh, sw = attrs.get("strides", [1, 1])
        _, c, h, w = x.shape
        ceil = attrs.get("ceil_mode", 0)
        oh = (h - kh + (sh - 1 if ceil else 0)) // sh + 1
        ow = (w - kw + (sw - 1 if ceil else 0)) // sw + 1
        if ceil and ((oh - 1) * sh + kh > h or (ow - 1) * sw + kw > w):
            raise self.err("ceil_mode MaxPool with a partial window is not supported", node)
        layer = MaxPool(self.new_name("pool"), x.dtype, x.dtype, (h, w, c), (oh, ow, c),
                        [node.name], kernel=(kh, kw), stride=(sh, sw))
        self.add_layer(layer, x.src)
        shape = (1, c, oh, ow)
        chan = x.pos.reshape(-1) % c
        per_c = [reduce_channels(p, chan, c) for p in affine]
        if any(p is None for p in per_c):
            raise self.err("MaxPool input scale varies within a channel", node)
        params = tuple(self.full(p.reshape(1, c, 1, 1), shape) for p in per_c)
        return Act(shape, canonical_pos(shape), layer.name, x.dtype,
                   [ChainOp("affine", params, node.name)])

    def _sum_pool(self, node, x: Act, kh, kw, sh, sw) -> Act:
        x = self.integer(x, node)
        self._spatial(node, x)
        affine = compose_affine(x.chain)
        if affine is None:
            raise self.err("average pooling must follow a quantizer (a non-affine float op "
                           "comes before it)", node)
        _, c, h, w = x.shape
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        chan = x.pos.reshape(-1) % c
        mul, add = (reduce_channels(np.broadcast_to(v, x.shape), chan, c) for v in affine)
        if mul is None or add is None:
            raise self.err("average pooling input scale varies within a channel", node)
        k = kh * kw
        lo, hi = k * x.dtype.min, k * x.dtype.max
        odt = DataType.for_range(lo, hi)
        layer = SumPool(self.new_name("sumpool"), x.dtype, odt, (h, w, c), (oh, ow, c),
                        [node.name], kernel=(kh, kw), stride=(sh, sw))
        self.add_layer(layer, x.src)
        shape = (1, c, oh, ow)
        cb = lambda v: self.full(np.asarray(v).reshape(1, c, 1, 1), shape)
        # the sum of the window's real values, then the float division AveragePool does
        chain = [ChainOp("affine", (cb(mul), cb(k * add)), node.name),
                 ChainOp("div", (self.full(np.float32(k), shape).astype(np.float32),), node.name)]
        return Act(shape, canonical_pos(shape), layer.name, odt, chain)

    @handles("AveragePool")
    def op_AveragePool(self, node, ins, attrs):
        x = ins[0]
        if not isinstance(x, Act):
            return self._const_only(node, ins, attrs)
        if any(attrs.get("pads", [0, 0, 0, 0])) or \
                _s(attrs.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
            how = "zeros counted" if attrs.get("count_include_pad", 0) else "zeros not counted"
            raise self.err(f"padded AveragePool ({how}, count_include_pad="
                           f"{attrs.get('count_include_pad', 0)}) is not supported: bnncc pads "
                           "only in a Conv's sliding window", node)
        if attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise self.err("ceil-mode or dilated AveragePool is not supported", node)
        kh, kw = attrs["kernel_shape"]
        sh, sw = attrs.get("strides", [1, 1])
        return self._sum_pool(node, x, kh, kw, sh, sw)

    @handles("GlobalAveragePool")
    def op_GlobalAveragePool(self, node, ins, attrs):
        x = ins[0]
        if not isinstance(x, Act) or len(x.shape) != 4:
            raise self.err("GlobalAveragePool needs an NCHW feature map", node)
        return self._sum_pool(node, x, x.shape[2], x.shape[3], 1, 1)
