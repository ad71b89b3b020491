"""Fuzz: mutate attributes, tensors, shapes, opsets and wiring of the shared fixtures and
check bnncc's promises on every result: exit 0, or exit 2 with exactly one stderr line
naming the file; never an internal error, a traceback or a crash. A model that loads is
also estimated and run on two frames under the same promises."""
from __future__ import annotations

import contextlib
import io
import math
import tempfile

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper, numpy_helper

from conftest import fixture_path

FIXTURES = ["brevitas/tfc_1w1a.onnx", "finn/tfc_w1a2_mt.onnx", "qdq/qdq_mlp_pt_s8.onnx",
            "dynamo/tfc_small_w1a1.onnx", "qdq/qdq_cnn_pt_u8.onnx"]
_MODELS = {f: onnx.load(fixture_path(f)) for f in FIXTURES}
NAMES = ["signed", "narrow", "rounding_mode", "kernel_shape", "strides", "pads", "group",
         "dilations", "axis", "perm", "epsilon", "out_scale", "out_bias", "out_dtype",
         "data_layout", "transB", "alpha", "ceil_mode", "keepdims", "saturate"]

ints = st.sampled_from([0, 1, 2, -1, 3, 7, 1 << 40, -(1 << 31)])
floats = st.sampled_from([0.0, 1.0, 0.5, -1.0, 1e30, -1e-30, math.nan, math.inf, -math.inf])
strings = st.sampled_from(["", "0", "1", "ROUND", "round", "FLOOR", "SIDEWAYS", "NHWC",
                           "BIPOLAR", "INT99", "\0", "x" * 300])
values = st.one_of(ints, floats, strings, st.lists(ints, min_size=0, max_size=5),
                   st.lists(floats, min_size=1, max_size=3))
specials = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e38, -1e38, 1e-45,
                            3.0, -7.0])

mutation = st.one_of(
    st.tuples(st.just("attr"), st.integers(0, 10 ** 6), st.sampled_from(NAMES), values),
    st.tuples(st.just("drop_attr"), st.integers(0, 10 ** 6), st.integers(0, 10 ** 6)),
    st.tuples(st.just("tensor_element"), st.integers(0, 10 ** 6), st.integers(0, 10 ** 9),
              specials),
    st.tuples(st.just("tensor_scalar"), st.integers(0, 10 ** 6), specials),
    st.tuples(st.just("tensor_shape"), st.integers(0, 10 ** 6),
              st.lists(st.integers(0, 9), min_size=0, max_size=4)),
    st.tuples(st.just("input_dim"), st.integers(0, 8), st.sampled_from([0, -1, 2, 3, 1 << 33])),
    st.tuples(st.just("opset"), st.integers(0, 4), st.sampled_from([0, 1, 6, 10, 13, 99])),
    st.tuples(st.just("rewire"), st.integers(0, 10 ** 6), st.integers(0, 10), st.integers(0, 10 ** 6)),
    st.tuples(st.just("drop_node"), st.integers(0, 10 ** 6)),
)


def mutate(m: onnx.ModelProto, muts) -> onnx.ModelProto:
    m = onnx.ModelProto.FromString(m.SerializeToString())
    g = m.graph
    for mu in muts:
        kind = mu[0]
        if kind in ("attr", "drop_attr", "rewire", "drop_node") and not g.node:
            continue
        if kind == "attr":
            n = g.node[mu[1] % len(g.node)]
            keep = [a for a in n.attribute if a.name != mu[2]]
            del n.attribute[:]
            n.attribute.extend(keep)
            try:
                n.attribute.append(helper.make_attribute(mu[2], mu[3]))
            except (ValueError, TypeError):
                pass
        elif kind == "drop_attr":
            n = g.node[mu[1] % len(g.node)]
            if n.attribute:
                del n.attribute[mu[2] % len(n.attribute)]
        elif kind.startswith("tensor") and g.initializer:
            t = g.initializer[mu[1] % len(g.initializer)]
            a = numpy_helper.to_array(t)
            if not np.issubdtype(a.dtype, np.floating):
                a = a.astype(np.float32) if kind != "tensor_shape" else a
            if kind == "tensor_element" and a.size:
                a = a.copy()
                a.flat[mu[2] % a.size] = mu[3]
            elif kind == "tensor_scalar":
                a = np.asarray(mu[2], a.dtype)
            elif kind == "tensor_shape":
                n = int(np.prod(mu[2])) if mu[2] else 1
                a = np.resize(a.ravel(), n).reshape(mu[2])
            t.CopyFrom(numpy_helper.from_array(np.asarray(a), t.name))
        elif kind == "input_dim" and g.input:
            dims = g.input[0].type.tensor_type.shape.dim
            if dims:
                dims[mu[1] % len(dims)].dim_value = mu[2]
        elif kind == "opset" and m.opset_import:
            m.opset_import[mu[1] % len(m.opset_import)].version = mu[2]
        elif kind == "rewire":
            n = g.node[mu[1] % len(g.node)]
            names = [o for k in g.node for o in k.output] + [i.name for i in g.initializer]
            if n.input and names:
                n.input[mu[2] % len(n.input)] = names[mu[3] % len(names)]
        elif kind == "drop_node":
            del g.node[mu[1] % len(g.node)]
    return m


def _cli(*argv):
    from bnncc.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def _promise(rc, err, path, what):
    assert rc in (0, 2), (what, rc, err)
    if rc == 0:
        assert err == "", (what, err)
    else:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("bnncc: error: "), (what, err)
        assert path in lines[0], (what, err)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(fixture=st.sampled_from(FIXTURES), muts=st.lists(mutation, min_size=1, max_size=3))
def test_mutated_fixtures_keep_the_promises(fixture, muts):
    m = mutate(_MODELS[fixture], muts)
    with tempfile.TemporaryDirectory() as d:
        path = f"{d}/mutated.onnx"
        with open(path, "wb") as f:
            f.write(m.SerializeToString())
        rc, _, err = _cli("inspect", path)
        _promise(rc, err, path, "inspect")
        if rc != 0:
            return
        rc, _, err = _cli("estimate", path, "--json")
        _promise(rc, err, path, "estimate")
        shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
        x = np.random.default_rng(0).uniform(-1, 1, [2] + shape[1:]).astype(np.float32)
        np.save(f"{d}/in.npy", x)
        rc, _, err = _cli("run", path, "-i", f"{d}/in.npy", "-o", f"{d}/out.npy")
        _promise(rc, err, path, "run")


def test_mutations_change_the_models():
    """The mutator really mutates (a fuzz test of unchanged models could not fail)."""
    base = _MODELS[FIXTURES[0]]
    for mu in [("attr", 0, "signed", "0"), ("tensor_scalar", 0, math.nan), ("opset", 0, 99),
               ("drop_node", 3), ("input_dim", 1, 0)]:
        assert mutate(base, [mu]).SerializeToString() != base.SerializeToString(), mu


@pytest.mark.parametrize("mu", [("attr", 0, "rounding_mode", 1), ("tensor_scalar", 1, math.inf),
                                ("opset", 0, 99), ("input_dim", 1, 1 << 33)])
def test_known_bad_mutations_are_refused(mu, tmp_path):
    m = mutate(_MODELS[FIXTURES[0]], [mu])
    path = tmp_path / "m.onnx"
    path.write_bytes(m.SerializeToString())
    rc, _, err = _cli("inspect", path)
    assert rc == 2 and str(path) in err and len(err.strip().splitlines()) == 1
