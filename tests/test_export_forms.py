"""Front-end pieces for real exports: exact per-channel factoring of float weights, the
symbolic batch axis, and refusals naming what cannot be exact."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bnncc.frontend.factor import factor_channels


def test_factor_bipolar_and_integer_channels():
    rng = np.random.default_rng(0)
    s = np.float32([0.37, 1.5e-3, 2.0])
    q = np.stack([rng.choice([-1, 1], 12), rng.choice([-1, 1], 12), rng.integers(-7, 8, 12)])
    q[2, 0] = 3                                  # smallest nonzero |q| is not 1 everywhere
    w = (s[:, None] * q).astype(np.float32)
    got_q, got_s = factor_channels(w.T, axis=1)  # (in, out) layout: output axis 1
    assert np.array_equal(got_s[:, None] * got_q.T, w.astype(np.float64))
    assert set(np.abs(got_q[:, :2]).ravel()) == {1}
    assert np.array_equal(np.abs(got_q[:, 2]), np.abs(q[2]) // np.gcd.reduce(np.abs(q[2])))


def test_factor_refuses_what_is_not_exact():
    w = np.float32([[0.5, 0.5, 0.5 + 2 ** -20], [1, -1, 1]])
    assert factor_channels(w, axis=0) is None
    assert factor_channels(np.float32([[1, np.nan]]), axis=0) is None
    zero = factor_channels(np.zeros((2, 3), np.float32), axis=0)
    assert np.array_equal(zero[0], np.zeros((2, 3))) and np.array_equal(zero[1], [1, 1])


def _sign_mlp(path, in_dims, where_sign=True):
    rng = np.random.default_rng(1)
    w = (rng.choice([-1, 1], (16, 8)) * rng.uniform(0.1, 2, 8)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.float32(0), "z"),
             numpy_helper.from_array(np.float32(1), "one"),
             numpy_helper.from_array(np.float32(-1), "mone")]
    nodes = [helper.make_node("GreaterOrEqual", ["x", "z"], ["ge"]),
             helper.make_node("Where", ["ge", "one", "mone"], ["xs"]),
             helper.make_node("MatMul", ["xs", "w"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_dims)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [in_dims[0], 8])],
                          initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(m, path)
    return w


def test_symbolic_batch_is_bound_and_output_exact(tmp_path):
    import onnxruntime as ort
    from bnncc import api
    path = str(tmp_path / "m.onnx")
    w = _sign_mlp(path, ["batch", 16])
    d = api.load(path)
    assert d.input_shape == (1, 16)
    x = np.random.default_rng(2).integers(-2, 3, (20, 16)).astype(np.float32)   # zeros too
    ref = ort.InferenceSession(path).run(None, {"x": x})[0]
    y = np.asarray(d.run(x)).reshape(ref.shape)
    xs = np.where(x >= 0, 1.0, -1.0)
    exact = xs @ w.astype(np.float64)          # sign(0) = +1, the sum rounded once
    assert np.array_equal(y, exact.astype(np.float32))
    assert np.max(np.abs(y - ref)) <= 16 * np.spacing(np.abs(ref).max())   # ORT rounds per add
    assert [l.kind for l in d.layers()] == ["MVAU"] and d.layers()[0].binary


@pytest.mark.parametrize("dims,axis", [([1, "K"], 1), (["N", "K"], 1)])
def test_other_symbolic_axis_is_exit_2_naming_it(tmp_path, cli, dims, axis):
    path = str(tmp_path / "m.onnx")
    _sign_mlp(path, dims)
    rc, _, err = cli("inspect", path)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "'x'" in err and f"axis {axis}" in err and "'K'" in err
