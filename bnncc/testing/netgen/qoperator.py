"""QOperator networks: the qdq-fc / qdq-conv families in the form onnxruntime writes
when it fuses QDQ pairs into QLinearConv / QLinearMatMul / com.microsoft QGemm (the
kernels quantize_static(quant_format=QOperator) also writes).

``random_qop_network(seed)`` takes ``random_int_network`` number ``seed`` of a QDQ
family, lets onnxruntime fuse it (ORT_ENABLE_EXTENDED, saved with
optimized_model_filepath) and keeps the fused graph; ``outputs`` are onnxruntime's on
that graph with optimizations off (its QOperator kernels exactly). Graphs with a kernel
bnncc refuses (QLinearAdd: float or fixed point depending on the CPU path) are replaced
by the next network of the family (seed + 100000 k).
"""
from __future__ import annotations

import os
import tempfile

import numpy as np
import onnx

from .common import NetCase
from .integer import random_int_network

QOP_FAMILIES = ("qop-fc", "qop-conv")
REFUSED = {"QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool", "QLinearConcat"}


def _fuse(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxruntime as ort
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "fused.onnx")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = path
        so.log_severity_level = 3
        ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return onnx.load(path)


def _run(model: onnx.ModelProto, inputs: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: inputs[i:i + 1]})[0] for i in range(len(inputs))])


def random_qop_network(seed: int, family: str | None = None, n_inputs: int = 8) -> NetCase:
    if family is None:
        family = QOP_FAMILIES[seed % len(QOP_FAMILIES)]
    if family not in QOP_FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {QOP_FAMILIES}")
    base_family = family.replace("qop-", "qdq-")
    for k in range(64):
        base = random_int_network(seed + 100_000 * k, base_family, n_inputs)
        model = _fuse(base.model)
        ops = {n.op_type for n in model.graph.node}
        if not ops & REFUSED and ops & {"QLinearConv", "QLinearMatMul", "QGemm"}:
            break
    model.producer_version = ""
    meta = {"base": base.name, "ops": sorted(ops)}
    return NetCase(name=f"{family}-s{seed}", model=model, inputs=base.inputs,
                   outputs=_run(model, base.inputs), family=family, meta=meta)
