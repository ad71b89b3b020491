"""Output heads: ArgMax / TopK in hardware when exact on integers, else on the host;
a final Softmax or LogSoftmax on the host."""
from __future__ import annotations

import numpy as np

from ...datatypes import DataType
from ...layers import MVAU, LabelSelect
from ...passes.chain import eval_chain
from ...passes.widths import mvau_acc_range
from ..values import Act
from . import handles


class HeadOps:
    def _head(self, node, x: Act, k: int, axis: int, keepdims: bool, want_values: bool):
        if len(x.shape) != 2 or axis % 2 != 1:
            raise self.err("top-k / argmax is supported over the features of a (1, C) tensor", node)
        if k > x.shape[1]:
            raise self.err(f"k={k} is larger than the {x.shape[1]} features", node)
        src = self.src_layer(x)
        nch = x.shape[1]
        hw_ok = (not want_values and src is not None and not x.shared and
                 np.array_equal(x.pos.reshape(-1), np.arange(nch)) and
                 self._strictly_increasing_uniform(x, src))
        out_shape = (1, k) if keepdims or k > 1 else (1,)
        if hw_ok:
            layer = LabelSelect(self.new_name("topk"), x.dtype, DataType.for_range(0, nch - 1),
                                (nch,), (k,), [node.name], k=k)
            self.add_layer(layer, x.src)
            y = Act((1, k), np.arange(k).reshape(1, k), layer.name, layer.odt, [])
            y.out_dtype, y.out_shape = "int64", out_shape
            return y
        def head(t, k=k):
            return np.argsort(-t, axis=-1, kind="stable")[..., :k].astype(np.int64)
        head.label = f"top-{k}"
        y = Act(x.shape, x.pos, x.src, x.dtype, x.chain, x.shared)
        y.head, y.out_dtype, y.out_shape = head, "int64", out_shape
        self.notes.append(f"{node.name}: top-k computed on the host (the scores are not a "
                          "strictly increasing, channel-uniform map of the accumulators)")
        return y

    def _strictly_increasing_uniform(self, x: Act, src) -> bool:
        """Can hardware rank raw integers instead of the float scores? Checked on every
        reachable integer value, so ties and order are exactly those of the float model."""
        if isinstance(src, MVAU) and src.thresholds is None:
            lo, hi = mvau_acc_range(src.weights, src.idt, src.binary)
            lo, hi = int(lo.min()), int(hi.max())
        else:
            lo, hi = x.dtype.min, x.dtype.max
        if hi - lo > 1 << 22:
            return False
        vals = np.arange(lo, hi + 1, dtype=np.int64)[:, None]
        y = eval_chain(x.chain, np.broadcast_to(vals, (vals.shape[0], x.shape[1])))
        return bool(np.all(y == y[:, :1]) and np.all(np.diff(y[:, 0]) > 0))

    @handles("TopK")
    def op_TopK(self, node, ins, attrs):
        x = ins[0]
        k = int(np.asarray(self.const(node.input[1], node)).ravel()[0])
        if not attrs.get("largest", 1) or not attrs.get("sorted", 1):
            raise self.err("only largest=1, sorted=1 TopK is supported", node)
        want_values = self.consumers.get(node.output[0], 0) > 0
        if want_values:
            raise self.err("TopK values output is used; only the indices are supported", node)
        return [None, self._head(node, x, k, attrs.get("axis", -1), True, False)]

    def _host_head(self, node, ins, attrs, fn, label: str):
        """A final Softmax / LogSoftmax stays on the host; the hardware returns the logits."""
        x = ins[0]
        if not isinstance(x, Act) or hasattr(x, "head") or len(x.shape) != 2 or \
                attrs.get("axis", -1) % 2 != 1:
            raise self.err(f"only a final {node.op_type} over the features of a (1, C) tensor "
                           "is supported (it runs on the host)", node)
        if self.consumers.get(node.output[0], 0) != 1 or \
                node.output[0] != self.model.graph.output[0].name:
            raise self.err(f"{node.op_type} must be the model's last op (it runs on the host)",
                           node)
        fn.label = label
        y = Act(x.shape, x.pos, x.src, x.dtype, x.chain, x.shared)
        y.head, y.out_dtype, y.out_shape = fn, "float32", x.shape
        self.notes.append(f"{node.name}: {label} runs on the host; the hardware returns logits")
        return y

    @handles("Softmax")
    def op_Softmax(self, node, ins, attrs):
        def head(t):
            t = np.asarray(t, np.float32)
            e = np.exp(t - t.max(axis=-1, keepdims=True))
            return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
        return self._host_head(node, ins, attrs, head, "softmax")

    @handles("LogSoftmax")
    def op_LogSoftmax(self, node, ins, attrs):
        def head(t):   # onnxruntime's form: (x - max) - log(sum(exp(x - max)))
            t = np.asarray(t, np.float32)
            d = t - t.max(axis=-1, keepdims=True)
            return (d - np.log(np.exp(d).sum(axis=-1, keepdims=True))).astype(np.float32)
        return self._host_head(node, ins, attrs, head, "log-softmax")

    @handles("ArgMax")
    def op_ArgMax(self, node, ins, attrs):
        if attrs.get("select_last_index", 0):
            raise self.err("ArgMax with select_last_index=1 is not supported", node)
        return self._head(node, ins[0], 1, attrs.get("axis", 0), bool(attrs.get("keepdims", 1)),
                          False)
