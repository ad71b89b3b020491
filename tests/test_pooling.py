"""Average and global average pooling on quantized feature maps, against qonnx."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from bnncc.frontend.lower import lower
from bnncc.testing.netgen import reference_outputs

Q = "qonnx.custom_op.general"


def _c(n, v):
    return numpy_helper.from_array(np.asarray(v, np.float32), n)


def pool_model(mode: str, rounding: str, seed: int):
    rng = np.random.default_rng(seed)
    feats = 8 * (9 if mode == "avg" else 1)
    inits = [_c("s", 2 ** -4), _c("z", 0.0), _c("b4", 4.0), _c("one", 1.0), _c("b3", 3.0),
             _c("s2", 2 ** -2), _c("w", rng.integers(-2, 2, (8, 3, 3, 3))),
             _c("wf", rng.integers(-3, 4, (feats, 5)))]
    quant = lambda i, o, s, b, signed, r="ROUND": helper.make_node(
        "Quant", [i, s, "z", b], [o], domain=Q, signed=signed, narrow=0, rounding_mode=r)
    pool = (helper.make_node("AveragePool", ["a"], ["p"], kernel_shape=[2, 2], strides=[2, 2])
            if mode == "avg" else helper.make_node("GlobalAveragePool", ["a"], ["p"]))
    nodes = [quant("x", "xq", "s", "b4", 1), quant("w", "wq", "one", "b3", 1),
             helper.make_node("Conv", ["xq", "wq"], ["cv"], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["cv"], ["r"]), quant("r", "a", "s2", "b4", 0), pool,
             quant("p", "pq", "s2", "b4", 0, rounding), helper.make_node("Flatten", ["pq"], ["f"]),
             quant("wf", "wfq", "one", "b3", 1), helper.make_node("MatMul", ["f", "wfq"], ["y"])]
    g = helper.make_graph(nodes, "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(Q, 1)])


@pytest.mark.parametrize("mode", ["avg", "global"])
@pytest.mark.parametrize("rounding", ["FLOOR", "ROUND", "CEIL"])
def test_average_pool_matches_qonnx(mode, rounding):
    model = pool_model(mode, rounding, seed=len(mode) + len(rounding))
    x = np.random.default_rng(3).uniform(-1, 1, (64, 3, 8, 8)).astype(np.float32)
    ref = reference_outputs(model, x)
    design = lower(model, "pool.onnx")
    assert "SumPool" in [l.kind for l in design.layers()]
    assert np.array_equal(design.run(x).reshape(ref.shape), ref)
