"""Sanity tests of the seeded random network generator (bnncc.testing.netgen)."""

from __future__ import annotations

import collections

import numpy as np
import onnx

from netgen_checks import assert_declared_shapes, assert_deterministic, dims
import pytest
from onnx import TensorProto, helper

from bnncc.testing.netgen import FAMILIES, QONNX_DOMAIN, NetCase, random_network, reference_outputs

N_CASES = 40  # seeds 0..39 -> 10 networks per family
N_INPUTS = 8


@pytest.fixture(scope="module")
def cases() -> list[NetCase]:
    return [random_network(seed) for seed in range(N_CASES)]


def _hidden_activations(case: NetCase) -> dict[str, np.ndarray]:
    """The hidden activation tensors, (N, ...) each, from the reference executors."""
    names = case.meta["act_tensors"]
    if case.family.startswith("qonnx"):
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx

        mw = ModelWrapper(case.model)
        ctxs = [execute_onnx(mw, {"global_in": x[None]}, return_full_exec_context=True) for x in case.inputs]
        return {n: np.stack([c[n][0] for c in ctxs]) for n in names}
    import onnxruntime as ort

    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    vis = {vi.name: vi for vi in model.graph.value_info}
    model.graph.output.extend([vis[n] for n in names])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    runs = [sess.run(names, {"global_in": x[None]}) for x in case.inputs]
    return {n: np.stack([r[i][0] for r in runs]) for i, n in enumerate(names)}


def test_names_and_families(cases):
    counts = collections.Counter(c.family for c in cases)
    assert counts == {f: N_CASES // len(FAMILIES) for f in FAMILIES}
    for seed, c in enumerate(cases):
        assert c.family == FAMILIES[seed % len(FAMILIES)]
        assert c.name == f"{c.family}-s{seed}"
    assert len({c.name for c in cases}) == len(cases)


def test_checker_shapes_and_dtypes(cases):
    for c in cases:
        m = c.model
        onnx.checker.check_model(m)
        opsets = {o.domain: o.version for o in m.opset_import}
        assert opsets[""] >= 13
        qonnx = c.family.startswith("qonnx")
        assert (QONNX_DOMAIN in opsets) == qonnx
        domains = {n.domain for n in m.graph.node}
        assert domains == ({"", QONNX_DOMAIN} if qonnx else {""}), c.name

        (gin,) = m.graph.input
        (gout,) = m.graph.output
        in_dims, out_dims = dims(gin), dims(gout)
        assert in_dims[0] == 1 and out_dims[0] == 1 and all(d > 0 for d in in_dims + out_dims)
        assert gin.type.tensor_type.elem_type == TensorProto.FLOAT
        assert c.inputs.dtype == np.float32
        assert c.inputs.shape == (N_INPUTS, *in_dims[1:])
        assert np.all(c.inputs >= -1) and np.all(c.inputs < 1)
        assert c.outputs.shape == (N_INPUTS, *out_dims[1:]), c.name
        out_type = gout.type.tensor_type.elem_type
        assert c.outputs.dtype == helper.tensor_dtype_to_np_dtype(out_type)

        # readable, unique names; every intermediate tensor has a declared shape
        node_names = [n.name for n in m.graph.node]
        assert all(node_names) and len(set(node_names)) == len(node_names)
        produced = [o for n in m.graph.node for o in n.output]
        assert len(set(produced)) == len(produced)
        declared = {vi.name for vi in m.graph.value_info} | {"global_out"}
        assert set(produced) == declared
        init_names = [t.name for t in m.graph.initializer]
        assert len(set(init_names)) == len(init_names)
        assert not set(init_names) & set(produced)


def test_generator_numpy_model_agrees_with_reference(cases):
    # the generator's float64 numpy model and the reference executor must agree
    # bit for bit: all scales are powers of two and BatchNorm thresholds either
    # keep a float32 margin or are exact
    for c in cases:
        np.testing.assert_array_equal(c.meta["sim_outputs"], c.outputs, err_msg=c.name)


def test_declared_shapes_match_shape_inference(cases):
    assert_declared_shapes(cases[:12])


def test_determinism_and_input_prefix():
    for seed in (3, 4, 13, 22):
        assert_deterministic(random_network, seed)
    blobs = {random_network(s, family="qonnx-fc", n_inputs=1).model.SerializeToString() for s in range(4)}
    assert len(blobs) == 4


def test_unknown_family():
    with pytest.raises(ValueError):
        random_network(0, family="qonnx-lstm")


def test_reference_outputs_without_value_info(cases):
    # a model without declared intermediate shapes goes through qonnx cleanup
    for c in (cases[1], cases[4]):
        stripped = onnx.ModelProto()
        stripped.CopyFrom(c.model)
        del stripped.graph.value_info[:]
        np.testing.assert_array_equal(reference_outputs(stripped, c.inputs), c.outputs)


def test_activations_are_non_trivial(cases):
    index_const = 0
    n_index = 0
    for c in cases:
        acts = _hidden_activations(c)
        assert len(acts) == len(c.meta["layers"]) - 1
        for name, v in acts.items():
            assert len(np.unique(v)) >= 2, (c.name, name)
            varying = (v != v[:1]).any(axis=0).mean()  # elements that change with the input
            assert varying >= 0.2, (c.name, name, varying)
        const = bool((c.outputs == c.outputs[:1]).all())
        if c.outputs.dtype == np.int64:
            n_index += 1
            index_const += const
        else:
            assert not const, c.name
    assert index_const <= max(1, n_index // 4)


def test_coverage(cases):
    ops = collections.Counter(n.op_type for c in cases for n in c.model.graph.node)
    for op in ("Quant", "BipolarQuant", "Sign", "Conv", "MatMul", "Gemm", "Transpose", "BatchNormalization",
               "MaxPool", "Flatten", "Reshape", "Mul", "Add", "Sub", "Div", "ArgMax", "TopK"):
        assert ops[op] > 0, op
    layers = [l for c in cases for l in c.meta["layers"]]
    hidden = [l for l in layers if "bn" in l]
    assert {l["bn"] for l in hidden} == {"random", "dyadic"}
    assert any(l["gamma_neg"] for l in hidden) and any(l["gamma_zero"] for l in hidden)
    assert {l["wbits"] for l in layers} == {1, 2, 3, 4}
    assert {l["abits"] for l in hidden} == {1, 2, 3, 4}
    assert {l.get("wnarrow") for l in layers} >= {True, False}
    assert {l.get("w_per_channel") for l in layers} >= {True, False}
    convs = [l for l in layers if l["kind"] == "conv"]
    assert {l["kernel"] for l in convs} == {1, 2, 3}
    assert {l["stride"] for l in convs} == {1, 2}
    assert {l["pad"] for l in convs} == {0, 1}
    assert {len(c.meta["layers"]) - 1 for c in cases} == {1, 2, 3}
    assert {c.meta["input_quant"] for c in cases} >= {"Quant8", "BipolarQuant", "Sign"}
