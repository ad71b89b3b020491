"""QONNX Trunc (6-input v2 and legacy 5-input v1) on an integer accumulator."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from bnncc.frontend.lower import lower
from bnncc.testing.netgen import reference_outputs

Q = "qonnx.custom_op.general"


def _c(name, v):
    return numpy_helper.from_array(np.asarray(v, np.float32), name)


def trunc_model(version: int, rounding: str, signed: int):
    rng = np.random.default_rng(version * 10 + signed)
    inits = [_c("s_in", 2.0 ** -3), _c("z", 0.0), _c("b4", 4.0), _c("s_w", 1.0), _c("b3", 3.0),
             _c("w1", rng.integers(-3, 4, (12, 6))), _c("w2", rng.integers(-3, 4, (6, 5))),
             _c("acc_s", 2.0 ** -3), _c("acc_bits", 10.0), _c("out_s", 2.0 ** 1),
             _c("out_bits", 4.0)]
    nodes = [
        helper.make_node("Quant", ["x", "s_in", "z", "b4"], ["xq"], domain=Q, signed=1,
                         narrow=0, rounding_mode="ROUND"),
        helper.make_node("Quant", ["w1", "s_w", "z", "b3"], ["w1q"], domain=Q, signed=1,
                         narrow=1, rounding_mode="ROUND"),
        helper.make_node("MatMul", ["xq", "w1q"], ["acc"]),
    ]
    if version == 2:
        nodes.append(helper.make_node("Trunc", ["acc", "acc_s", "z", "acc_bits", "out_s",
                                                "out_bits"], ["t"], domain=Q,
                                      rounding_mode=rounding, signed=signed, narrow=0))
    else:
        nodes.append(helper.make_node("Trunc", ["acc", "acc_s", "z", "acc_bits", "out_bits"],
                                      ["t"], domain=Q, rounding_mode=rounding))
    nodes += [helper.make_node("Quant", ["w2", "s_w", "z", "b3"], ["w2q"], domain=Q, signed=1,
                               narrow=1, rounding_mode="ROUND"),
              helper.make_node("MatMul", ["t", "w2q"], ["y"])]
    g = helper.make_graph(nodes, "trunc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    # qonnx picks the Trunc semantics from the domain's opset: 6-input Trunc is version 2
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                               helper.make_opsetid(Q, version)])


@pytest.mark.parametrize("version,rounding,signed", [(2, "FLOOR", 1), (2, "ROUND", 1),
                                                      (2, "FLOOR", 0), (1, "FLOOR", 1),
                                                      (1, "ROUND", 1)])
def test_trunc_matches_qonnx(version, rounding, signed):
    model = trunc_model(version, rounding, signed)
    x = np.random.default_rng(5).uniform(-1, 1, (64, 12)).astype(np.float32)
    ref = reference_outputs(model, x)
    design = lower(model, "trunc.onnx")
    assert design.layers()[0].thresholds is not None   # Trunc folded into the first MVAU
    y = design.run(x)
    assert np.array_equal(y.reshape(ref.shape), ref)
