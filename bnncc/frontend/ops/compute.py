"""Compute ops: MatMul / Gemm become an MVAU, Conv a sliding window plus an MVAU, a
grouped or depthwise Conv a depthwise-order sliding window plus a VVAU."""
from __future__ import annotations

import numpy as np

from ...datatypes import DataType
from ...layers import MVAU, VVAU, SlidingWindow
from ...layers.border import Border
from ...passes.chain import ChainOp, reduce_channels
from ...passes.widths import mvau_acc_range
from ..values import Act, Const, canonical_pos
from . import handles


class ComputeOps:
    def _mvau(self, node, x: Act, wq: np.ndarray, ws: np.ndarray, wdt: DataType,
              k_offset: np.ndarray, in_shape: tuple, out_shape: tuple, pred: str,
              border: Border | None = None) -> MVAU:
        """Build an MVAU from integer weights wq (MH, MW) in stream column order. A border
        whose classes pad an odd number of columns needs the add/sub datapath (its
        popcount correction would be half an integer, bnncc/layers/border.py)."""
        binary = x.dtype.is_bipolar and wdt.is_bipolar and (border is None or border.popcount_ok())
        lo, hi = mvau_acc_range(wq, x.dtype, binary)
        accdt = DataType.for_range(int(lo.min()), int(hi.max()))
        layer = MVAU(self.new_name("mvau"), x.dtype, accdt, in_shape, out_shape, [node.name],
                     weights=wq, wdt=wdt, binary=binary, accdt=accdt, border=border)
        self.add_layer(layer, pred)
        return layer

    def _vvau(self, node, x: Act, wq: np.ndarray, wdt: DataType, groups: int, kernel: tuple,
              in_shape: tuple, out_shape: tuple, pred: str) -> VVAU:
        """Build a VVAU from integer weights wq (C_out, K * CIN), columns k * CIN + ci."""
        binary = x.dtype.is_bipolar and wdt.is_bipolar
        lo, hi = mvau_acc_range(wq, x.dtype, binary)
        accdt = DataType.for_range(int(lo.min()), int(hi.max()))
        layer = VVAU(self.new_name("vvau"), x.dtype, accdt, in_shape, out_shape, [node.name],
                     weights=wq, wdt=wdt, groups=groups, kernel=kernel, binary=binary,
                     accdt=accdt)
        self.add_layer(layer, pred)
        return layer

    def _acc_affine(self, layer: MVAU, s: float, ws: np.ndarray, offset: np.ndarray):
        """Per-channel (mul, add) with real = mul * hw_acc + add."""
        mul = s * ws
        if layer.binary:   # dot = 2 * popcount - MW
            return 2 * mul, offset - layer.mw * mul
        return mul, offset

    @handles("MatMul")
    def op_MatMul(self, node, ins, attrs):
        folded = self.generic(node, ins, attrs)
        if folded is not None:
            return folded
        x, w = ins
        if not isinstance(x, Act) or not isinstance(w, Const):
            raise self.err("MatMul must be activation x constant weights", node)
        return self.dense(node, x, w, transpose=False)

    @handles("Gemm")
    def op_Gemm(self, node, ins, attrs):
        x, w = ins[0], ins[1]
        if not isinstance(x, Act) or not isinstance(w, Const):
            raise self.err("Gemm must be activation x constant weights", node)
        if attrs.get("transA", 0):
            raise self.err("Gemm with transA=1 is not supported", node)
        y = self.dense(node, x, w, transpose=bool(attrs.get("transB", 0)))
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        if alpha != 1.0:
            y.chain.append(ChainOp("mul", (self.full(np.float32(alpha), y.shape),), node.name))
        if len(ins) > 2 and ins[2] is not None:
            c = np.asarray(self.const(node.input[2], node), np.float32) * np.float32(beta)
            y.chain.append(ChainOp("add", (self.full(c, y.shape).astype(np.float32),), node.name))
        return y

    def dense(self, node, x: Act, w: Const, transpose: bool) -> Act:
        x = self.integer(x, node)
        if len(x.shape) != 2 or x.shape[0] != 1:
            raise self.err(f"fully connected input must be (1, K), got {list(x.shape)}", node)
        s, r, add = self.int_input(x, node)
        wq, ws, wdt = self.weights(w, node, axis=0 if transpose else 1)
        if transpose:
            wq = wq.T
        w_real = wq * ws[None, :]
        if np.any(r != 1):   # per-feature input scales become integer weight factors
            wq = wq * r.reshape(-1, 1)
            wdt = DataType.for_values(wq)
        k = x.shape[1]
        if wq.ndim != 2 or wq.shape[0] != k:
            raise self.err(f"weight shape {list(wq.shape)} does not match input {k}", node)
        src_shape = self.src_shape(x)
        if int(np.prod(src_shape)) != k:
            raise self.err("fully connected input is a subset of its producer's output", node)
        order = np.argsort(x.pos.reshape(-1))      # ONNX feature index at each stream position
        w_hw = wq[order, :].T.copy()               # (MH, MW) in stream order
        m = wq.shape[1]
        offset = add.reshape(-1).astype(np.float64) @ w_real.astype(np.float64)
        pred = x.src
        if len(src_shape) > 1:
            self.notes.append(f"{node.name}: flattened feature map; weights permuted to "
                              "channels-last stream order")
        layer = self._mvau(node, x, w_hw, ws, wdt, offset, (k,), (m,), pred)
        mul, addv = layer.real_of_acc = self._acc_affine(layer, s, ws, offset)
        shape = (1, m)
        return Act(shape, np.arange(m).reshape(shape), layer.name, layer.accdt,
                   [ChainOp("affine", (self.full(mul, shape), self.full(addv, shape)), node.name)])

    def _spatial(self, node, x: Act):
        if len(x.shape) != 4:
            raise self.err(f"expected an NCHW tensor, got shape {list(x.shape)}", node)
        if not np.array_equal(x.pos, canonical_pos(x.shape)) or \
                tuple(self.src_shape(x)) != (x.shape[2], x.shape[3], x.shape[1]):
            raise self.err("the input's layout is not the channels-last stream of its "
                           "producer (a Transpose that moves channels is not supported here)", node)

    def _pad_code(self, node, x: Act, value: float, s: float, r_c, add_c):
        """(integer code the window pads with, whether the MVAU needs border corrections)
        for pads of real value `value`: the input's own code for it if it has one, else,
        for zero padding of a bipolar input, -1 with corrections."""
        q = (value - add_c) / (s * r_c)
        lo, hi = (-1, 1) if x.dtype.is_bipolar else (x.dtype.min, x.dtype.max)
        if np.all(q == q[0]) and q[0] == np.round(q[0]) and lo <= q[0] <= hi and \
                (not x.dtype.is_bipolar or abs(q[0]) == 1):
            return int(q[0]), False
        if x.dtype.is_bipolar and value == 0.0 and not np.any(add_c):
            return -1, True
        raise self.err(f"padding with {value:g} needs an input datatype that can represent "
                       f"it ({x.dtype} cannot)", node)

    @handles("Conv")
    def op_Conv(self, node, ins, attrs):
        x, w = ins[0], ins[1]
        if not isinstance(x, Act) or not isinstance(w, Const):
            raise self.err("Conv must be activation x constant weights", node)
        pending = x.pad
        x = self.stream_layout(node, self.canonical_input(self.integer(x, node)))
        self._spatial(node, x)
        groups = int(attrs.get("group", 1))
        if any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise self.err("dilated convolution is not supported", node)
        s, r, add = self.int_input(x, node)
        wq, ws, wdt = self.weights(w, node, axis=0)
        if wq.ndim != 4:
            raise self.err(f"Conv weights must be 4-D (OC, IC, KH, KW), got {list(wq.shape)}",
                           node)
        w_real = wq * ws[:, None, None, None]
        oc, ic, kh, kw = wq.shape
        if "kernel_shape" in attrs and list(attrs["kernel_shape"]) != [kh, kw]:
            raise self.err(f"kernel_shape {list(attrs['kernel_shape'])} contradicts the "
                           f"weights' {kh}x{kw} kernel", node)
        _, c, h, wd = x.shape
        if groups < 1 or c % groups or oc % groups or ic * groups != c:
            raise self.err(f"group={groups} does not split {c} input channels into groups of "
                           f"{ic} and {oc} output channels evenly", node)
        r_c = reduce_channels(r, x.pos.reshape(-1) % x.shape[1], x.shape[1])
        if r_c is None:
            raise self.err("input scale varies within a channel", node)
        # the input channel each weight column reads: group g of output o reads g*ic + i
        in_ch = (np.arange(oc)[:, None] // (oc // groups)) * ic + np.arange(ic)[None, :]
        if np.any(r_c != 1):   # per-channel input scales become integer weight factors
            wq = wq * r_c[in_ch][:, :, None, None]
            wdt = DataType.for_values(wq)
        sh, sw = attrs.get("strides", [1, 1])
        (pt, pl, pb, pr), pad_real = self.conv_pads(node, x.shape, pending, attrs, (kh, kw),
                                                    (sh, sw))
        oh, ow = (h + pt + pb - kh) // sh + 1, (wd + pl + pr - kw) // sw + 1
        if oh <= 0 or ow <= 0:
            raise self.err("kernel larger than the padded input", node)
        add_c = reduce_channels(add, x.pos.reshape(-1) % c, c)
        if add_c is None:
            raise self.err("input offset varies within a channel", node)
        pad_value, border = 0, None
        if pt or pl or pb or pr:
            pad_value, corrected = self._pad_code(node, x, pad_real, s, r_c, add_c)
            if corrected:
                border = Border((h, wd), (oh, ow), (kh, kw), (sh, sw), (pt, pl, pb, pr), c)
        swg = SlidingWindow(self.new_name("swg"), x.dtype, x.dtype, (h, wd, c),
                            (oh, ow, kh * kw * c), [node.name], kernel=(kh, kw), stride=(sh, sw),
                            pads=(pt, pl, pb, pr), pad_value=pad_value,
                            depthwise=groups > 1, simd=ic if groups > 1 else 1)
        self.add_layer(swg, x.src)
        w_hw = wq.transpose(0, 2, 3, 1).reshape(oc, -1).copy()
        offset = (add_c[in_ch] * w_real.sum((2, 3))).sum(1)
        if groups > 1:
            if border is not None:
                raise self.err("zero padding of bipolar input into a grouped / depthwise "
                               "convolution is not supported (pad with +1 or -1 instead)", node)
            layer = self._vvau(node, x, w_hw, wdt, groups, (kh, kw), (oh, ow, kh * kw * c),
                               (oh, ow, oc), swg.name)
        else:
            layer = self._mvau(node, x, w_hw, ws, wdt, offset, (oh, ow, kh * kw * c),
                               (oh, ow, oc), swg.name, border)
        mul, addv = layer.real_of_acc = self._acc_affine(layer, s, ws, offset)
        shape = (1, oc, oh, ow)
        cb = lambda v: self.full(np.asarray(v).reshape(1, oc, 1, 1), shape)
        chain = [ChainOp("affine", (cb(mul), cb(addv)), node.name)]
        if len(ins) > 2 and ins[2] is not None:
            bias = np.asarray(self.const(node.input[2], node), np.float32)
            chain.append(ChainOp("add", (cb(bias).astype(np.float32),), node.name))
        return Act(shape, canonical_pos(shape), layer.name, layer.accdt, chain)
