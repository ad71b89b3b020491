"""Sanity tests of the integer-network families of the random network generator
(bnncc.testing.netgen.random_int_network): QONNX integer nets (unsigned ReLU
quantizers, biases, per-channel scales, every rounding mode), residual / concat
blocks, and int8 QDQ nets in onnxruntime quantize_static's form."""

from __future__ import annotations

import collections

import numpy as np
import onnx

from netgen_checks import assert_declared_shapes, assert_deterministic, dims
import pytest
from onnx import helper, numpy_helper

from bnncc.testing import netgen
from bnncc.testing.netgen import (
    FAMILIES, INT_FAMILIES, QONNX_DOMAIN, ROUNDING_MODES, NetCase, random_int_network, random_network,
    reference_outputs,
)

N_CASES = 60  # seeds 0..59 -> 12 networks per family
N_INPUTS = 8


@pytest.fixture(scope="module")
def cases() -> list[NetCase]:
    return [random_int_network(seed) for seed in range(N_CASES)]


def _inits(m: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}


def test_families_and_names(cases):
    assert set(INT_FAMILIES).isdisjoint(FAMILIES)
    counts = collections.Counter(c.family for c in cases)
    assert counts == {f: N_CASES // len(INT_FAMILIES) for f in INT_FAMILIES}
    for seed, c in enumerate(cases):
        assert c.family == INT_FAMILIES[seed % len(INT_FAMILIES)]
        assert c.name == f"{c.family}-s{seed}"


def test_checker_shapes_and_names(cases):
    for c in cases:
        m = c.model
        onnx.checker.check_model(m)
        opsets = {o.domain: o.version for o in m.opset_import}
        assert opsets[""] == 13
        qonnx = c.family.startswith("qonnx")
        assert (QONNX_DOMAIN in opsets) == qonnx, c.name
        domains = {n.domain for n in m.graph.node}
        assert domains == ({"", QONNX_DOMAIN} if qonnx else {""}), c.name
        (gin,) = m.graph.input
        (gout,) = m.graph.output
        assert gin.name == "global_in" and gout.name == "global_out"
        in_dims, out_dims = dims(gin), dims(gout)
        assert in_dims[0] == 1 and out_dims[0] == 1 and all(d > 0 for d in in_dims + out_dims)
        assert c.inputs.dtype == np.float32 and c.inputs.shape == (N_INPUTS, *in_dims[1:])
        assert np.all(c.inputs >= -1) and np.all(c.inputs < 1)
        assert c.outputs.shape == (N_INPUTS, *out_dims[1:]), c.name
        assert c.outputs.dtype == helper.tensor_dtype_to_np_dtype(gout.type.tensor_type.elem_type)
        node_names = [n.name for n in m.graph.node]
        assert all(node_names) and len(set(node_names)) == len(node_names), c.name
        produced = [o for n in m.graph.node for o in n.output]
        assert len(set(produced)) == len(produced)
        assert set(produced) == {vi.name for vi in m.graph.value_info} | {"global_out"}, c.name
        init_names = [t.name for t in m.graph.initializer]
        assert len(set(init_names)) == len(init_names)
        assert not set(init_names) & set(produced)
        used = {i for n in m.graph.node for i in n.input}
        assert set(init_names) <= used, c.name


def test_declared_shapes_match_shape_inference(cases):
    assert_declared_shapes(cases[:15])


def test_numpy_model_agrees_with_reference(cases):
    n_near = 0
    for c in cases:
        sim = c.meta["sim_outputs"]
        if c.family.startswith("qonnx"):
            # power-of-two (or 3 * 2^k) scales, dyadic weights / biases, BatchNorm
            # with a float32 margin or exact: bit-exact
            np.testing.assert_array_equal(sim, c.outputs, err_msg=c.name)
        else:
            # QDQ: only where a requantization input sits within 1e-6 (relative to
            # the accumulation's magnitude) of a rounding boundary may the float
            # summation order of onnxruntime's kernels decide
            n_near += c.meta["near_boundary"]
            if not c.meta["near_boundary"]:
                np.testing.assert_array_equal(sim, c.outputs, err_msg=c.name)
            assert c.meta["min_rel_boundary_distance"] > 0
    assert n_near <= len(cases) // 5  # rare, and reported


def test_batched_reference_equals_one_at_a_time(cases):
    # the generator runs the reference on all inputs in one batch; the plain
    # path (batch 1, one input at a time) gives the same outputs
    picked = {}
    for c in cases:
        key = (c.family, "Reshape" in {n.op_type for n in c.model.graph.node})
        picked.setdefault(key, c)
    for c in list(picked.values())[:8]:
        np.testing.assert_array_equal(reference_outputs(c.model, c.inputs[:3]), c.outputs[:3], err_msg=c.name)


def test_determinism_and_input_prefix():
    for seed in (0, 2, 3, 9):
        a = assert_deterministic(random_int_network, seed)
        # random_network passes integer families on
        d = random_network(seed, family=a.family, n_inputs=2)
        assert d.model.SerializeToString() == a.model.SerializeToString()
    blobs = {random_int_network(s, family="qdq-fc", n_inputs=1).model.SerializeToString() for s in range(4)}
    assert len(blobs) == 4


def test_unknown_family():
    with pytest.raises(ValueError):
        random_int_network(0, family="qonnx-fc")  # a binarized family
    with pytest.raises(ValueError):
        random_int_network(0, family="qdq-lstm")


def test_activations_are_non_trivial(cases):
    few = 0
    total = 0
    for c in cases:
        names = c.meta["act_tensors"]
        out, acts = netgen.reference._reference_batched(c.model, c.inputs, names)
        np.testing.assert_array_equal(out, c.outputs)
        for name, v in acts.items():
            total += 1
            assert len(np.unique(v)) >= 2, (c.name, name)
            varying = (v != v[:1]).any(axis=0).mean()  # elements that change with the input
            few += varying < 0.2
        if c.outputs.dtype != np.int64:
            assert not (c.outputs == c.outputs[:1]).all(), c.name
    assert few <= max(1, total // 50), (few, total)


def test_qonnx_coverage(cases):
    qc = [c for c in cases if c.family.startswith("qonnx")]
    ops = collections.Counter(n.op_type for c in qc for n in c.model.graph.node)
    for op in ("Quant", "Relu", "MatMul", "Gemm", "Conv", "Transpose", "Add", "BatchNormalization", "MaxPool",
               "Flatten", "Reshape", "Concat"):
        assert ops[op] > 0, op
    quants = [q for c in qc for q in c.meta["quantizers"]]
    modes = {q["mode"] for q in quants}
    assert modes == set(ROUNDING_MODES)
    # unsigned quantizers after Relu, signed ones, narrow and not, per channel
    kinds = {(q["signed"], q["relu"]) for q in quants}
    assert {(True, False), (False, True)} <= kinds
    assert {q["narrow"] for q in quants} == {True, False}
    assert any(q["per_channel"] and q["signed"] for q in quants)
    assert {q["bits"] for q in quants} == set(range(2, 9))
    # inputs landing exactly on a decision boundary, e.g. x / scale = k + 0.5
    ties = collections.Counter()
    for q in quants:
        ties[q["mode"]] += q["on_boundary"]
    assert all(ties[m] > 0 for m in ROUNDING_MODES), ties
    assert sum(q["half_ties"] for q in quants if q["mode"] in ("ROUND", "HALF_UP", "HALF_DOWN")) > 0
    # per-channel activation scales as (1, C) and (1, C, 1, 1)
    shapes = set()
    for c in qc:
        inits = _inits(c.model)
        for n in c.model.graph.node:
            if n.op_type == "Quant" and n.output[0].endswith("_act_q"):
                shapes.add(inits[n.input[1]].ndim)
    assert {0, 2, 4} <= shapes, shapes
    layers = [l for c in qc for l in c.meta["layers"]]
    assert {l["bias"] for l in layers} == {"none", "acc", "dyadic", "quant"}
    assert {l["form"] for l in layers} == {"Transpose+MatMul", "MatMul", "Gemm", "Conv", "Conv+B"}
    assert {l.get("bn") for l in layers if l["act"]} == {None, "random", "dyadic"}
    assert {l["wbits"] for l in layers} >= {2, 4, 8}
    assert {l["w_per_channel"] for l in layers} == {True, False}
    assert {l["wnarrow"] for l in layers} == {True, False}
    assert any(l["in_scale_per_channel"] for l in layers)
    assert len({l["wmode"] for l in layers}) >= 4


def test_residual_coverage():
    # graph construction only (what random_int_network builds for these seeds)
    fam = "qonnx-residual"
    blocks = []
    for s in range(2, 120, 5):
        rng = np.random.default_rng([s, 100 + INT_FAMILIES.index(fam), 0])
        _, _, meta = netgen.integer._build_qonnx_int(rng, fam, "")
        blocks += meta["blocks"]
    adds = [b for b in blocks if b["kind"] == "add"]
    cats = [b for b in blocks if b["kind"] == "concat"]
    assert adds and cats
    ratios = {b["ratio"] for b in adds}
    assert 1.0 in ratios  # equal scales
    assert ratios & {2.0, 0.5, 4.0, 0.25}  # power-of-two ratio
    assert ratios & {3.0, 1.5, 0.75}  # small integer ratio
    assert {b["identity"] for b in adds} == {True, False}
    assert {b["identity"] for b in cats} == {True, False}


def _scalar(a):
    return float(np.asarray(a).reshape(-1)[0])


def test_qdq_form(cases):
    """The graphs look like onnxruntime quantize_static(QuantFormat.QDQ) output."""
    qc = [c for c in cases if c.family.startswith("qdq")]
    seen = collections.Counter()
    for c in qc:
        m = c.model
        inits = _inits(m)
        act_dtype = np.uint8 if c.meta["activation_type"] == "uint8" else np.int8
        producer = {o: n for n in m.graph.node for o in n.output}
        consumers = collections.defaultdict(list)
        for n in m.graph.node:
            for i in n.input:
                consumers[i].append(n)
        assert producer["global_out"].op_type == "DequantizeLinear"
        assert m.graph.node[0].op_type == "DequantizeLinear"  # constant DQs first
        for n in m.graph.node:
            if n.op_type == "QuantizeLinear":
                (dq,) = consumers[n.output[0]]
                assert dq.op_type == "DequantizeLinear" and list(dq.input[1:]) == list(n.input[1:])
                assert inits[n.input[2]].dtype == act_dtype and inits[n.input[1]].dtype == np.float32
                assert inits[n.input[1]].shape == ()
            if n.op_type in ("Conv", "Gemm", "MatMul"):
                w = producer[n.input[1]]
                assert w.op_type == "DequantizeLinear"
                wq, ws, wz = (inits[i] for i in w.input)
                assert wq.dtype == np.int8 and wz.dtype == np.int8 and not wz.any()
                assert np.abs(wq).max() == 127 and wq.min() >= -127
                axis = {a.name: a.i for a in w.attribute}.get("axis")
                trans_b = {a.name: a.i for a in n.attribute}.get("transB", 0)
                if c.meta["per_channel"]:
                    want = 0 if (n.op_type == "Conv" or trans_b) else 1
                    assert axis == want and ws.shape == (wq.shape[want],)
                    seen[f"axis{want}"] += 1
                else:
                    assert axis is None and ws.shape == ()
                x_dq = producer[n.input[0]]
                x_scale = inits[x_dq.input[1]]
                if len(n.input) > 2:  # int32 bias, scale = input scale * weight scale
                    b = producer[n.input[2]]
                    bq, bs, bz = (inits[i] for i in b.input)
                    assert bq.dtype == np.int32 and bz.dtype == np.int32 and not bz.any()
                    want_s = (np.float32(x_scale) * ws).astype(np.float32).reshape(-1)
                    np.testing.assert_array_equal(bs.reshape(-1), want_s)
                    assert bs.shape == ((len(bq),) if c.meta["per_channel"] else (1,))
                    seen["bias32"] += 1
                seen[n.op_type] += 1
            if n.op_type == "Relu":
                seen["Relu"] += 1
            if n.op_type == "Add":
                seen["Add"] += 1
            if n.op_type in ("MaxPool", "Flatten", "Reshape"):
                # direct ops keep their input's scale and zero point
                src = producer[n.input[0]]
                (q,) = consumers[n.output[0]]
                assert list(q.input[1:]) == list(src.input[1:])
                seen[n.op_type] += 1
    for k in ("Conv", "Gemm", "MatMul", "Relu", "Add", "MaxPool", "bias32", "axis0", "axis1"):
        assert seen[k] > 0, (k, seen)
    assert {c.meta["activation_type"] for c in qc} == {"uint8", "int8"}
    assert {c.meta["keep_relu"] for c in qc} == {True, False}
    assert {c.meta["per_channel"] for c in qc} == {True, False}


def test_qdq_reference_is_the_unoptimized_graph(cases):
    # reference_outputs disables onnxruntime's graph optimizations for QDQ
    # graphs; the fused (QLinear*) outputs are kept in meta for comparison
    import onnxruntime as ort

    c = next(c for c in cases if c.family == "qdq-conv")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(c.model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    ref = np.stack([sess.run(None, {"global_in": x[None]})[0][0] for x in c.inputs])
    np.testing.assert_array_equal(ref, c.outputs)
    np.testing.assert_array_equal(reference_outputs(c.model, c.inputs), c.outputs)
    assert c.meta["fused_outputs"].shape == c.outputs.shape
