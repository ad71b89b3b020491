"""Golden model == onnxruntime exactly on 100 random QOperator networks (QLinearConv,
QLinearMatMul, com.microsoft QGemm with onnxruntime's float32 requantization), and
QLinearAdd refused with its reason."""
import numpy as np
import pytest

from bnncc.errors import UnsupportedError
from bnncc.frontend.lower import lower
from bnncc.testing.netgen.integer import random_int_network
from bnncc.testing.netgen.qoperator import _fuse, random_qop_network

N, GROUPS = 100, 4


@pytest.mark.parametrize("group", range(GROUPS))
def test_golden_equals_onnxruntime_exactly(group):
    per = N // GROUPS
    for seed in range(group * per, (group + 1) * per):
        case = random_qop_network(seed)
        y = np.asarray(lower(case.model, case.name).run(case.inputs)).reshape(case.outputs.shape)
        assert np.array_equal(y.astype(case.outputs.dtype), case.outputs), case.name


def test_kernels_are_covered():
    ops = set()
    for seed in range(12):
        ops |= set(random_qop_network(seed).meta["ops"])
    assert {"QLinearConv", "QLinearMatMul", "QGemm", "QuantizeLinear"} <= ops
    assert not ops & {"Conv", "MatMul", "Gemm"}


def test_qlinear_add_is_refused_naming_why():
    for seed in range(40):
        m = _fuse(random_int_network(seed, "qdq-fc").model)
        if any(n.op_type == "QLinearAdd" for n in m.graph.node):
            break
    else:
        pytest.fail("no QLinearAdd in 40 fused networks")
    with pytest.raises(UnsupportedError, match="QLinearAdd.*bit for bit"):
        lower(m, "m.onnx")


def test_quantize_static_qoperator_cnn_equals_onnxruntime(cli):
    """scripts/make_qoperator_models.py: quantize_static(quant_format=QOperator)."""
    from bnncc import api
    from conftest import fixture_path
    refs = np.load(fixture_path("qop/qop_cnn_pc_u8.refs.npz"))
    d = api.load(fixture_path("qop/qop_cnn_pc_u8.onnx"))
    y = np.asarray(d.run(refs["inputs"])).reshape(refs["outputs"].shape)
    assert np.array_equal(y, refs["outputs"])
    rc, _, err = cli("inspect", fixture_path("qop/qop_rescnn_pc_u8.onnx"))
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "(QLinearAdd)" in err and "bit for bit" in err
