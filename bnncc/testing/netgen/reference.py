"""Reference outputs: the qonnx executor for QONNX graphs, onnxruntime for plain and
QDQ graphs; one batch for the integer families (qonnx runs one session per node)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

_QONNX_OPS = {"Quant", "BipolarQuant", "Trunc", "MultiThreshold", "FloatQuant"}


# ---------------------------------------------------------------------------
# reference execution


def _is_qonnx(model: onnx.ModelProto) -> bool:
    return any(
        n.domain.startswith(("qonnx", "finn")) or (n.op_type in _QONNX_OPS and n.domain != "")
        for n in model.graph.node
    )


def _is_qdq(model: onnx.ModelProto) -> bool:
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.domain in ("", "ai.onnx")
               for n in model.graph.node)


def _graph_input_name(model: onnx.ModelProto) -> str:
    inits = {t.name for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    if len(names) != 1:
        raise ValueError(f"expected exactly one graph input, found {names}")
    return names[0]


def reference_outputs(model: onnx.ModelProto, inputs: np.ndarray, *, ort_optimize: bool | None = None) -> np.ndarray:
    """Run ``model`` on each of ``inputs`` (N, *shape without batch), batch 1.

    QONNX graphs (custom ops) go through qonnx's executor, plain ONNX through
    onnxruntime.  Returns (N, *output shape without batch) of the first graph
    output, in the dtype the executor produced (float32, or int64 indices).

    ``ort_optimize``: onnxruntime graph optimizations for plain ONNX.  The
    default (None) disables them for QDQ graphs (any QuantizeLinear /
    DequantizeLinear node) -- with them, onnxruntime fuses the QDQ pairs into
    QLinearConv / QLinearMatMul / ... whose integer requantization is not the
    float computation the QDQ graph specifies -- and keeps them otherwise.
    """
    inputs = np.asarray(inputs, dtype=np.float32)
    iname = _graph_input_name(model)
    oname = model.graph.output[0].name
    results = []
    if _is_qonnx(model):
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx

        proto = onnx.ModelProto()
        proto.CopyFrom(model)
        mw = ModelWrapper(proto)
        if not mw.check_all_tensor_shapes_specified():
            from qonnx.util.cleanup import cleanup_model

            mw = cleanup_model(mw)
            iname = mw.graph.input[0].name
            oname = mw.graph.output[0].name
        for x in inputs:
            out = execute_onnx(mw, {iname: x[None]})
            results.append(np.asarray(out[oname])[0])
    else:
        import onnxruntime as ort

        if ort_optimize is None:
            ort_optimize = not _is_qdq(model)
        so = ort.SessionOptions()
        if not ort_optimize:
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        for x in inputs:
            out = sess.run([oname], {iname: x[None]})[0]
            results.append(np.asarray(out)[0])
    return np.stack(results)


# ---------------------------------------------------------------------------
# reference execution in one batch (qonnx executor: one onnxruntime session per
# node, so batching the inputs saves most of the time)


def _reference_batched(model: onnx.ModelProto, inputs: np.ndarray, tensors=None):
    """``reference_outputs`` with all inputs in one batch (every op here acts
    on each batch row independently).  Falls back to one input at a time.

    With ``tensors`` (names of intermediate tensors) returns (outputs,
    {name: (N, ...) values}) and does not fall back."""
    inputs = np.asarray(inputs, dtype=np.float32)
    N = len(inputs)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    iname = _graph_input_name(m)
    data = {iname}
    for n in g.node:  # nodes are in topological order
        if any(i in data for i in n.input):
            data.update(n.output)
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if vi.name in data:
            d = vi.type.tensor_type.shape.dim
            if len(d) and d[0].dim_value == 1:
                d[0].dim_value = N
    inits = {t.name: t for t in g.initializer}
    for n in g.node:
        if n.op_type == "Reshape" and n.input[0] in data and n.input[1] in inits:
            shp = numpy_helper.to_array(inits[n.input[1]]).copy()
            if shp[0] == 1:
                shp[0] = N
                new = f"{n.input[1]}__batch{N}"
                if new not in inits:
                    t = numpy_helper.from_array(shp, new)
                    g.initializer.append(t)
                    inits[new] = t
                n.input[1] = new
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    names = list(tensors or [])
    oname = g.output[0].name
    try:
        if _is_qonnx(m):
            from qonnx.core.modelwrapper import ModelWrapper
            from qonnx.core.onnx_exec import execute_onnx

            ctx = execute_onnx(ModelWrapper(m), {iname: inputs}, return_full_exec_context=bool(names))
            res = [ctx[oname]] + [ctx[n] for n in names]
        else:
            import onnxruntime as ort

            so = ort.SessionOptions()
            if _is_qdq(m):
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            vis = {vi.name: vi for vi in g.value_info}
            g.output.extend([vis[n] for n in names if n != oname])
            sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
            res = sess.run([oname] + names, {iname: inputs})
        res = [np.asarray(r) for r in res]
        if any(r.shape[0] != N for r in res):
            raise ValueError("batch dimension lost")
    except Exception:  # pragma: no cover - fall back to the plain path
        if names:
            raise
        return reference_outputs(model, inputs)
    if names:
        return res[0], dict(zip(names, res[1:]))
    return res[0]
