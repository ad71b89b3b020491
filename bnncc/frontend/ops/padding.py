"""Spatial padding: `Pad` nodes (constant mode) and a Conv's `pads` / `auto_pad`.

Padding is never a layer of its own: it becomes the pad ring of the sliding window of the
Conv that reads it. A Pad node therefore only records its pads and real value on the
activation (`Act.pad`); the Conv merges them with its own pads. The window pads with
the input's integer code of the pad's real value; a bipolar input has no code for 0, so
zero padding there pads with -1 and the MVAU corrects each accumulator by its border
class (bnncc/layers/border.py).
"""
from __future__ import annotations

import numpy as np

from ..values import Act, _s
from . import handles


def same_pads(n: int, k: int, stride: int, upper: bool) -> tuple[int, int]:
    """(begin, end) pads of ONNX auto_pad SAME_UPPER / SAME_LOWER along one axis: the
    output has ceil(n / stride) elements; an odd total puts the extra pad at the end
    (UPPER, what TensorFlow / Keras 'same' and tf2onnx write) or the beginning (LOWER)."""
    out = -(-n // stride)
    total = max((out - 1) * stride + k - n, 0)
    small = total // 2
    return (small, total - small) if upper else (total - small, small)


class PadOps:
    @handles("Pad")
    def op_Pad(self, node, ins, attrs):
        folded = self.generic(node, ins, attrs)
        if folded is not None:
            return folded
        x = ins[0]
        mode = _s(attrs.get("mode", "constant"))
        if mode != "constant":
            raise self.err(f"Pad mode '{mode}' is not supported (only constant)", node)
        if any(isinstance(v, Act) for v in ins[1:] if v is not None):
            raise self.err("Pad pads and value must be constants", node)
        if "pads" in attrs:                                   # opset < 11: attributes
            pads, value = list(attrs["pads"]), float(attrs.get("value", 0.0))
        else:
            pads = [int(v) for v in self.const(node.input[1], node)]
            value = 0.0
            if len(node.input) > 2 and node.input[2]:
                v = np.asarray(self.const(node.input[2], node)).reshape(-1)
                value = float(v[0]) if v.size else 0.0
        rank = len(x.shape)
        if len(node.input) > 3 and node.input[3]:             # opset 18 axes
            axes = [int(a) % rank for a in self.const(node.input[3], node)]
            full = [0] * (2 * rank)
            for i, a in enumerate(axes):
                full[a], full[rank + a] = pads[i], pads[len(axes) + i]
            pads = full
        if len(pads) != 2 * rank or rank != 4:
            raise self.err("Pad is supported on NCHW feature maps only", node)
        if pads[0] or pads[1] or pads[4] or pads[5]:
            raise self.err("Pad on the batch or channel axis is not supported", node)
        if any(p < 0 for p in pads):
            raise self.err("Pad with negative pads (cropping) is not supported", node)
        if not np.isfinite(value):
            raise self.err(f"Pad value {value} before a Conv is not supported", node)
        t, l, b, r = pads[2], pads[3], pads[6], pads[7]
        if x.pad is not None:                                  # two Pads in a row
            if x.pad[4] != value:
                raise self.err("two Pad nodes with different values in a row", node)
            t, l, b, r = t + x.pad[0], l + x.pad[1], b + x.pad[2], r + x.pad[3]
        return Act(x.shape, x.pos, x.src, x.dtype, x.chain, x.shared, pad=(t, l, b, r, value))

    def conv_pads(self, node, shape, pending, attrs, kernel, stride) -> tuple[tuple, float]:
        """(top, left, bottom, right) of the window and the pads' real value: the Conv's
        own pads (explicit or auto_pad) on top of a pending Pad node's (`pending`)."""
        h, w = shape[2], shape[3]
        auto = _s(attrs.get("auto_pad", "NOTSET"))
        if auto != "NOTSET" and "pads" in attrs:
            raise self.err(f"Conv has both auto_pad {auto} and explicit pads", node)
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pre = pending or (0, 0, 0, 0)
            hh, ww = h + pre[0] + pre[2], w + pre[1] + pre[3]
            (pt, pb), (pl, pr) = (same_pads(hh, kernel[0], stride[0], auto == "SAME_UPPER"),
                                  same_pads(ww, kernel[1], stride[1], auto == "SAME_UPPER"))
        elif auto in ("NOTSET", "VALID"):
            pt, pl, pb, pr = attrs.get("pads", [0, 0, 0, 0]) if auto == "NOTSET" else (0, 0, 0, 0)
        else:
            raise self.err(f"auto_pad '{auto}' is not supported", node)
        if min(pt, pl, pb, pr) < 0:
            raise self.err("negative Conv pads are not supported", node)
        if pending is None:
            return (pt, pl, pb, pr), 0.0
        t, l, b, r, value = pending
        if value != 0.0 and (pt or pl or pb or pr):
            raise self.err(f"a Pad with value {value:g} before a Conv that zero-pads again "
                           "(two pad rings with different values) is not supported", node)
        return (t + pt, l + pl, b + pb, r + pr), value
