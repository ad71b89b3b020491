"""Quantizers (Quant, BipolarQuant, Sign, Trunc, MultiThreshold): on constants they give
integer weights; on the raw input the host input stage; on a hardware stream exact
integer thresholds, fused into the producing MVAU where possible."""
from __future__ import annotations

import numpy as np

from ...datatypes import DataType
from ...ir import INPUT, HostStage
from ...layers import MVAU, VVAU, Thresholding
from ...passes.chain import ChainOp, reduce_channels
from ...passes.thresholds import fold_thresholds
from ...passes.widths import mvau_acc_range
from ...quantizers import (ROUNDING_MODES, BipolarQuant, FloatThresholds,
                           IntQuant, per_element_int_quant, SignQuant, TruncQuant)
from ..values import Act, Const, QConst, _s, canonical_pos, hw_perm
from . import handles


class QuantOps:
    def _qparam(self, node, i, shape):
        v = self.get(node.input[i], node)
        if not isinstance(v, Const):
            raise self.err(f"quantizer parameter '{node.input[i]}' is not constant", node)
        val = np.asarray(v.value, np.float64)
        try:
            return np.broadcast_to(val, shape).copy()
        except ValueError:
            raise self.err(f"quantizer parameter of shape {list(val.shape)} does not "
                           f"broadcast to {list(shape)}", node) from None

    def _check_scale(self, node, scale):
        bad = scale[~(np.isfinite(scale) & (scale > 0))]
        if bad.size:
            raise self.err(f"quantizer scale must be positive and finite, got {bad[0]:g}", node)

    @handles("Quant")
    def op_Quant(self, node, ins, attrs):
        x = ins[0]
        shape = x.value.shape if isinstance(x, Const) else x.shape
        scale = self._qparam(node, 1, shape)
        zeropt = self._qparam(node, 2, shape)
        bits_arr = np.asarray(self.const(node.input[3], node), np.float64)
        if bits_arr.size == 0 or not np.all(np.isfinite(bits_arr)) or \
                np.any(bits_arr != np.round(bits_arr)) or np.any(bits_arr < 0) or \
                np.any(bits_arr > 32):
            raise self.err(f"bit width must be integers in 0..32, got {bits_arr.ravel()[:4]}",
                           node)
        signed, narrow = bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0))
        rounding = _s(attrs.get("rounding_mode", "ROUND")).upper()
        if rounding not in ROUNDING_MODES:
            raise self.err(f"unknown rounding mode {rounding}", node)
        self._check_scale(node, scale)
        if not np.all(np.isfinite(zeropt)):
            raise self.err("zero-point must be finite", node)
        if bits_arr.size > 1 or bits_arr.ravel()[0] == 0:   # per-channel widths (or 0 bits)
            try:
                bits_full = np.broadcast_to(bits_arr, shape)
            except ValueError:
                raise self.err(f"bit width of shape {list(bits_arr.shape)} does not "
                               f"broadcast to {list(shape)}", node) from None
            self.per_channel_widths = True
            return self.quantize(node, x, per_element_int_quant(scale, zeropt, bits_full,
                                                                signed, narrow, rounding))
        bits = int(bits_arr.ravel()[0])
        if bits == 1 and signed:
            dtype = DataType.bipolar()
        elif signed:
            dtype = DataType.int(bits, narrow)
        else:
            dtype = DataType.uint(bits, narrow)
        if np.any(zeropt < dtype.min) or np.any(zeropt > dtype.max):
            bad = zeropt[(zeropt < dtype.min) | (zeropt > dtype.max)]
            raise self.err(f"zero-point {bad.ravel()[0]:g} is outside the quantized type "
                           f"{dtype}'s range [{dtype.min}, {dtype.max}]", node)
        quant = IntQuant(dtype, scale, zeropt, rounding)
        return self.quantize(node, x, quant)

    @handles("BipolarQuant")
    def op_BipolarQuant(self, node, ins, attrs):
        x = ins[0]
        shape = x.value.shape if isinstance(x, Const) else x.shape
        scale = self._qparam(node, 1, shape)
        self._check_scale(node, scale)
        return self.quantize(node, x, BipolarQuant(DataType.bipolar(), scale, np.zeros(shape)))

    @handles("Sign")
    def op_Sign(self, node, ins, attrs):
        x = ins[0]
        shape = x.value.shape if isinstance(x, Const) else x.shape
        return self.quantize(node, x, SignQuant(DataType.int(2, narrow=True), np.ones(shape),
                                                np.zeros(shape)))

    @handles("Trunc")
    def op_Trunc(self, node, ins, attrs):
        x = ins[0]
        if isinstance(x, Const):
            return self._const_only(node, ins, attrs)
        shape = x.shape
        scale, zeropt = self._qparam(node, 1, shape), self._qparam(node, 2, shape)
        self._check_scale(node, scale)
        in_bits = int(np.asarray(self.const(node.input[3], node)).ravel()[0])
        rounding = _s(attrs.get("rounding_mode", "FLOOR")).upper()
        opset = {o.domain: o.version for o in self.model.opset_import}.get(node.domain, 2)
        if len(node.input) >= 6 and opset < 2:
            raise self.err("6-input Trunc in a domain declared at opset 1 (where Trunc has "
                           "5 inputs); declare the domain at opset 2", node)
        if len(node.input) >= 6:   # v2: x, scale, zeropt, in_bits, out_scale, out_bits
            out_scale = self._qparam(node, 4, shape)
            out_bits = int(np.asarray(self.const(node.input[5], node)).ravel()[0])
            tscale = 2.0 ** np.round(np.log2(out_scale / scale))
            signed, narrow = bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0))
            dtype = DataType.int(out_bits, narrow) if signed else DataType.uint(out_bits, narrow)
            quant = TruncQuant(dtype, out_scale, zeropt / tscale, scale, zeropt, tscale,
                               rounding, True)
        else:                      # v1: x, scale, zeropt, in_bits, out_bits
            out_bits = int(np.asarray(self.const(node.input[4], node)).ravel()[0])
            tscale = np.full(shape, 2.0 ** (in_bits - out_bits))
            signed = x.dtype is None or x.dtype.signed
            dtype = DataType.int(out_bits) if signed else DataType.uint(out_bits)
            quant = TruncQuant(dtype, scale, zeropt, scale, zeropt, tscale, rounding, False)
        return self.quantize(node, x, quant)

    @handles("MultiThreshold")
    def op_MultiThreshold(self, node, ins, attrs):
        x = ins[0]
        if isinstance(x, Const):
            raise self.err("MultiThreshold on a constant is not supported", node)
        t = np.asarray(self.const(node.input[1], node), np.float64)
        if t.ndim != 2:
            raise self.err("thresholds must be a 2-D (channels, steps) tensor", node)
        layout = _s(attrs.get("data_layout", "NCHW"))
        cax = len(x.shape) - 1 if layout == "NHWC" else 1
        nch = x.shape[cax]
        if t.shape[0] not in (1, nch):
            raise self.err(f"threshold rows {t.shape[0]} do not match {nch} channels", node)
        t = np.sort(t, axis=1)
        bshape = [1] * len(x.shape)
        bshape[cax] = t.shape[0]
        tfull = np.broadcast_to(t.reshape(bshape + [t.shape[1]]), tuple(x.shape) + (t.shape[1],))
        out_scale = float(attrs.get("out_scale", 1.0))
        out_bias = float(attrs.get("out_bias", 0.0))
        odt_name = _s(attrs.get("out_dtype", ""))
        nt = t.shape[1]
        if odt_name == "BIPOLAR":
            if nt != 1:
                raise self.err("a BIPOLAR MultiThreshold must have exactly one threshold", node)
            dtype = DataType.bipolar()
            # level L -> q = 2L - 1; real = out_scale * L + out_bias
            scale, zeropt = out_scale / 2, -(out_scale / 2 + out_bias) / (out_scale / 2)
        elif out_scale != 0 and float(out_bias / out_scale).is_integer():
            b = int(out_bias / out_scale)
            dtype = DataType.for_range(b, b + nt)
            scale, zeropt = out_scale, 0.0
        else:
            dtype = DataType.for_range(0, nt)
            scale, zeropt = out_scale, -out_bias / out_scale
        if scale <= 0:
            raise self.err("MultiThreshold out_scale must be positive", node)
        quant = FloatThresholds(dtype, np.full(x.shape, scale), np.full(x.shape, zeropt), tfull)
        return self.quantize(node, x, quant)

    def quantize(self, node, x, quant):
        if isinstance(x, Const):
            return self.quantize_const(node, x, quant)
        if x.src is None:
            return self.quantize_input(node, x, quant)
        return self.fold(node, x, quant)

    def quantize_const(self, node, c: Const, quant):
        if not np.all(np.isfinite(np.asarray(c.value, np.float64))):
            raise self.err("the quantized constant (weights) holds NaN or Inf", node)
        q = quant.values(quant.levels(np.asarray(c.value, np.float32)))
        value = ((q - quant.zeropt) * quant.scale).astype(np.float32)
        dtype = quant.dtype
        if isinstance(quant, SignQuant):
            dtype = DataType.bipolar() if not np.any(q == 0) else dtype
        return Const(value, QConst(q, quant.scale, quant.zeropt, dtype))

    def quantize_input(self, node, x: Act, quant):
        if self.input_stage is not None:
            raise self.err("a second quantizer on the raw float input is not supported", node)
        shape = x.shape
        perm = hw_perm(len(shape))
        hw_shape = tuple(shape[p] for p in perm)[1:]
        dtype = quant.dtype
        if isinstance(quant, SignQuant):
            self.notes.append("input Sign can produce 0, so the first layer takes INT2 "
                              "values {-1, 0, 1}")
        self.input_stage = HostStage(shape=shape, gather=x.pos.reshape(-1), chain=x.chain,
                                     quant=quant, hw_order=perm,
                                     hw_shape=hw_shape)
        return self._quant_act(shape, canonical_pos(shape), INPUT, dtype, quant, node)

    def _quant_act(self, shape, pos, src, dtype, quant, node):
        """The Act a quantizer outputs: real = scale * (q - zeropt)."""
        scale = np.broadcast_to(quant.scale, shape).astype(np.float64)
        zp = np.broadcast_to(quant.zeropt, shape).astype(np.float64)
        return Act(tuple(shape), pos, src, dtype,
                   [ChainOp("affine", (scale, -scale * zp), node.name)])

    def fold(self, node, x: Act, quant) -> Act:
        """Quantizer on a hardware stream: integer thresholds, fused into an MVAU if possible."""
        src = self.src_layer(x)
        src_shape = self.src_shape(x)
        nch = src_shape[-1]
        channel_of = (x.pos.reshape(-1) % nch)
        if x.pos.size != int(np.prod(src_shape)):
            raise self.err("quantizer on a tensor that is a subset of its producer's output", node)
        chain = []
        for op in x.chain:
            params = []
            for p in op.params:
                r = reduce_channels(p, channel_of, nch) if np.ndim(p) else p
                if r is None:
                    raise self.err("a scale or bias varies within a channel; only "
                                   "per-channel or per-tensor parameters can be folded", node)
                params.append(r)
            chain.append(ChainOp(op.op, tuple(params), op.node))
        qparams = {}
        for k in ("scale", "zeropt", "in_scale", "in_zeropt", "trunc_scale", "qmin", "qmax",
                  "sign1", "threshold"):
            v = getattr(quant, k, None)
            if v is not None:
                r = reduce_channels(np.broadcast_to(v, x.shape), channel_of, nch)
                if r is None:
                    raise self.err("quantizer parameters vary within a channel", node)
                qparams[k] = r
        if isinstance(quant, FloatThresholds):
            tt = quant.thresholds.reshape(-1, quant.thresholds.shape[-1])
            tch = np.empty((nch, tt.shape[1]))
            tch[channel_of] = tt
            if not np.array_equal(tch[channel_of], tt):
                raise self.err("thresholds vary within a channel", node)
            qparams["thresholds"] = tch
        cq = type(quant)(**{**quant.__dict__, **qparams})
        fuse = isinstance(src, (MVAU, VVAU)) and src.thresholds is None and not x.shared and \
            self.consumers.get(node.input[0], 1) == 1 and \
            self._unused_downstream(src.name)
        if fuse:
            lo, hi = mvau_acc_range(src.weights, src.idt, src.binary)
            reflect = src.mw if src.binary else 0
        else:
            lo = np.full(nch, x.dtype.min if not x.dtype.is_bipolar else -1, np.int64)
            hi = np.full(nch, x.dtype.max, np.int64)
            reflect = 0
        f = fold_thresholds(lo, hi, chain, cq, reflect)
        if not fuse and x.dtype.is_bipolar and f.odt.is_bipolar and not f.negate.any() and \
                f.thresholds.shape[1] == 1 and np.all((f.thresholds[:, 0] > -1) &
                                                      (f.thresholds[:, 0] <= 1)):
            # a sign of a bipolar stream that gives it back (Larq's sign(sign(x) + 0.1)):
            # every reachable value keeps its level, so no layer is needed
            return self._quant_act(x.shape, x.pos, x.src, f.odt, quant, node)
        if fuse:
            w = src.weights.copy()
            w[f.negate] *= -1
            src.weights = w
            src.thresholds, src.odt, src.tdt = f.thresholds, f.odt, f.tdt
            src.wdt = DataType.for_values(w) if not src.binary else src.wdt
            src.const_channels = int(f.constant.sum())
            src.negated = f.negate
            src.src.append(node.name)
            name = src.name
        else:
            layer = Thresholding(self.new_name("thr"), x.dtype, f.odt, src_shape, src_shape,
                                 [node.name], thresholds=f.thresholds, tdt=f.tdt,
                                 negate=f.negate if f.negate.any() else None)
            self.add_layer(layer, x.src)
            name = layer.name
        return self._quant_act(x.shape, x.pos, name, f.odt, quant, node)

    def _unused_downstream(self, name: str) -> bool:
        return self.g.out_degree(name) == 0
