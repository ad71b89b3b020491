"""Golden model == onnxruntime exactly on 100 random QOperator networks: QLinearConv,
QLinearMatMul, com.microsoft QGemm with onnxruntime's float32 requantization (qop-fc /
qop-conv, fused from QDQ graphs by onnxruntime, including its QLinearAdd of a constant
bias), and quantize_static-style residual CNNs (qop-res: QLinearAdd of two streams, some
QLinearConcat blocks, QLinearGlobalAveragePool head).

A QLinearAdd of two streams takes onnxruntime's kernel outputs as thresholds when they
are monotone in the exact sum, else rounds the exact value of MLAS's formula, which
onnxruntime evaluates in float32: only then, where that value lies within float32 noise
of a rounding tie on the test inputs (the generator flags it), may the two differ. Those
networks are counted, at most 2, as for the QDQ family; every other network must match
exactly."""
import numpy as np
import pytest

from bnncc.frontend.lower import lower
from bnncc.testing.netgen.integer import random_int_network
from bnncc.testing.netgen.qoperator import _fuse, random_qop_network

N, GROUPS = 100, 4


@pytest.mark.parametrize("group", range(GROUPS))
def test_golden_equals_onnxruntime_exactly(group):
    per = N // GROUPS
    ambiguous = 0
    for seed in range(group * per, (group + 1) * per):
        case = random_qop_network(seed)
        y = np.asarray(lower(case.model, case.name).run(case.inputs)).reshape(case.outputs.shape)
        exact = np.array_equal(y.astype(case.outputs.dtype), case.outputs)
        if case.meta.get("near_boundary") and not exact:
            ambiguous += 1
            continue
        assert exact, case.name
    assert ambiguous <= 2, f"{ambiguous} near-boundary QOperator networks differ"


def test_kernels_are_covered():
    ops, gap, two_blocks = set(), 0, 0
    for seed in range(15):
        case = random_qop_network(seed)
        ops |= set(case.meta["ops"])
        gap += bool(case.meta.get("gap"))
        two_blocks += len(case.meta.get("blocks", [])) == 2
    assert {"QLinearConv", "QLinearMatMul", "QGemm", "QuantizeLinear", "QLinearAdd",
            "QLinearGlobalAveragePool"} <= ops
    assert not ops & {"Conv", "MatMul", "Gemm"}
    assert 0 < gap < 5 and two_blocks > 0


def test_residual_networks_join_two_streams():
    joins = []
    for seed in range(2, 45, 3):
        case = random_qop_network(seed)
        assert case.family == "qop-res"
        kinds = [l.kind for l in lower(case.model, case.name).layers()]
        assert kinds.count("AddStreams") == case.meta["joins"].count("add")
        assert kinds.count("Concat") == case.meta["joins"].count("concat")
        joins += case.meta["joins"]
    assert "concat" in joins and joins.count("add") > joins.count("concat")


def test_fused_qlinear_add_of_a_constant_equals_onnxruntime():
    """onnxruntime's own fusion turns a quantized bias Add into QLinearAdd(x, constant)."""
    from bnncc.testing.netgen.qoperator import _run
    found = 0
    for seed in range(40):
        base = random_int_network(seed, "qdq-fc")
        m = _fuse(base.model)
        if not any(n.op_type == "QLinearAdd" for n in m.graph.node):
            continue
        found += 1
        y = np.asarray(lower(m, "m.onnx").run(base.inputs))
        ref = _run(m, base.inputs)
        assert np.array_equal(y.reshape(ref.shape).astype(ref.dtype), ref), seed
    assert found >= 2


def test_quantize_static_qoperator_cnn_equals_onnxruntime():
    """scripts/make_qoperator_models.py: quantize_static(quant_format=QOperator)."""
    from conftest import fixture_path

    from bnncc import api
    refs = np.load(fixture_path("qop/qop_cnn_pc_u8.refs.npz"))
    d = api.load(fixture_path("qop/qop_cnn_pc_u8.onnx"))
    y = np.asarray(d.run(refs["inputs"])).reshape(refs["outputs"].shape)
    assert np.array_equal(y, refs["outputs"])
