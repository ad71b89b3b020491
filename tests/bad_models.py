"""The bad-input corpus: broken, adversarial or merely odd models and input batches.

`make_case(name, folder)` writes case `name` into `folder` and returns a `Case`: the
model path, extra CLI arguments, and the input batch to use. Three kinds:

  * "model": bnncc must refuse the model (exit 2, one stderr line naming the file) in
    every command;
  * "batch": a good model with a bad input batch: `run` and `cosim` refuse it, naming
    the input file;
  * "legal": odd but valid; every command succeeds and `run` matches the qonnx executor.

`python tests/bad_models.py DIR` writes the whole corpus into DIR (one folder per case).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import numpy as np
from onnx import TensorProto, helper, numpy_helper

QDOM = "qonnx.custom_op.general"
F = TensorProto.FLOAT


@dataclass
class Case:
    path: str
    kind: str
    args: list = field(default_factory=list)
    batch: np.ndarray | None = None       # what to save as the input .npy
    batch_file: str | None = None         # or a ready-made input file


def _c(name, arr, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(arr, dtype), name)


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


def conv_nodes():
    """A small valid CNN: Quant -> Conv 3x3 pad 1 -> BN -> BipolarQuant -> MaxPool 2x2 ->
    Flatten -> MatMul. Input (1, 2, 6, 6), output (1, 3)."""
    rng = np.random.default_rng(1)
    inits = [_c("s8", 2.0 ** -7), _c("z", 0.0), _c("b8", 8.0), _c("one", 1.0),
             _c("w", rng.standard_normal((4, 2, 3, 3))), _c("w2", rng.standard_normal((36, 3))),
             _c("g", rng.uniform(0.5, 1.5, 4)), _c("be", rng.standard_normal(4)),
             _c("mu", rng.standard_normal(4)), _c("var", rng.uniform(1, 4, 4))]
    nodes = [
        helper.make_node("Quant", ["x", "s8", "z", "b8"], ["xq"], domain=QDOM, signed=1,
                         narrow=0, rounding_mode="ROUND"),
        helper.make_node("BipolarQuant", ["w", "one"], ["wq"], domain=QDOM),
        helper.make_node("Conv", ["xq", "wq"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[1, 1]),
        helper.make_node("BatchNormalization", ["c", "g", "be", "mu", "var"], ["cb"]),
        helper.make_node("BipolarQuant", ["cb", "one"], ["a"], domain=QDOM),
        helper.make_node("MaxPool", ["a"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("BipolarQuant", ["w2", "one"], ["w2q"], domain=QDOM),
        helper.make_node("MatMul", ["f", "w2q"], ["y"]),
    ]
    return nodes, inits


CONV_IN = [1, 2, 6, 6]


def model(nodes, inits, inputs=None, outputs=None, opsets=None):
    inputs = inputs or [helper.make_tensor_value_info("x", F, [1, 16])]
    outputs = outputs or [helper.make_tensor_value_info("y", F, [1, 4])]
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(g, opset_imports=opsets or [helper.make_opsetid("", 13),
                                                         helper.make_opsetid(QDOM, 1)])


def good_model():
    return model(*good_nodes())


def conv_model(nodes=None, inits=None, out=3):
    n, i = conv_nodes()
    return model(nodes or n, inits or i, [helper.make_tensor_value_info("x", F, CONV_IN)],
                 [helper.make_tensor_value_info("y", F, [1, out])])


def _replace(nodes, i, node):
    nodes = list(nodes)
    nodes[i] = node
    return nodes


def _with_attr(m, idx, name, value=None, drop=False, twice=False):
    """Set (or drop, or duplicate) attribute `name` of node `idx`."""
    n = m.graph.node[idx]
    keep = [a for a in n.attribute if a.name != name]
    if twice:
        keep = list(n.attribute)
    del n.attribute[:]
    n.attribute.extend(keep)
    if not drop:
        n.attribute.append(helper.make_attribute(name, value))
    return m


def _with_init(m, name, value, dtype=np.float32):
    for i, t in enumerate(m.graph.initializer):
        if t.name == name:
            m.graph.initializer[i].CopyFrom(_c(name, value, dtype))
            return m
    m.graph.initializer.append(_c(name, value, dtype))
    return m


def _with_input(m, dims):
    m.graph.input[0].CopyFrom(helper.make_tensor_value_info("x", F, dims))
    return m


def _external(fields, location="w1.bin", write=None):
    """The MLP with w1 in an external file; `fields` overrides the external_data keys."""
    m = good_model()
    t = [i for i in m.graph.initializer if i.name == "w1"][0]
    raw = numpy_helper.to_array(t).tobytes()
    t.ClearField("float_data")
    t.raw_data = b""
    t.data_location = TensorProto.EXTERNAL
    info = {"location": location, "offset": "0", "length": str(len(raw))}
    info.update(fields)
    for k, v in info.items():
        if v is not None:
            e = t.external_data.add()
            e.key, e.value = k, v
    return m, raw


# --- model cases: name -> function(folder) -> ModelProto (or a path it wrote itself) ------
def _files():
    def truncated(folder):
        data = good_model().SerializeToString()
        return data[: len(data) // 2]
    return {
        "truncated": truncated,
        "garbage": lambda f: bytes(np.random.default_rng(1).integers(0, 256, 300, np.uint8)),
        "empty_file": lambda f: b"",
        "text_file": lambda f: b"this is not an onnx model\n",
        "one_byte": lambda f: b"\x08",
        "json_file": lambda f: b'{"graph": {}}\n',
        "npy_file": lambda f: b"\x93NUMPY\x01\x00v\x00{'descr': '<f4'}" + b" " * 100,
        "model_no_graph": lambda f: b"\x08\x07",   # ir_version 7 and nothing else
    }


def _graph_cases():
    G, M = good_nodes, model
    nodes, inits = G()
    xin = lambda dims, t=F: [helper.make_tensor_value_info("x", t, dims)]
    yout = lambda dims: [helper.make_tensor_value_info("y", F, dims)]
    return {
        "unsupported_op": lambda: M(_replace(nodes, 4, helper.make_node("Softplus", ["hb"], ["a"])), inits),
        "unknown_domain": lambda: M(_replace(nodes, 4, helper.make_node("Foo", ["hb"], ["a"], domain="com.example")), inits),
        "dynamic_dim": lambda: M(nodes, inits, xin([1, "K"])),
        "zero_size_dim": lambda: M(nodes, inits, xin([1, 0])),
        "negative_dim": lambda: M(nodes, inits, xin([1, -16])),
        "huge_input": lambda: M(nodes, inits, xin([1, 1 << 40])),
        "huge_input_spread": lambda: M(nodes, inits, xin([1, 1 << 20, 1 << 20])),
        "rank0_input": lambda: M(nodes, inits, xin([])),
        "batch_four": lambda: M(nodes, inits, xin([4, 16])),
        "no_input_shape": lambda: M(nodes, inits, xin(None)),
        "int_input": lambda: M(nodes, inits, xin([1, 16], TensorProto.INT8)),
        "double_input": lambda: M(nodes, inits, xin([1, 16], TensorProto.DOUBLE)),
        "non_constant_weights": lambda: M(nodes, [i for i in inits if i.name != "w1"],
                                          xin([1, 16]) + [helper.make_tensor_value_info("w1", F, [16, 8])]),
        "weights_from_activation": lambda: M(
            _replace(nodes, 1, helper.make_node("Transpose", ["xq"], ["w1q"])), inits),
        "non_constant_scale": lambda: M(_replace(nodes, 4, helper.make_node("BipolarQuant", ["hb", "hb"], ["a"], domain=QDOM)), inits),
        "activation_product": lambda: M(_replace(nodes, 6, helper.make_node("Mul", ["a", "a"], ["y"])), inits, outputs=yout([1, 8])),
        "float_between_quantizers": lambda: M(_replace(nodes, 4, helper.make_node("Identity", ["hb"], ["a"])), inits),
        "no_input_quantizer": lambda: M([helper.make_node("Identity", ["x"], ["xq"])] + nodes[1:], inits),
        "undefined_tensor": lambda: M(_replace(nodes, 2, helper.make_node("MatMul", ["nowhere", "w1q"], ["h"])), inits),
        "cycle": lambda: M(_replace(nodes, 2, helper.make_node("MatMul", ["a", "w1q"], ["h"])), inits),
        "self_loop": lambda: M(_replace(nodes, 3, helper.make_node("Relu", ["hb"], ["hb"])), inits),
        "two_outputs": lambda: M(nodes, inits, outputs=yout([1, 4]) + [helper.make_tensor_value_info("a", F, [1, 8])]),
        "no_outputs": _no_outputs,
        "output_is_input": lambda: M(nodes, inits, outputs=[helper.make_tensor_value_info("x", F, [1, 16])]),
        "output_undefined": lambda: M(nodes, inits, outputs=[helper.make_tensor_value_info("zz", F, [1, 4])]),
        "empty_graph": lambda: M([], [], outputs=[helper.make_tensor_value_info("x", F, [1, 16])]),
        "duplicate_output_name": lambda: M(nodes[:3] + [helper.make_node("Relu", ["xq"], ["h"])] + nodes[3:], inits),
        "duplicate_initializer": lambda: M(nodes, inits + [_c("w1", np.ones((16, 8)))]),
        "wrong_output_shape": lambda: M(nodes, inits, outputs=yout([1, 5])),
        "weights_wrong_shape": lambda: M(nodes, [i for i in inits if i.name != "w1"] + [_c("w1", np.ones((15, 8)))]),
        "weights_3d": lambda: M(nodes, [i for i in inits if i.name != "w2"] + [_c("w2", np.ones((2, 8, 4)))], outputs=yout([2, 1, 4])),
        "initializer_bad_raw": lambda: _bad_raw(),
        "initializer_string": lambda: M(nodes, [i for i in inits if i.name != "w1"] + [helper.make_tensor("w1", TensorProto.STRING, [1], [b"x"])]),
        "reshape_bad_size": lambda: M(nodes[:5] + [helper.make_node("Reshape", ["a", "shp"], ["ar"])] +
                                      [nodes[5], helper.make_node("MatMul", ["ar", "w2q"], ["y"])],
                                      inits + [_c("shp", [1, 9], np.int64)]),
        "opset_99": lambda: M(nodes, inits, opsets=[helper.make_opsetid("", 99), helper.make_opsetid(QDOM, 1)]),
        "opset_0": lambda: M(nodes, inits, opsets=[helper.make_opsetid("", 0), helper.make_opsetid(QDOM, 1)]),
        "opset_negative": lambda: M(nodes, inits, opsets=[helper.make_opsetid("", -3), helper.make_opsetid(QDOM, 1)]),
        "opset_twice": lambda: M(nodes, inits, opsets=[helper.make_opsetid("", 13), helper.make_opsetid("", 11), helper.make_opsetid(QDOM, 1)]),
        "custom_opset_0": lambda: M(nodes, inits, opsets=[helper.make_opsetid("", 13), helper.make_opsetid(QDOM, 0)]),
        "custom_opset_huge": lambda: M(nodes, inits, opsets=[helper.make_opsetid("", 13), helper.make_opsetid(QDOM, 1 << 40)]),
        "grouped_conv_uneven": lambda: _grouped_conv(3),
        "acc_over_64_bits": lambda: _wide_acc(),
    }


def _no_outputs():
    nodes, inits = good_nodes()
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [1, 16])], [], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QDOM, 1)])


def _bad_raw():
    m = good_model()
    t = [i for i in m.graph.initializer if i.name == "w1"][0]
    t.raw_data = t.raw_data[:-12]
    return m


def _grouped_conv(group=2):
    rng = np.random.default_rng(0)
    inits = [_c("s8", 2.0 ** -7), _c("z", 0.0), _c("b8", 8.0), _c("one", 1.0),
             _c("w", rng.standard_normal((4, 2, 3, 3)))]
    nodes = [helper.make_node("Quant", ["x", "s8", "z", "b8"], ["xq"], domain=QDOM,
                              signed=1, narrow=0, rounding_mode="ROUND"),
             helper.make_node("BipolarQuant", ["w", "one"], ["wq"], domain=QDOM),
             helper.make_node("Conv", ["xq", "wq"], ["y"], group=group, kernel_shape=[3, 3])]
    return model(nodes, inits, [helper.make_tensor_value_info("x", F, [1, 4, 6, 6])],
                 [helper.make_tensor_value_info("y", F, [1, 4, 4, 4])])


def _wide_acc():
    """INT32 inputs times integer weights near 2^31 over 64 inputs: the exact accumulator
    range needs 69 bits (given --input-type INT32)."""
    w = np.full((64, 2), 2.0 ** 31 - 1, np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    return model(nodes, [_c("w", w)], [helper.make_tensor_value_info("x", F, [1, 64])],
                 [helper.make_tensor_value_info("y", F, [1, 2])])


# attribute and tensor mutations of the MLP (node indices: 0 input Quant, 1 w1 quant,
# 2 MatMul, 3 BN, 4 act BipolarQuant, 5 w2 quant, 6 MatMul)
_MLP_ATTRS = {
    "quant_signed_str0": (0, "signed", "0"), "quant_signed_float": (0, "signed", 0.5),
    "quant_signed_2": (0, "signed", 2), "quant_signed_neg": (0, "signed", -1),
    "quant_signed_ints": (0, "signed", [1, 0]), "quant_narrow_str": (0, "narrow", "1"),
    "quant_narrow_float": (0, "narrow", 1.0), "quant_narrow_3": (0, "narrow", 3),
    "quant_rounding_int": (0, "rounding_mode", 1), "quant_rounding_float": (0, "rounding_mode", 0.5),
    "bad_rounding_mode": (0, "rounding_mode", "SIDEWAYS"), "quant_rounding_empty": (0, "rounding_mode", ""),
    "quant_rounding_ints": (0, "rounding_mode", [1, 2]), "quant_rounding_nul": (0, "rounding_mode", "ROUND\0"),
    "bn_epsilon_negative": (3, "epsilon", -1.0), "bn_epsilon_nan": (3, "epsilon", float("nan")),
    "bn_epsilon_str": (3, "epsilon", "1e-5"), "bn_epsilon_inf": (3, "epsilon", float("inf")),
    "bn_training_mode_2": (3, "training_mode", 2), "bn_training_mode_1": (3, "training_mode", 1),
    "bn_unknown_attr": (3, "bogus", 1),
}
_MLP_INITS = {
    "bad_bitwidth": ("b8", 2.5), "bitwidth_vector_nan": ("b8", [8.0] * 15 + [np.nan]), "bitwidth_33": ("b8", 33.0),
    "bitwidth_negative": ("b8", -8.0), "bitwidth_nan": ("b8", np.nan), "bitwidth_inf": ("b8", np.inf),
    "bitwidth_vector": ("b8", [8.0, 8.0]), "bitwidth_huge": ("b8", 1e9),
    "scale_zero": ("s8", 0.0), "scale_negative": ("s8", -0.5), "scale_nan": ("s8", np.nan),
    "scale_inf": ("s8", np.inf), "scale_neg_inf": ("s8", -np.inf),
    "scale_bad_shape": ("s8", [1.0, 2.0, 3.0]), "scale_mixed_nan": ("s8", [1.0] * 15 + [np.nan]),
    "zeropt_1e30": ("z", 1e30), "zeropt_nan": ("z", np.nan), "zeropt_inf": ("z", np.inf),
    "zeropt_out_of_range": ("z", 300.0), "zeropt_bad_shape": ("z", [0.0, 0.0, 0.0]),
    "act_scale_zero": ("one", 0.0), "act_scale_nan": ("one", np.nan), "act_scale_inf": ("one", np.inf),
    "act_scale_negative": ("one", -1.0),
    "bn_var_negative": ("var", -np.ones(8)), "bn_var_nan": ("var", [np.nan] * 8),
    "bn_gamma_nan": ("g", [np.nan] * 8), "bn_mean_inf": ("mu", [np.inf] * 8),
    "bn_beta_nan": ("be", [0.0] * 7 + [np.nan]), "bn_params_short": ("g", np.ones(5)),
    "weights_nan": ("w1", np.full((16, 8), np.nan)), "weights_mixed_nan": ("w2", [[np.nan] * 4] + [[1.0] * 4] * 7),
}
# the CNN (0 Quant, 1 w quant, 2 Conv, 3 BN, 4 BipolarQuant, 5 MaxPool, 6 Flatten, 7, 8 MatMul)
_CONV_ATTRS = {
    "conv_stride_0": (2, "strides", [0, 1]), "conv_stride_negative": (2, "strides", [-1, 1]),
    "conv_strides_one_value": (2, "strides", [1]), "conv_strides_str": (2, "strides", "1"),
    "conv_strides_float": (2, "strides", [1.0, 1.0]), "conv_pads_negative": (2, "pads", [-1, -1, -1, -1]),
    "conv_pads_two_values": (2, "pads", [1, 1]), "conv_pads_float": (2, "pads", [1.0, 1.0, 1.0, 1.0]),
    "conv_kernel_mismatch": (2, "kernel_shape", [2, 2]), "conv_kernel_zero": (2, "kernel_shape", [0, 3]),
    "conv_kernel_three_dims": (2, "kernel_shape", [3, 3, 3]), "conv_dilation_0": (2, "dilations", [0, 1]),
    "conv_dilation_2": (2, "dilations", [2, 2]), "conv_group_0": (2, "group", 0),
    "conv_group_negative": (2, "group", -2), "conv_auto_pad_bad": (2, "auto_pad", "FOO"),
    "conv_auto_pad_int": (2, "auto_pad", 1), "conv_auto_pad_lowercase": (2, "auto_pad", "same_upper"),
    "conv_unknown_attr": (2, "bogus", [1]),
    "maxpool_kernel_0": (5, "kernel_shape", [0, 2]), "maxpool_kernel_negative": (5, "kernel_shape", [-2, 2]),
    "maxpool_stride_0": (5, "strides", [0, 0]), "maxpool_stride_negative": (5, "strides", [-2, 2]),
    "maxpool_kernel_str": (5, "kernel_shape", "2"), "maxpool_kernel_one_value": (5, "kernel_shape", [2]),
    "maxpool_pads_negative": (5, "pads", [-1, 0, 0, 0]), "maxpool_ceil_2": (5, "ceil_mode", 2),
    "maxpool_kernel_too_big": (5, "kernel_shape", [7, 7]), "maxpool_storage_order_2": (5, "storage_order", 2),
    "maxpool_dilation_0": (5, "dilations", [0, 0]), "flatten_axis_out_of_range": (6, "axis", 5),
    "flatten_axis_str": (6, "axis", "1"),
}
_CONV_INITS = {
    "conv_weights_wrong_channels": ("w", np.ones((4, 3, 3, 3))),
    "conv_weights_2d": ("w", np.ones((4, 18))),
    "conv_weights_too_big": ("w", np.ones((4, 2, 9, 9))),
    "conv_bn_params_short": ("g", np.ones(3)),
}
_EXTERNAL = {
    "external_offset_float": {"offset": "1.5"}, "external_offset_negative": {"offset": "-4"},
    "external_offset_hex": {"offset": "0x0"}, "external_length_float": {"length": "512.0"},
    "external_length_negative": {"length": "-1"}, "external_length_words": {"length": "all"},
    "external_length_short": {"length": "16"}, "external_offset_past_end": {"offset": "4096"},
    "external_location_nul": {"location": "w1\0.bin"}, "external_location_empty": {"location": ""},
    "external_no_location": {"location": None}, "external_offset_huge": {"offset": "9" * 40},
}


def _mlp_attr(idx, name, value):
    return lambda: _with_attr(good_model(), idx, name, value)


def _conv_attr(idx, name, value):
    return lambda: _with_attr(conv_model(), idx, name, value)


MODEL_CASES = {**_graph_cases(),
               **{k: _mlp_attr(*v) for k, v in _MLP_ATTRS.items()},
               **{k: (lambda n, v: lambda: _with_init(good_model(), n, v))(*v) for k, v in _MLP_INITS.items()},
               **{k: _conv_attr(*v) for k, v in _CONV_ATTRS.items()},
               **{k: (lambda n, v: lambda: _with_init(conv_model(), n, v))(*v) for k, v in _CONV_INITS.items()},
               "bn_var_zero_eps_zero": lambda: _with_attr(_with_init(good_model(), "var", np.zeros(8)),
                                                          3, "epsilon", 0.0),
               "quant_attr_twice": lambda: _with_attr(good_model(), 0, "signed", 1, twice=True),
               "maxpool_no_kernel": lambda: _with_attr(conv_model(), 5, "kernel_shape", drop=True)}
FILE_CASES = ["not_a_file", "missing_file", *_files()]
EXTERNAL_CASES = ["external_outside", "external_absolute", "external_missing",
                  "external_truncated", "external_symlink_outside", "external_is_directory",
                  *_EXTERNAL]
MODEL_ARGS = {"acc_over_64_bits": ["--input-type", "INT32"]}

# bad input batches for the good MLP (input (1, 16)): name -> array, or a file writer
_nan = np.zeros((2, 16), np.float32)
_nan[1, 3] = np.nan
BATCH_CASES = {
    "batch_nan": _nan, "batch_inf": np.full((1, 16), np.inf, np.float32),
    "batch_neg_inf": np.full((3, 16), -np.inf, np.float32),
    "batch_complex": np.ones((2, 16), np.complex64) * (1 + 2j),
    "batch_complex_real_only": np.ones((2, 16), np.complex128),
    "batch_empty": np.zeros((0, 16), np.float32), "batch_bool": np.ones((2, 16), bool),
    "batch_strings": np.array([["a"] * 16]), "batch_bytes": np.array([[b"a"] * 16]),
    "batch_structured": np.zeros((2, 16), dtype=[("a", "f4"), ("b", "i4")]),
    "batch_float64_overflow": np.full((1, 16), 1e300), "batch_wrong_width": np.zeros((3, 15), np.float32),
    "batch_wrong_rank": np.zeros((2, 4, 4), np.float32), "batch_scalar": np.float32(1.0),
    "batch_datetime": np.zeros((1, 16), "datetime64[s]"), "batch_timedelta": np.zeros((1, 16), "m8[s]"),
    "batch_float16_inf": np.full((1, 16), np.inf, np.float16),
}
BATCH_FILES = {
    "batch_object": lambda p: np.save(p, np.array([[None] * 16], object), allow_pickle=True),
    "batch_not_npy": lambda p: open(p, "wb").write(b"not numpy"),
    "batch_truncated_npy": lambda p: (np.save(p, np.zeros((4, 16), np.float32)),
                                      os.truncate(p, 100)),
    "batch_npz": lambda p: np.savez(p, x=np.zeros((1, 16), np.float32)) or os.replace(p + ".npz", p),
    "batch_directory": lambda p: os.makedirs(p),
    "batch_missing": lambda p: None,
    "batch_empty_file": lambda p: open(p, "wb").close(),
}
# a declared INT input (no quantizer) with values its type cannot hold
BATCH_DECLARED = {"batch_out_of_type": np.full((1, 16), 100.0, np.float32),
                  "batch_out_of_type_negative": np.full((2, 16), -9.0, np.float32)}

# odd but legal: must work in every command and match the qonnx executor
LEGAL_CASES = {
    "legal_unused_extra_node": lambda: _extra_node(),
    "legal_unused_bad_node": lambda: _extra_node(bad=True),
    "legal_rounding_lowercase": _mlp_attr(0, "rounding_mode", "round"),
    "legal_rounding_half_up": _mlp_attr(0, "rounding_mode", "HALF_UP"),
    "legal_narrow_signed": _mlp_attr(0, "narrow", 1),
    "legal_unsigned_input": _mlp_attr(0, "signed", 0),
    "legal_zeropt_in_range": lambda: _with_init(good_model(), "z", 3.0),
    "legal_conv_stride_2": lambda: _conv_legal(2, "strides", [2, 2], 4),
    "legal_conv_no_pads": lambda: _conv_legal(2, "pads", [0, 0, 0, 0], 16),
    "legal_output_identity": lambda: _output_identity(),
    "legal_grouped_conv": lambda: _grouped_conv(2),
    "legal_bitwidth_0": lambda: _with_init(good_model(), "b8", 0.0),
    "legal_no_custom_opset": lambda: model(*good_nodes(), opsets=[helper.make_opsetid("", 13)]),
}
LEGAL_BATCHES = {"legal_batch_float64": np.linspace(-2, 2, 48).reshape(3, 16),
                 "legal_batch_int": np.arange(-8, 8, dtype=np.int64).reshape(1, 16),
                 "legal_batch_one_frame": np.linspace(-1, 1, 16).astype(np.float32)}


def _conv_legal(idx, name, value, feats):
    m = _with_attr(conv_model(), idx, name, value)
    return _with_init(m, "w2", np.random.default_rng(2).standard_normal((feats, 3)))


def _output_identity():
    nodes, inits = good_nodes()
    nodes[-1] = helper.make_node("MatMul", ["a", "w2q"], ["y0"])
    return model(nodes + [helper.make_node("Identity", ["y0"], ["y"])], inits)


def _extra_node(bad=False):
    nodes, inits = good_nodes()
    extra = helper.make_node("MaxPool" if bad else "Relu", ["h"], ["unused"],
                             **({"kernel_shape": [0]} if bad else {}))
    return model(nodes[:3] + [extra] + nodes[3:], inits)


CASES = (FILE_CASES + list(MODEL_CASES) + EXTERNAL_CASES + list(BATCH_CASES) +
         list(BATCH_FILES) + list(BATCH_DECLARED) + list(LEGAL_CASES) + list(LEGAL_BATCHES) +
         ["legal_external_data"])


def _write_external(name, folder):
    loc = {"external_outside": "../outside.bin", "external_absolute": "/etc/passwd",
           "external_missing": "absent.bin", "external_truncated": "short.bin",
           "external_symlink_outside": "link.bin", "external_is_directory": "adir"}.get(name, "w1.bin")
    m, raw = _external(_EXTERNAL.get(name, {}), loc)
    if name == "external_outside":
        open(os.path.join(folder, "..", "outside.bin"), "wb").write(raw)
    elif name == "external_truncated":
        open(os.path.join(folder, "short.bin"), "wb").write(raw[:10])
    elif name == "external_symlink_outside":
        target = os.path.join(folder, "..", f"{os.path.basename(folder)}_target.bin")
        open(target, "wb").write(raw)
        os.symlink(os.path.abspath(target), os.path.join(folder, "link.bin"))
    elif name == "external_is_directory":
        os.makedirs(os.path.join(folder, "adir"), exist_ok=True)
    elif name in _EXTERNAL or name == "legal_external_data":
        open(os.path.join(folder, "w1.bin"), "wb").write(raw)
    return m


def make_case(name: str, folder: str) -> Case:
    """Write case `name` into `folder`; return what to hand to bnncc."""
    path = os.path.join(folder, f"{name}.onnx")
    mlp_batch = np.zeros((2, 16), np.float32)
    if name == "not_a_file":
        os.makedirs(path, exist_ok=True)
        return Case(path, "model", batch=mlp_batch)
    if name == "missing_file":
        return Case(path, "model", batch=mlp_batch)
    files = _files()
    if name in files:
        open(path, "wb").write(files[name](folder))
        return Case(path, "model", batch=mlp_batch)
    kind, args, batch, batch_file = "model", MODEL_ARGS.get(name, []), None, None
    if name in MODEL_CASES:
        m = MODEL_CASES[name]()
    elif name in EXTERNAL_CASES:
        m = _write_external(name, folder)
    elif name in BATCH_CASES or name in BATCH_FILES:
        m, kind = good_model(), "batch"
        batch = BATCH_CASES.get(name)
        if name in BATCH_FILES:
            batch_file = os.path.join(folder, f"{name}.npy")
            BATCH_FILES[name](batch_file)
    elif name in BATCH_DECLARED:
        nodes, inits = good_nodes()
        m = model([helper.make_node("Identity", ["x"], ["xq"])] + nodes[1:], inits)
        kind, args, batch = "batch", ["--input-type", "INT4"], BATCH_DECLARED[name]
    elif name in LEGAL_CASES:
        m, kind = LEGAL_CASES[name](), "legal"
    elif name == "legal_external_data":
        m, kind = _write_external(name, folder), "legal"
    elif name in LEGAL_BATCHES:
        m, kind, batch = good_model(), "legal", LEGAL_BATCHES[name]
    else:
        raise KeyError(name)
    open(path, "wb").write(m.SerializeToString())
    if batch is None and batch_file is None:   # a well-formed batch for the model's input
        dims = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] \
            if m.graph.input else []
        if not dims or not all(0 < d < 4096 for d in dims) or np.prod(dims) > 1 << 16:
            dims = [1, 16]
        batch = np.linspace(-1, 1, 2 * int(np.prod(dims[1:]))).reshape([2] + dims[1:])
        batch = batch.astype(np.float32)
    return Case(path, kind, args, batch, batch_file)


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "bad_corpus"
    for name in CASES:
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        c = make_case(name, d)
        if c.batch is not None:
            np.save(os.path.join(d, "input.npy"), c.batch, allow_pickle=False)
    print(f"wrote {len(CASES)} cases to {out}/")
