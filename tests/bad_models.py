"""A corpus of broken or unsupported models, each written into a folder by `make_case`.

Every case must make bnncc exit with code 2 and one line on stderr (no traceback).
"""
from __future__ import annotations

import os

import numpy as np
from onnx import TensorProto, helper, numpy_helper

QDOM = "qonnx.custom_op.general"


def _c(name, arr):
    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


def good_nodes(inp="x"):
    """A small valid QONNX MLP: Quant(8b) -> MatMul(bipolar W) -> BN -> BipolarQuant -> MatMul."""
    rng = np.random.default_rng(0)
    inits = [
        _c("s8", 2.0 ** -7), _c("z", 0.0), _c("b8", 8.0), _c("one", 1.0),
        _c("w1", rng.standard_normal((16, 8))), _c("w2", rng.standard_normal((8, 4))),
        _c("g", rng.uniform(0.5, 1.5, 8)), _c("be", rng.standard_normal(8)),
        _c("mu", rng.standard_normal(8) * 3), _c("var", rng.uniform(1, 4, 8)),
    ]
    nodes = [
        helper.make_node("Quant", [inp, "s8", "z", "b8"], ["xq"], domain=QDOM,
                         signed=1, narrow=0, rounding_mode="ROUND"),
        helper.make_node("BipolarQuant", ["w1", "one"], ["w1q"], domain=QDOM),
        helper.make_node("MatMul", ["xq", "w1q"], ["h"]),
        helper.make_node("BatchNormalization", ["h", "g", "be", "mu", "var"], ["hb"]),
        helper.make_node("BipolarQuant", ["hb", "one"], ["a"], domain=QDOM),
        helper.make_node("BipolarQuant", ["w2", "one"], ["w2q"], domain=QDOM),
        helper.make_node("MatMul", ["a", "w2q"], ["y"]),
    ]
    return nodes, inits


def model(nodes, inits, inputs=None, outputs=None):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])]
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                              helper.make_opsetid(QDOM, 1)])


def good_model():
    return model(*good_nodes())


def _replace(nodes, i, node):
    nodes = list(nodes)
    nodes[i] = node
    return nodes


def _external(folder, location):
    m = good_model()
    t = [i for i in m.graph.initializer if i.name == "w1"][0]
    raw = numpy_helper.to_array(t).tobytes()
    t.ClearField("float_data")
    t.raw_data = b""
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(len(raw)))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return m, raw


def make_case(name: str, folder: str) -> str:
    """Write case `name` into `folder`; return the model path to hand to bnncc."""
    path = os.path.join(folder, f"{name}.onnx")
    nodes, inits = good_nodes()
    m = None
    if name == "not_a_file":
        os.makedirs(path, exist_ok=True)
        return path
    if name == "missing_file":
        return path
    if name == "truncated":
        data = good_model().SerializeToString()
        open(path, "wb").write(data[: len(data) // 2])
        return path
    if name == "garbage":
        open(path, "wb").write(bytes(np.random.default_rng(1).integers(0, 256, 300, np.uint8)))
        return path
    if name == "empty_file":
        open(path, "wb").close()
        return path
    if name == "text_file":
        open(path, "w").write("this is not an onnx model\n")
        return path
    if name == "unsupported_op":
        nodes = _replace(nodes, 4, helper.make_node("Softplus", ["hb"], ["a"]))
    elif name == "unknown_domain":
        nodes = _replace(nodes, 4, helper.make_node("Foo", ["hb"], ["a"], domain="com.example"))
    elif name == "dynamic_dim":
        m = model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "K"])])
    elif name == "zero_size_dim":
        m = model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 0])])
    elif name == "batch_four":
        m = model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])])
    elif name == "no_input_shape":
        m = model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)])
    elif name == "int_input":
        m = model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 16])])
    elif name == "non_constant_weights":
        inits = [i for i in inits if i.name != "w1"]
        m = model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16]),
                                 helper.make_tensor_value_info("w1", TensorProto.FLOAT, [16, 8])])
    elif name == "weights_from_activation":
        nodes = _replace(nodes, 1, helper.make_node("Transpose", ["xq"], ["w1q"]))
        nodes.insert(2, helper.make_node("MatMul", ["w1q", "xq"], ["w1q2"]))
    elif name == "non_constant_scale":
        nodes = _replace(nodes, 4, helper.make_node("BipolarQuant", ["hb", "hb"], ["a"], domain=QDOM))
    elif name == "activation_product":
        nodes = _replace(nodes, 6, helper.make_node("Mul", ["a", "a"], ["y"]))
        m = model(nodes, inits, outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])])
    elif name == "float_between_quantizers":
        nodes = _replace(nodes, 4, helper.make_node("Identity", ["hb"], ["a"]))  # no quantizer
    elif name == "no_input_quantizer":
        nodes = nodes[1:]
        nodes.insert(0, helper.make_node("Identity", ["x"], ["xq"]))
    elif name == "bad_bitwidth":
        inits = [i for i in inits if i.name != "b8"] + [_c("b8", 2.5)]
    elif name == "bad_rounding_mode":
        nodes = _replace(nodes, 0, helper.make_node("Quant", ["x", "s8", "z", "b8"], ["xq"],
                                                    domain=QDOM, signed=1, narrow=0,
                                                    rounding_mode="SIDEWAYS"))
    elif name == "undefined_tensor":
        nodes = _replace(nodes, 2, helper.make_node("MatMul", ["nowhere", "w1q"], ["h"]))
    elif name == "cycle":
        nodes = _replace(nodes, 2, helper.make_node("MatMul", ["a", "w1q"], ["h"]))
    elif name == "two_outputs":
        m = model(nodes, inits, outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4]),
                                         helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 8])])
    elif name == "empty_graph":
        m = model([], [], outputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])])
    elif name in ("external_outside", "external_absolute", "external_missing", "external_truncated"):
        loc = {"external_outside": "../outside.bin", "external_absolute": "/etc/passwd",
               "external_missing": "absent.bin", "external_truncated": "short.bin"}[name]
        m, raw = _external(folder, loc)
        if name == "external_outside":
            open(os.path.join(folder, "..", "outside.bin"), "wb").write(raw)
        if name == "external_truncated":
            open(os.path.join(folder, "short.bin"), "wb").write(raw[:10])
    elif name == "grouped_conv":
        rng = np.random.default_rng(0)
        inits = [_c("s8", 2.0 ** -7), _c("z", 0.0), _c("b8", 8.0), _c("one", 1.0),
                 _c("w", rng.standard_normal((4, 2, 3, 3)))]
        nodes = [helper.make_node("Quant", ["x", "s8", "z", "b8"], ["xq"], domain=QDOM,
                                  signed=1, narrow=0, rounding_mode="ROUND"),
                 helper.make_node("BipolarQuant", ["w", "one"], ["wq"], domain=QDOM),
                 helper.make_node("Conv", ["xq", "wq"], ["y"], group=2, kernel_shape=[3, 3])]
        m = model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])])
    else:
        raise KeyError(name)
    m = m or model(nodes, inits)
    open(path, "wb").write(m.SerializeToString())
    return path


CASES = ["not_a_file", "missing_file", "truncated", "garbage", "empty_file", "text_file",
         "unsupported_op", "unknown_domain", "dynamic_dim", "zero_size_dim",
         "batch_four", "no_input_shape", "int_input", "non_constant_weights",
         "weights_from_activation", "non_constant_scale", "activation_product",
         "float_between_quantizers", "no_input_quantizer", "bad_bitwidth", "bad_rounding_mode",
         "undefined_tensor", "cycle", "two_outputs", "empty_graph", "external_outside",
         "external_absolute", "external_missing", "external_truncated", "grouped_conv"]
