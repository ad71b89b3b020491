"""Independent check of threshold folding: run the original ONNX nodes between a matmul
and its quantizer (extracted from the model, executed by qonnx's executor) on every
reachable accumulator value of every channel, and compare with the integer thresholds."""
from __future__ import annotations

import numpy as np
import onnx

from bnncc.layers import MVAU
from bnncc.layers.thresholding import apply_thresholds
from bnncc.passes.widths import mvau_acc_range


def original_levels(model: onnx.ModelProto, layer: MVAU, real: np.ndarray,
                    spatial: int) -> np.ndarray:
    """real (R, C) float32 matmul outputs -> the original quantizer's outputs (R, C)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    nodes = {n.name: n for n in model.graph.node}
    start, end = nodes[layer.src[0]].output[0], nodes[layer.src[-1]].output[0]
    x = real.reshape(real.shape + (1,) * spatial)
    sub = _subgraph(model, start, end, list(x.shape))
    w = ModelWrapper(sub)
    from qonnx.transformation.infer_shapes import InferShapes
    w = w.transform(InferShapes())
    return execute_onnx(w, {start: x})[end].reshape(real.shape)


def _subgraph(model: onnx.ModelProto, start: str, end: str, shape) -> onnx.ModelProto:
    """The nodes that lead from tensor `start` to tensor `end`, with their constants."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    keep, stack = [], [end]
    seen = set()
    while stack:
        t = stack.pop()
        if t == start or t in inits or t in seen or t not in producer:
            continue
        seen.add(t)
        n = producer[t]
        keep.append(n)
        stack.extend(i for i in n.input if i)
    order = {id(n): i for i, n in enumerate(g.node)}
    nodes = sorted({id(n): n for n in keep}.values(), key=lambda n: order[id(n)])
    used = {i for n in nodes for i in n.input}
    vi = lambda name: onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)
    graph = onnx.helper.make_graph(nodes, "chain", [vi(start)], [vi(end)],
                                   [inits[u] for u in sorted(used) if u in inits])
    return onnx.helper.make_model(graph, opset_imports=model.opset_import)


def check_layer(model: onnx.ModelProto, layer: MVAU) -> int:
    """Returns the number of (channel, accumulator) points compared; raises on a mismatch."""
    lo, hi = mvau_acc_range(layer.weights, layer.idt, layer.binary)
    mul, add = layer.real_of_acc
    reflect = layer.mw if layer.binary else 0
    span = int((hi - lo).max()) + 1
    h = lo[None, :] + np.arange(span)[:, None]                  # hardware accumulators
    valid = h <= hi[None, :]
    h = np.minimum(h, hi[None, :])
    h_orig = np.where(layer.negated, reflect - h, h) if layer.negated is not None else h
    real = (h_orig.astype(np.float64) * mul + add).astype(np.float32)
    spatial = 2 if len(layer.out_shape) == 3 else 0       # conv: (R, C, 1, 1)
    want = original_levels(model, layer, real, spatial)
    got = apply_thresholds(h, layer.thresholds, layer.odt).astype(np.int64)
    # the original quantizer outputs real values scale * q; compare the integers q
    if layer.odt.is_bipolar:
        bad = valid & (np.sign(want) != got)
    else:
        bad = valid & (np.round(want / _quant_scale(model, layer)).astype(np.int64) != got)
    if np.any(bad):
        r, c = np.argwhere(bad)[0]
        raise AssertionError(f"{layer.name} channel {c} accumulator {h[r, c]}: "
                             f"original {want[r, c]} vs thresholds {got[r, c]}")
    return int(valid.sum())


def _quant_scale(model, layer) -> float:
    from onnx import numpy_helper
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t)
              for n in model.graph.node if n.op_type == "Constant"}
    q = {n.name: n for n in model.graph.node}[layer.src[-1]]
    v = inits.get(q.input[1], consts.get(q.input[1]))
    v = np.asarray(v).ravel()
    assert np.all(v == v[0]), "per-channel output scale: compare per channel"
    return float(v[0])
