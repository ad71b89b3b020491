"""onnxruntime's QOperator format (quantize_static(quant_format=QOperator), or ORT's own
QDQ fusion): QLinearConv, QLinearMatMul and com.microsoft QGemm on integer tensors.

onnxruntime computes these on integers and requantizes in float32: the int32
accumulator (bias included) is converted to float, multiplied by the float32 multiplier
x_scale * w_scale / y_scale, rounded half to even, offset by the output zero point and
saturated. The lowering builds the same MVAU as Conv / MatMul on the integers minus
their zero points and gives the quantizer exactly that float chain, so the thresholds
reproduce onnxruntime bit for bit. The tensors between these ops are the integers
themselves (their ONNX value), as after QuantizeLinear.

The com.microsoft QLinearAdd / QLinearMul / QLinearGlobalAveragePool / QLinearConcat
follow the kernels this machine runs (x86-64 with AVX2; docs/qoperator.md), bit for
bit: the pool, the concat's requantizations and every constant operand as a float chain
of one stream; an add of two streams as an
AddStreams whose thresholds are read off the kernel's outputs on every code pair, when
those are monotone in the exact sum (else they round the exact sum, with a note).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from ...datatypes import DataType
from ...passes.chain import ChainOp, compose_affine
from ...quantizers import LinearQuant, Quantizer
from ..values import Act, Const
from . import handles

_F32 = np.float32


@dataclass
class _KernelTable(Quantizer):
    """A tabulated monotone step function of an integer accumulator: the level of the
    largest tabulated accumulator <= acc (thresholds land on tabulated values)."""

    keys: np.ndarray = None    # sorted distinct accumulators
    lv: np.ndarray = None      # their levels, non-decreasing

    def levels(self, y: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.keys, np.asarray(y, np.int64), side="right") - 1
        return self.lv[np.maximum(i, 0)]


def _fma32(x: np.ndarray, r, c: np.ndarray):
    """float32 fma(x, r, c) for integer codes x and float32 r, c, and whether the float64
    sum it rounds was exact (else the caller must not trust it)."""
    p = x * np.float64(r)                 # exact: an 8-bit code times a 24-bit mantissa
    c = np.asarray(c, np.float64)
    s = p + c
    bv = s - p
    err = (p - (s - bv)) + (c - bv)       # TwoSum: the rounding error of p + c
    return s.astype(_F32), err == 0


def _convergents(ra, rb):
    """The continued-fraction convergents p / q of the exact ratio rA / rB, ending with it."""
    from fractions import Fraction
    x = Fraction(float(ra)) / Fraction(float(rb))
    h0, h1, k0, k1 = 0, 1, 1, 0
    while True:
        a = x.numerator // x.denominator
        h0, h1, k0, k1 = h1, a * h1 + h0, k1, a * k1 + k0
        if h1 > 0:
            yield h1, k1
        if x == a:
            return
        x = 1 / (x - a)


def _mlas_add_table(adt, bdt, ka, kb, ra, rb, f, lo, hi):
    """MLAS's AVX2 QLinearAdd, c = rne(fma(a, rA, fma(b, rB, F))) saturated, on every code
    pair, as (sorted accumulators ka*a + kb*b, levels); None if it is not a monotone
    function of the accumulator there (then no thresholds reproduce it)."""
    na, nb = adt.max - adt.min + 1, bdt.max - bdt.min + 1
    if na * nb > 1 << 18:
        return None
    av, bv = np.meshgrid(np.arange(adt.min, adt.max + 1), np.arange(bdt.min, bdt.max + 1),
                         indexing="ij")
    inner, ok1 = _fma32(bv.astype(np.float64), rb, np.full(bv.shape, f, _F32))
    out, ok2 = _fma32(av.astype(np.float64), ra, inner)
    if not (ok1.all() and ok2.all()):
        return None
    c = np.clip(np.round(out.astype(np.float64)), lo, hi).astype(np.int64).reshape(-1)
    acc = (int(ka) * av.astype(np.int64) + int(kb) * bv.astype(np.int64)).reshape(-1)
    order = np.argsort(acc, kind="stable")
    acc, c = acc[order], c[order]
    same, step = np.diff(acc) == 0, np.diff(c)
    if np.any(step < 0) or np.any(same & (step != 0)):
        return None                       # not a non-decreasing function of the sum
    keys, first = np.unique(acc, return_index=True)
    return keys, c[first] - lo


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
        # the quantizer reads the op's own accumulator (one reader), not the op's input,
        # which may feed other ops too (a residual shortcut): fuse into the MVAU
        acc = onnx.helper.make_node(node.op_type, [f"{node.output[0]}#accumulator"],
                                    list(node.output), name=node.name)
        q = self.quantize(acc, y, LinearQuant(dtype, ones, np.broadcast_to(
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

    # -- elementwise and pooling (com.microsoft) ---------------------------------------
    def _qpair(self, node, i_s, i_zp, what):
        """(float32 scale, integer zero point, zero point dtype) of one QLinear operand."""
        s = _F32(self._qscalar(node, i_s, f"{what} scale"))
        if not s > 0:
            raise self.err(f"{what} scale must be positive", node)
        has_zp = len(node.input) > i_zp and node.input[i_zp]
        zp = self._qscalar(node, i_zp, f"{what} zero point") if has_zp else np.zeros((), np.uint8)
        return s, int(zp), zp.dtype

    def _raw_int(self, node, x) -> Act:
        """A QLinear operand whose ONNX value is the integer the hardware stream holds."""
        if not isinstance(x, Act) or x.src is None:
            raise self.err("the quantized input must come from QuantizeLinear or another "
                           "QLinear op", node)
        affine = compose_affine(x.chain)
        if affine is None or np.any(np.asarray(affine[0]) != 1) or np.any(np.asarray(affine[1]) != 0):
            raise self.err("the quantized input is not an integer tensor straight from a "
                           "QuantizeLinear or QLinear op", node)
        return x

    def _requant_out(self, node, y: Act, chain, zp_dtype, zp=0) -> Act:
        """Quantize y through `chain` (onnxruntime's float32 steps) to the output integers."""
        info = np.iinfo(zp_dtype)
        dtype = DataType.for_range(int(info.min), int(info.max))
        y = Act(y.shape, y.pos, y.src, y.dtype, chain, y.shared)
        q = self.quantize(node, y, LinearQuant(dtype, np.ones(y.shape), self.full(float(zp), y.shape)))
        q.chain = [ChainOp("affine", (self.full(1.0, q.shape), self.full(0.0, q.shape)),
                           node.name)]
        return q

    @handles("QLinearAdd")
    def op_QLinearAdd(self, node, ins, attrs):
        """MLAS's AVX2 kernel (the one this x86-64 CPU runs): c = rne(a * rA + (b * rB + F))
        with rA = sa / sc, rB = sb / sc and F = zc - (rA * za + rB * zb) in float32, two
        fused multiply-adds. Two streams: an AddStreams of ka * a + kb * b with
        ka / kb = rA / rB exactly; its thresholds come from the kernel's outputs on every
        code pair when they are monotone in that sum, else from the exact value (which
        the float kernel misses only within float32 noise of a tie). A constant
        operand: one fused multiply-add of the stream."""
        sa, za, zdt = self._qpair(node, 1, 2, "A")
        sb, zb, _ = self._qpair(node, 4, 5, "B")
        sc, zc, cdt = self._qpair(node, 6, 7, "output")
        zdt = cdt if len(node.input) > 7 and node.input[7] else zdt
        ra, rb = _F32(sa / sc), _F32(sb / sc)
        f = _F32(_F32(zc) - _F32(np.float64(ra) * za + np.float64(_F32(rb * _F32(zb)))))
        a, b = ins[0], ins[3]
        if isinstance(a, Act) and isinstance(b, Act):
            a, b = self._raw_int(node, a), self._raw_int(node, b)
            scaled = lambda x, r: Act(x.shape, x.pos, x.src, x.dtype, [ChainOp(
                "affine", (self.full(np.float64(r), x.shape), self.full(0.0, x.shape)),
                node.name)], x.shared)
            y = self.add_streams(node, scaled(a, ra), scaled(b, rb), 1)
            layer = self.src_layer(y)
            info = np.iinfo(zdt)
            table = None
            for ka, kb in ([] if isinstance(layer.ka, tuple) else _convergents(ra, rb)):
                # the smallest ratio (a continued-fraction convergent of rA / rB, the
                # exact one last) under which the kernel's outputs are monotone
                table = _mlas_add_table(a.dtype, b.dtype, ka, kb, ra, rb, f,
                                        int(info.min), int(info.max))
                if table is not None:
                    break
            if table is not None:   # onnxruntime's own outputs, as thresholds on ka*a + kb*b
                if (ka, kb) != (layer.ka, layer.kb):
                    ends = [ka * va + kb * vb for va in (a.dtype.min, a.dtype.max)
                            for vb in (b.dtype.min, b.dtype.max)]
                    layer.ka, layer.kb = ka, kb
                    layer.odt = DataType.for_range(min(ends), max(ends))
                    y = Act(y.shape, y.pos, y.src, layer.odt, y.chain, y.shared)
                dtype = DataType.for_range(int(info.min), int(info.max))
                q = self.quantize(node, Act(y.shape, y.pos, y.src, y.dtype, [], y.shared),
                                  _KernelTable(dtype, np.ones(y.shape), np.zeros(y.shape),
                                               keys=table[0], lv=table[1]))
                q.chain = [ChainOp("affine", (self.full(1.0, q.shape), self.full(0.0, q.shape)),
                                   node.name)]
                return q
            self.notes.append(f"{node.name}: onnxruntime's float32 QLinearAdd is not monotone "
                              "in the exact sum on every code pair; the design rounds the "
                              "exact sum (it may differ within float32 noise of a tie)")
            mul = y.chain[0].params[0]
            return self._requant_out(node, y, [ChainOp("affine", (mul, self.full(
                np.float64(f), y.shape)), node.name)], zdt)
        if isinstance(a, Act) == isinstance(b, Act):
            raise self.err("QLinearAdd of two constants should have been folded", node)
        x, rx, c, rc = (self._raw_int(node, a), ra, b, rb) if isinstance(a, Act) else \
            (self._raw_int(node, b), rb, a, ra)
        cv, vector = self._bcast_const(node, c, x)
        if vector:      # fma(c, rC, F) per element, then fma(x, rX, that)
            fc, exact = _fma32(cv.astype(np.float64), rc, np.full(cv.shape, f, _F32))
            if not exact.all():
                raise self.err("the constant operand's fused multiply-add cannot be "
                               "reproduced exactly (scales too far apart)", node)
        else:           # a scalar per span: F + c * rC first, two roundings
            fc = (_F32(f) + (cv.astype(_F32) * _F32(rc)).astype(_F32)).astype(_F32)
        return self._requant_out(node, x, [ChainOp("affine", (self.full(np.float64(rx), x.shape),
                                                              fc.astype(np.float64)), node.name)],
                                 zdt)

    def _bcast_const(self, node, c, x: Act) -> np.ndarray:
        v = np.asarray(c.value)
        if not np.issubdtype(v.dtype, np.integer):
            raise self.err("the constant operand must be an integer tensor", node)
        if np.broadcast_shapes(v.shape, x.shape) != tuple(x.shape):
            raise self.err(f"constant of shape {list(v.shape)} would broadcast the tensor of "
                           f"shape {list(x.shape)}", node)
        vs = (1,) * (len(x.shape) - v.ndim) + tuple(v.shape)
        if v.size <= 1 or (vs[-1] == 1 and x.shape[-1] > 1):
            vector = False      # onnxruntime's broadcast hands the kernel one value per span
        elif vs == tuple(x.shape):
            vector = True       # same shape: the kernel reads both operands as vectors
        else:
            raise self.err(f"a constant of shape {list(v.shape)} broadcast along outer axes "
                           f"of a tensor of shape {list(x.shape)} is not supported (only "
                           "per-tensor, per-channel or same-shape constants)", node)
        return np.broadcast_to(v.astype(np.int64), x.shape), vector

    @handles("QLinearMul")
    def op_QLinearMul(self, node, ins, attrs):
        """MLAS (SSE2 on x86-64): c = rne(float((a - za) * (b - zb)) * (sa * sb / sc) + zc),
        an exact integer product, then float32. A constant operand folds into the
        stream's requantization bit for bit; two streams would need a multiplier."""
        sa, za, zdt = self._qpair(node, 1, 2, "A")
        sb, zb, _ = self._qpair(node, 4, 5, "B")
        sc, zc, cdt = self._qpair(node, 6, 7, "output")
        zdt = cdt if len(node.input) > 7 and node.input[7] else zdt
        a, b = ins[0], ins[3]
        if isinstance(a, Act) and isinstance(b, Act):
            raise self.err("QLinearMul of two non-constant tensors is not supported: bnncc "
                           "has no stream-by-stream multiplier (only a multiply by a "
                           "constant folds into thresholds)", node)
        if not isinstance(a, Act) and not isinstance(b, Act):
            raise self.err("QLinearMul of two constants should have been folded", node)
        x, zx, c, zk = (self._raw_int(node, a), za, b, zb) if isinstance(a, Act) else \
            (self._raw_int(node, b), zb, a, za)
        k = self._bcast_const(node, c, x)[0] - zk
        ratio = _F32(_F32(sa * sb) / sc)
        chain = [ChainOp("affine", (k.astype(np.float64), (-zx * k).astype(np.float64)), node.name),
                 ChainOp("mul", (self.full(ratio, x.shape).astype(_F32),), node.name),
                 ChainOp("add", (self.full(_F32(zc), x.shape).astype(_F32),), node.name)]
        return self._requant_out(node, x, chain, zdt)

    @handles("QLinearGlobalAveragePool")
    def op_QLinearGlobalAveragePool(self, node, ins, attrs):
        """MLAS: the int32 sum minus zx * HW, times the float32 scale sx / (sy * HW),
        rounded half to even, + zy, saturated: a SumPool whose requantization
        thresholds reproduce that float chain bit for bit."""
        sx, zx, _ = self._qpair(node, 1, 2, "input")
        sy, zy, zdt = self._qpair(node, 3, 4, "output")
        x = self._raw_int(node, ins[0])
        if len(x.shape) != 4:
            raise self.err("QLinearGlobalAveragePool needs a 4-d feature map", node)
        last = bool(attrs.get("channels_last", 0))
        if last:   # NHWC in the graph: pool the NCHW view, hand back (1, 1, 1, C)
            x = self.op_Transpose(node, [x], {"perm": [0, 3, 1, 2]})
        hw = x.shape[2] * x.shape[3]
        if hw * max(abs(x.dtype.min), abs(x.dtype.max)) >= 1 << 24:
            raise self.err("QLinearGlobalAveragePool over more than 2^24 / 255 pixels is not "
                           "supported (the float sum would round)", node)
        y = self._sum_pool(node, x, x.shape[2], x.shape[3], 1, 1)
        scale = _F32(sx / _F32(sy * _F32(hw)))
        chain = [ChainOp("affine", (self.full(1.0, y.shape), self.full(float(-zx * hw), y.shape)),
                         node.name),
                 ChainOp("mul", (self.full(scale, y.shape).astype(_F32),), node.name)]
        q = self._requant_out(node, y, chain, zdt, zy)
        return self.op_Transpose(node, [q], {"perm": [0, 2, 3, 1]}) if last else q

    @handles("QLinearConcat")
    def op_QLinearConcat(self, node, ins, attrs):
        """onnxruntime copies an input that has the output's scale and zero point and maps
        any other through a 256-entry table, QuantizeLinear(DequantizeLinear(x)) in
        float32: a Thresholding of that input (monotone in its code), then one Concat of
        streams that all hold output codes."""
        if len(node.input) < 5 or (len(node.input) - 2) % 3:
            raise self.err("QLinearConcat takes Y_scale, Y_zero_point, then (X, scale, "
                           "zero point) triples", node)
        sy, zy, ydt = self._qpair(node, 0, 1, "output")
        info = np.iinfo(ydt)
        parts = []
        for i in range(2, len(node.input), 3):
            if not isinstance(ins[i], Act):
                raise self.err("QLinearConcat of a constant tensor is not supported", node)
            x = self._raw_int(node, ins[i])
            sx, zx, _ = self._qpair(node, i + 1, i + 2, "input")
            if sx == sy and zx == zy:
                parts.append(x)
                continue
            y = Act(x.shape, x.pos, x.src, x.dtype, [
                ChainOp("sub", (self.full(_F32(zx), x.shape).astype(_F32),), node.name),
                ChainOp("mul", (self.full(sx, x.shape).astype(_F32),), node.name)], x.shared)
            q = self.quantize(node, y, LinearQuant(
                DataType.for_range(int(info.min), int(info.max)),
                self.full(np.float64(sy), x.shape), self.full(float(zy), x.shape)))
            q.chain = [ChainOp("affine", (self.full(1.0, q.shape), self.full(0.0, q.shape)),
                               node.name)]
            parts.append(q)
        return self.op_Concat(node, parts, {"axis": attrs.get("axis", 1)})

    @handles("QLinearLeakyRelu", "QLinearSigmoid", "QLinearAveragePool")
    def op_qlinear_refused(self, node, ins, attrs):
        why = {"QLinearAveragePool": "only the global form (QLinearGlobalAveragePool) is "
                                     "lowered",
               }.get(node.op_type, "not lowered yet (onnxruntime evaluates it through a "
                                   "256-entry float lookup table)")
        raise self.err(f"{node.op_type} is not supported: {why}; quantize in QDQ format "
                       "(quantize_static's default) instead", node)
