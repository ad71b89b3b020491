"""Layout and shape ops: they permute stream positions (Reshape, Flatten, Transpose,
Squeeze, Unsqueeze) or fold shape arithmetic on constants (Shape, Gather, Cast, ...)."""
from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from ...ir import INPUT
from ...layers import DepthToSpace
from ..values import Act, Const, QConst, _s, canonical_pos
from . import handles


def depth_to_space(a: np.ndarray, b: int, mode: str) -> np.ndarray:
    """ONNX DepthToSpace (mode DCR / CRD) or SpaceToDepth ("S2D") of an NCHW array."""
    n, c, h, w = a.shape
    if mode == "S2D":
        t = a.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
        return t.reshape(n, c * b * b, h // b, w // b)
    if mode == "CRD":
        t = a.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:
        t = a.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    return t.reshape(n, c // (b * b), h * b, w * b)


class LayoutOps:
    def layout(self, node, ins, attrs, fn):
        """Apply a layout-only op `fn(array)` to pos and every chain param of an Act."""
        x = ins[0]
        pos = fn(x.pos)
        chain = [op.map_params(lambda p: fn(np.broadcast_to(p, x.shape))) if op.params else op
                 for op in x.chain]
        y = Act(tuple(pos.shape), pos, x.src, x.dtype, chain, x.shared)
        for k in ("head", "out_dtype", "out_shape"):
            if hasattr(x, k):
                raise self.err("layout change after the output head is not supported", node)
        return y

    @handles("Constant")
    def op_Constant(self, node, ins, attrs):
        for k in ("value", "value_float", "value_int", "value_floats", "value_ints"):
            if k in attrs:
                v = attrs[k]
                return Const(numpy_helper.to_array(v) if hasattr(v, "dims") else np.array(v))
        raise self.err("unsupported Constant form", node)

    @handles("Identity", "Dropout")
    def op_Identity(self, node, ins, attrs):
        return ins[0]


    @handles("Shape")
    def op_Shape(self, node, ins, attrs):
        x = ins[0]
        shape = np.array(x.shape if isinstance(x, Act) else x.value.shape, np.int64)
        return Const(shape[attrs.get("start", 0):attrs.get("end", len(shape))])

    def _layout_or_fold(self, node, ins, attrs, fn):
        folded = self.generic(node, ins, attrs)
        if folded is not None:
            return self._fold_quant_const(node, ins, folded, fn)
        if not isinstance(ins[0], Act) or any(isinstance(v, Act) for v in ins[1:] if v):
            raise self.err("only the data input may be non-constant", node)
        return self.layout(node, ins, attrs, fn)

    def _fold_quant_const(self, node, ins, folded, fn):
        """Layout ops on a quantized constant keep its integer representation."""
        c = ins[0]
        if isinstance(c, Const) and c.quant is not None and len(folded) == 1:
            qc = c.quant
            q = fn(qc.q)
            full = lambda a: fn(np.broadcast_to(a, qc.q.shape))
            folded[0].quant = QConst(q, full(qc.scale), full(qc.zeropt), qc.dtype)
        return folded

    @handles("Reshape")
    def op_Reshape(self, node, ins, attrs):
        def fn(a, shape=None):
            target = [int(v) for v in self.const(node.input[1], node)]
            src = a.shape
            if not attrs.get("allowzero", 0):
                target = [src[i] if v == 0 else v for i, v in enumerate(target)]
            return a.reshape(target)
        return self._layout_or_fold(node, ins, attrs, fn)

    @handles("Flatten")
    def op_Flatten(self, node, ins, attrs):
        axis = attrs.get("axis", 1)
        x = ins[0]
        rank = len(x.shape if isinstance(x, Act) else np.shape(x.value))
        if not -rank <= axis <= rank:
            raise self.err(f"Flatten axis {axis} is out of range for a rank-{rank} tensor", node)

        def fn(a):
            ax = axis % a.ndim if a.ndim else 0
            return a.reshape(int(np.prod(a.shape[:ax])), -1)
        return self._layout_or_fold(node, ins, attrs, fn)

    @handles("Transpose")
    def op_Transpose(self, node, ins, attrs):
        perm = attrs.get("perm")
        return self._layout_or_fold(node, ins, attrs,
                                    lambda a: np.transpose(a, perm))

    @handles("DepthToSpace")
    def op_DepthToSpace(self, node, ins, attrs):
        """A reordering, lowered as layout: free at the model output (the host gathers)
        and before a fully connected layer (its weights are permuted); where a spatial
        layer reads it, `stream_layout` puts a DepthToSpace block in the stream."""
        b = int(attrs["blocksize"])
        crd = _s(attrs.get("mode", "DCR")) == "CRD"
        return self._layout_or_fold(node, ins, attrs,
                                    lambda a: depth_to_space(a, b, "CRD" if crd else "DCR"))

    @handles("SpaceToDepth")
    def op_SpaceToDepth(self, node, ins, attrs):
        b = int(attrs["blocksize"])
        return self._layout_or_fold(node, ins, attrs, lambda a: depth_to_space(a, b, "S2D"))

    def stream_layout(self, node, x: Act) -> Act:
        """A spatial layer (Conv, pool) needs its input as the channels-last stream of its
        producer. When x is its producer's stream seen through a DepthToSpace or
        SpaceToDepth, a hardware DepthToSpace block makes that stream (once per view);
        any other layout is left for `_spatial` to refuse."""
        if x.src in (None, INPUT) or len(x.shape) != 4:
            return x
        if len(self.src_shape(x)) != 3:
            return x
        sh, sw, sc = self.src_shape(x)
        _, c, h, w = x.shape
        if (sh, sw, sc) == (h, w, c) and np.array_equal(x.pos, canonical_pos(x.shape)):
            return x
        src = canonical_pos((1, sc, sh, sw))
        for mode in ("DCR", "CRD", "S2D"):
            b = h // sh if mode != "S2D" else sh // max(h, 1)
            if b < 2 or (mode != "S2D" and (h, w, c * b * b) != (sh * b, sw * b, sc)) or \
                    (mode == "S2D" and (h * b, w * b, c) != (sh, sw, sc * b * b)):
                continue
            if not np.array_equal(depth_to_space(src, b, mode), x.pos):
                continue
            cache = self.__dict__.setdefault("_reorders", {})
            key = (x.src, mode, b)
            if key not in cache:
                layer = DepthToSpace(self.new_name("d2s"), x.dtype, x.dtype, (sh, sw, sc),
                                     (h, w, c), [node.name], mode=mode, block=b)
                self.add_layer(layer, x.src)
                cache[key] = layer.name
            return Act(x.shape, canonical_pos(x.shape), cache[key], x.dtype, x.chain, x.shared,
                       x.pad)
        return x

    def _axes(self, node, attrs):
        if "axes" in attrs:
            return [int(a) for a in attrs["axes"]]
        if len(node.input) > 1 and node.input[1]:
            return [int(a) for a in self.const(node.input[1], node)]
        return None

    @handles("Squeeze")
    def op_Squeeze(self, node, ins, attrs):
        axes = self._axes(node, attrs)
        def fn(a):
            ax = tuple(x % a.ndim for x in axes) if axes is not None else \
                tuple(i for i, d in enumerate(a.shape) if d == 1)
            return np.squeeze(a, axis=ax)
        return self._layout_or_fold(node, ins, attrs, fn)

    @handles("Unsqueeze")
    def op_Unsqueeze(self, node, ins, attrs):
        axes = self._axes(node, attrs)
        def fn(a):
            out = a
            nd = a.ndim + len(axes)
            for ax in sorted(x % nd for x in axes):
                out = np.expand_dims(out, ax)
            return out
        return self._layout_or_fold(node, ins, attrs, fn)

    @handles("Gather")
    def op_Gather(self, node, ins, attrs):
        """Gather on constants; on quantized weights it keeps their integers (exporters of
        per-channel bit widths quantize each width's channels apart, then Concat and
        Gather them back into channel order)."""
        folded = self._const_only(node, ins, attrs)
        idx = np.asarray(ins[1].value) if isinstance(ins[1], Const) else None
        axis = attrs.get("axis", 0)
        return self._fold_quant_const(node, ins, folded,
                                      lambda a: np.take(a, idx, axis=axis))

    @handles("Pow", "Sqrt", "Range", "ConstantOfShape", "Expand", "Slice", "Floor", "Ceil",
             "Exp", "Log", "Reciprocal")
    def _const_only(self, node, ins, attrs):
        folded = self.generic(node, ins, attrs)
        if folded is None:
            raise self.err(f"{node.op_type} on a non-constant tensor is not supported", node)
        return folded
