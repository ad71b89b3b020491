"""Pooling: MaxPool over integers, AveragePool / GlobalAveragePool as an integer sum
pool with the division left in the float chain (folded into the next quantizer)."""
from __future__ import annotations

import numpy as np

from ...datatypes import DataType
from ...layers import MaxPool, SlidingWindow, SumPool, WindowMax
from ...passes.chain import ChainOp, compose_affine, reduce_channels
from ..values import Act, _s, canonical_pos
from . import handles
from .padding import same_pads


class PoolOps:
    @handles("MaxPool")
    def op_MaxPool(self, node, ins, attrs):
        """Windows that tile the input (kernel == stride, or one window across an axis)
        become a MaxPool block; overlapping, strided-past, padded and ceil-mode windows a
        depthwise-order sliding window padding with the smallest code plus a WindowMax."""
        x = ins[0]
        if not isinstance(x, Act):
            return self._const_only(node, ins, attrs)
        x = self.stream_layout(node, self.integer(x, node))
        self._spatial(node, x)
        if len([o for o in node.output if o]) > 1:
            raise self.err("MaxPool with an indices output is not supported", node)
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
        (pt, pl, pb, pr), oh, ow = self._pool_geometry(node, attrs, h, w, (kh, kw), (sh, sw))
        tiles = all((k == s or o == 1) and i >= k and (i - k) // s + 1 == o
                    for i, k, s, o in ((h, kh, sh, oh), (w, kw, sw, ow)))
        if tiles and not (pt or pl or pb or pr):
            layer = MaxPool(self.new_name("pool"), x.dtype, x.dtype, (h, w, c), (oh, ow, c),
                            [node.name], kernel=(kh, kw), stride=(sh, sw))
            self.add_layer(layer, x.src)
        else:
            pad = -1 if x.dtype.is_bipolar else int(x.dtype.min)
            swg = SlidingWindow(self.new_name("swg"), x.dtype, x.dtype, (h, w, c),
                                (oh, ow, kh * kw * c), [node.name], kernel=(kh, kw),
                                stride=(sh, sw), pads=(pt, pl, pb, pr), pad_value=pad,
                                depthwise=True, simd=1)
            self.add_layer(swg, x.src)
            layer = WindowMax(self.new_name("wmax"), x.dtype, x.dtype, (oh, ow, kh * kw * c),
                              (oh, ow, c), [node.name], kernel=(kh, kw), pe=1)
            self.add_layer(layer, swg.name)
        shape = (1, c, oh, ow)
        chan = x.pos.reshape(-1) % c
        per_c = [reduce_channels(p, chan, c) for p in affine]
        if any(p is None for p in per_c):
            raise self.err("MaxPool input scale varies within a channel", node)
        params = tuple(self.full(p.reshape(1, c, 1, 1), shape) for p in per_c)
        return Act(shape, canonical_pos(shape), layer.name, x.dtype,
                   [ChainOp("affine", params, node.name)])

    def _pool_geometry(self, node, attrs, h, w, kernel, stride):
        """(pads, OH, OW) of a max pool as onnxruntime computes them: explicit or auto_pad
        pads; ceil_mode adds the windows that start inside the input (or the top / left
        pads), which the window pads on the bottom / right. A window that would hold no
        input element at all (its max is -inf) is refused."""
        auto = _s(attrs.get("auto_pad", "NOTSET"))
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            (pt, pb), (pl, pr) = (same_pads(h, kernel[0], stride[0], auto == "SAME_UPPER"),
                                  same_pads(w, kernel[1], stride[1], auto == "SAME_UPPER"))
        elif auto in ("NOTSET", "VALID"):
            pt, pl, pb, pr = attrs.get("pads", [0, 0, 0, 0]) if auto == "NOTSET" else (0,) * 4
        else:
            raise self.err(f"auto_pad '{auto}' is not supported", node)
        if min(pt, pl, pb, pr) < 0:
            raise self.err("negative MaxPool pads are not supported", node)
        ceil = bool(attrs.get("ceil_mode", 0)) and auto in ("NOTSET", "VALID")
        outs, ends = [], []
        for n, k, s, a, e in ((h, kernel[0], stride[0], pt, pb), (w, kernel[1], stride[1], pl, pr)):
            span = n + a + e - k
            if span < 0:
                raise self.err("MaxPool kernel larger than the padded input", node)
            o = (-(-span // s) if ceil else span // s) + 1
            if ceil and (o - 1) * s >= n + a:
                o -= 1
            # the first and the last window reach the input, so every one between does
            if any(i * s + k <= a or i * s >= n + a for i in (0, o - 1)):
                raise self.err("MaxPool with a window that holds only padding (its maximum "
                               "is -inf) is not supported", node)
            outs.append(o)
            ends.append(max(e, (o - 1) * s + k - n - a))
        return (pt, pl, ends[0], ends[1]), outs[0], outs[1]

    def _sum_pool(self, node, x: Act, kh, kw, sh, sw) -> Act:
        x = self.stream_layout(node, self.integer(x, node))
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
