"""The `onnx` level of the verification ladder: the user's original model, run by the
executor it was written for, not by anything bnncc derived from it.

Standard ONNX (plain exports, QDQ, QOperator with onnxruntime's com.microsoft ops) runs
in onnxruntime; QDQ graphs with graph optimizations off, because fused QLinear kernels
requantize differently from the QDQ graph's own arithmetic. Graphs with QONNX / FINN
custom ops (Quant, BipolarQuant, Trunc, MultiThreshold) run in qonnx's executor, the
reference those ops are defined by (the `dev` extra has it).
"""
from __future__ import annotations

import numpy as np
import onnx

from ..errors import BnnccError
from .. import progress

ORT_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}


def _input_name(model: onnx.ModelProto) -> str:
    inits = {t.name for t in model.graph.initializer}
    return next(i.name for i in model.graph.input if i.name not in inits)


def _batch_free(model: onnx.ModelProto) -> bool:
    """The graph input's batch axis is symbolic: the whole batch runs in one call."""
    name = _input_name(model)
    vi = next(i for i in model.graph.input if i.name == name)
    dims = vi.type.tensor_type.shape.dim
    return bool(dims) and not dims[0].HasField("dim_value")


def run_original(path: str, x: np.ndarray) -> np.ndarray:
    """Outputs of the original model at `path` on the batch x (N, *input shape)."""
    try:
        model = onnx.load(path)
    except Exception as e:
        raise BnnccError(f"cannot read the model for the onnx level ({type(e).__name__})",
                         file=path) from None
    custom = sorted({n.domain for n in model.graph.node if n.domain not in ORT_DOMAINS})
    x = np.asarray(x, dtype=np.float32)
    if custom:
        _check_qonnx_can_run(model, path)
    try:
        if custom:
            return _run_qonnx(model, x)
        return _run_ort(model, x)
    except BnnccError:
        raise
    except Exception as e:       # the executor's own failure, not a bnncc bug
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise BnnccError(f"the reference executor failed on the original model: {msg}",
                         file=path) from None


def _check_qonnx_can_run(model: onnx.ModelProto, path: str) -> None:
    """qonnx's executor (1.0) cannot run a Quant with a per-channel bit width tensor: its
    int_quant tests `bitwidth == 1` as a scalar. Say so by node instead of its NumPy error."""
    sizes = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Quant" and len(n.input) > 3 and sizes.get(n.input[3], 1) > 1:
            raise BnnccError("qonnx's executor cannot run a Quant with per-channel bit widths, "
                             "so the onnx level is not available for this form (use the grouped "
                             "form, one Quant per width, or leave out the onnx level)",
                             file=path, node=n.name, op=n.op_type)


def _run_ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    so = ort.SessionOptions()
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node):
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    iname, oname = _input_name(model), sess.get_outputs()[0].name
    if _batch_free(model):
        with progress.task("onnx (onnxruntime)", len(x)):
            return np.asarray(sess.run([oname], {iname: x})[0])
    outs = []
    with progress.task("onnx (onnxruntime)", len(x)) as tick:
        for i, f in enumerate(x):
            outs.append(np.asarray(sess.run([oname], {iname: f[None]})[0])[0])
            tick(i + 1)
    return np.stack(outs) if outs else np.zeros((0,))


def _run_qonnx(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    try:
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx
    except ImportError:
        raise BnnccError("the onnx level of a QONNX model needs qonnx: "
                         "pip install qonnx (in the bnncc[dev] extra)") from None
    mw = ModelWrapper(model)
    if not mw.check_all_tensor_shapes_specified():
        from qonnx.util.cleanup import cleanup_model
        mw = cleanup_model(mw)
    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    outs = []
    with progress.task("onnx (qonnx executor)", len(x)) as tick:
        for i, f in enumerate(x):
            outs.append(np.asarray(execute_onnx(mw, {iname: f[None]})[oname])[0])
            tick(i + 1)
    return np.stack(outs) if outs else np.zeros((0,))
