"""Joining streams: residual adds (exact integer ratio of the operands' scales) and
channel Concat."""
from __future__ import annotations

import numpy as np

from ...datatypes import DataType
from ...ir import INPUT
from ...layers import AddStreams, Concat
from ...passes.chain import ChainOp, compose_affine
from ..values import QConst, Act, Const, canonical_pos, hw_perm
from . import handles


class JoinOps:
    def _stream_operand(self, x: Act, node, per_channel: bool = False):
        """An integer stream in its producer's order, as (Act, scale, offsets): a scalar
        scale, or with per_channel the (C,) scales along the channel axis."""
        x = self.integer(x, node)
        hw = tuple(x.shape[p] for p in hw_perm(len(x.shape)))[1:]
        if not np.array_equal(x.pos, canonical_pos(x.shape)) or tuple(self.src_shape(x)) != hw:
            raise self.err("operand is not its producer's stream in order (a layout change "
                           "before a residual add / concat is not supported)", node)
        affine = compose_affine(x.chain)
        if affine is None:
            raise self.err("operand has a non-affine float op (e.g. Relu) that is not followed "
                           "by a quantizer", node)
        mul, add = (np.broadcast_to(v, x.shape) for v in affine)
        if per_channel:
            sc = mul[(0, slice(None)) + (0,) * (len(x.shape) - 2)]
            if not np.array_equal(mul, np.broadcast_to(
                    sc.reshape((1, -1) + (1,) * (len(x.shape) - 2)), x.shape)):
                raise self.err("operand's scales vary within a channel; only per-tensor or "
                               "per-channel scales can be added exactly", node)
            if np.any(sc == 0):
                raise self.err("operand has a zero scale in some channel", node)
            return x, [float(v) for v in sc], add, hw
        s = np.unique(mul)
        if s.size != 1 or s[0] == 0:
            raise self.err("operand has per-channel scales; only per-tensor scales can be "
                           "added exactly", node)
        return x, float(s[0]), add, hw

    def add_streams(self, node, a: Act, b: Act, sign: int) -> Act:
        """Residual add: ka[c] * qa + kb[c] * qb with ka[c] / kb[c] the exact ratio of the
        real scales of channel c (one pair when every channel has the same ratio)."""
        from fractions import Fraction
        if tuple(a.shape) != tuple(b.shape):
            raise self.err(f"operands of shapes {list(a.shape)} and {list(b.shape)}; "
                           "broadcasting adds are not supported", node)
        a, sa, adda, hw = self._stream_operand(a, node, per_channel=True)
        b, sb, addb, _ = self._stream_operand(b, node, per_channel=True)
        ka, kb = [], []
        for xa, xb in zip(sa, sb):
            ratio = Fraction(xa) / Fraction(xb)
            if max(abs(ratio.numerator), ratio.denominator) > 1 << 32:
                raise self.err(f"the operands' scales {xa:g} and {xb:g} have no integer ratio "
                               "below 2^32, so the sum cannot be formed exactly in integers", node)
            ka.append(ratio.numerator)
            kb.append(sign * ratio.denominator)
        mul = np.array([xb / abs(k) for xb, k in zip(sb, kb)])
        if len(set(zip(ka, kb))) == 1:   # one ratio: the per-tensor layer, as before
            ka, kb = ka[0], kb[0]
        else:
            ka, kb = tuple(ka), tuple(kb)
        pairs = zip(ka, kb) if isinstance(ka, tuple) else [(ka, kb)]
        ends = [x * va + y * vb for x, y in pairs
                for va in (a.dtype.min, a.dtype.max) for vb in (b.dtype.min, b.dtype.max)]
        odt = DataType.for_range(min(ends), max(ends))
        layer = AddStreams(self.new_name("add"), a.dtype, odt, hw, hw, [node.name],
                           idt_b=b.dtype, ka=ka, kb=kb, inputs=[a.src, b.src])
        self.add_layer(layer, a.src)
        if b.src != INPUT:
            self.g.add_edge(b.src, layer.name)
        mul = self.full(mul.reshape((1, -1) + (1,) * (len(a.shape) - 2)), a.shape)
        chain = [ChainOp("affine", (mul, adda + sign * addb), node.name)]
        return Act(a.shape, canonical_pos(a.shape), layer.name, odt, chain)

    @handles("Concat")
    def op_Concat(self, node, ins, attrs):
        if all(isinstance(v, Const) for v in ins):
            return self._concat_consts(node, ins, attrs)
        if not all(isinstance(v, Act) for v in ins):
            raise self.err("Concat of a constant and a non-constant tensor is not supported", node)
        nd = len(ins[0].shape)
        if attrs.get("axis", 1) % nd != 1:
            raise self.err("Concat is supported along the channel axis only", node)
        ops = [self._stream_operand(x, node) for x in ins]
        scales = {s for _, s, _, _ in ops}
        if len(scales) != 1:
            raise self.err(f"Concat operands have different scales {sorted(scales)}; "
                           "requantize them to one scale first", node)
        lo = min(x.dtype.min for x, *_ in ops)
        hi = max(x.dtype.max for x, *_ in ops)
        odt = DataType.bipolar() if all(x.dtype.is_bipolar for x, *_ in ops) else \
            DataType.for_range(lo if lo != -1 or hi != 1 else -1, hi)
        chans = tuple(x.shape[1] for x, *_ in ops)
        shape = (1, sum(chans)) + tuple(ins[0].shape[2:])
        hw_out = tuple(shape[p] for p in hw_perm(nd))[1:]
        layer = Concat(self.new_name("concat"), ops[0][0].dtype, odt, ops[0][3], hw_out,
                       [node.name], idts=tuple(x.dtype for x, *_ in ops), channels=chans,
                       inputs=[x.src for x, *_ in ops])
        self.add_layer(layer, ops[0][0].src)
        for x, *_ in ops[1:]:
            if x.src != INPUT:
                self.g.add_edge(x.src, layer.name)
        add = np.concatenate([a for *_, a, _ in ops], axis=1)
        chain = [ChainOp("affine", (self.full(scales.pop(), shape), add), node.name)]
        return Act(shape, canonical_pos(shape), layer.name, odt, chain)

    def _concat_consts(self, node, ins, attrs):
        """Concat of constants; quantized ones keep their integers, scales and zero-points
        (the union of their types), so weights quantized group by group stay integer."""
        out = self.fold_standard(node, ins)
        if not all(c.quant is not None for c in ins):
            return out
        axis = attrs.get("axis", 0)
        full = lambda c, a: np.broadcast_to(a, c.quant.q.shape)
        q = np.concatenate([c.quant.q for c in ins], axis=axis)
        scale = np.concatenate([full(c, c.quant.scale) for c in ins], axis=axis)
        zp = np.concatenate([full(c, c.quant.zeropt) for c in ins], axis=axis)
        dts = [c.quant.dtype for c in ins]
        dtype = DataType.bipolar() if all(d.is_bipolar for d in dts) else \
            DataType.for_range(min(-1 if d.is_bipolar else d.min for d in dts),
                               max(d.max for d in dts))
        out[0].quant = QConst(q, scale, zp, dtype)
        if len(set(dts)) > 1:     # weights quantized group by group, one width each
            self.per_channel_widths = True
        return out
