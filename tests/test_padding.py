"""Zero padding over binarized activations (issue 19): border classes, the exhaustive
per-class oracle on every reachable accumulator value, the padded fixtures against
onnxruntime, Pad / auto_pad lowering, and clear refusals."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bnncc import api
from bnncc.datatypes import DataType
from bnncc.frontend.lower import lower
from bnncc.frontend.ops.padding import same_pads
from bnncc.layers import MVAU, SlidingWindow
from bnncc.layers.bits import Packed, pack_bits
from bnncc.layers.border import Border
from bnncc.testing.netgen.padded import random_padded_network
from conftest import cli_run_fixture, fixture_index, fixture_path
from pad_oracle import check_border_layer

PADDED = [c for c in fixture_index() if c["family"] == "padded"]


def border_layers(design):
    """(sliding window, MVAU) pairs whose MVAU corrects for zero padding."""
    out = []
    for l in design.layers():
        if isinstance(l, MVAU) and l.border is not None:
            (swg,) = [design.layer(p) for p in design.inputs_of(l.name)]
            out.append((swg, l))
    return out


def test_border_classes_of_common_geometries():
    b = Border((8, 8), (8, 8), (3, 3), (1, 1), (1, 1, 1, 1), 4)
    assert b.n_classes == 9                       # top / interior / bottom, both axes
    assert sorted(b.masks().sum(1) // 4) == [0, 3, 3, 3, 3, 5, 5, 5, 5]
    s2 = Border((8, 8), (4, 4), (3, 3), (2, 2), (1, 1, 1, 1), 4)
    assert s2.n_classes == 4                      # stride 2: no bottom / right border
    assert s2.pixel_classes().reshape(4, 4)[1:, 1:].tolist() == [[3] * 3] * 3


def test_same_pads_match_onnx_shapes():
    assert same_pads(7, 3, 2, upper=True) == (1, 1)
    assert same_pads(8, 3, 2, upper=True) == (0, 1)
    assert same_pads(8, 3, 2, upper=False) == (1, 0)
    assert same_pads(5, 1, 1, upper=True) == (0, 0)


@pytest.mark.parametrize("case", PADDED, ids=[c["name"] for c in PADDED])
def test_padded_fixture_run_equals_onnxruntime(case, tmp_path, cli):
    y, refs = cli_run_fixture(cli, case, tmp_path)
    assert np.array_equal(y, refs["outputs"])


def test_fixtures_exercise_the_border_path():
    kinds = {}
    for case in PADDED:
        d = api.load(fixture_path(case["model"]))
        kinds[case["name"]] = [(l.binary, l.thresholds is not None) for _, l in border_layers(d)]
    assert len(kinds["bnn_tutorial_pads1"]) == 3          # every bipolar conv
    assert (True, False) in kinds["bnn_tutorial_pads1"]   # raw accumulators into MaxPool
    assert (True, True) in kinds["bnn_stride2_pads1"]
    assert kinds["larq_pad_plus1"] == []                  # +1 padding needs no correction


@pytest.mark.parametrize("case", PADDED, ids=[c["name"] for c in PADDED])
def test_border_oracle_on_fixtures(case):
    model = onnx.load(fixture_path(case["model"]))
    d = api.load(fixture_path(case["model"]))
    for swg, layer in border_layers(d):
        assert check_border_layer(model, swg, layer) > 0


def _oracle_seeds():
    """Generated networks with small border layers of every kind: XNOR-popcount and
    add/sub datapaths (odd channel counts, integer weights), thresholds and raw outputs."""
    return [2, 7, 9, 19, 26, 28, 33, 34, 38, 39, 47, 59]


@pytest.mark.parametrize("seed", _oracle_seeds())
def test_border_oracle_on_generated_networks(seed):
    case = random_padded_network(seed)
    d = lower(case.model, case.name)
    layers = border_layers(d)
    assert layers
    for swg, layer in layers:
        assert check_border_layer(case.model, swg, layer) > 0


def test_oracle_catches_a_wrong_correction():
    case = random_padded_network(2)
    d = lower(case.model, case.name)
    swg, layer = border_layers(d)[0]
    corr = layer.corrections().copy()
    corr[0, 0] += 1
    layer.__dict__["_corr_cache"] = (layer.weights, corr)
    with pytest.raises(AssertionError):
        check_border_layer(case.model, swg, layer)


def test_packed_window_pads_with_bit_zero():
    rng = np.random.default_rng(0)
    x = rng.choice([-1, 1], size=(2, 4, 4, 64))
    swg = SlidingWindow("swg", DataType.bipolar(), DataType.bipolar(), (4, 4, 64), (4, 4, 576),
                        kernel=(3, 3), pads=(1, 1, 1, 1), pad_value=-1)
    packed = swg.execute(Packed(pack_bits(x), 64)).unpack()
    assert np.array_equal(packed, swg.execute(x))
    assert packed[0, 0, 0, :64].tolist() == [-1] * 64


# ------------------------------------------------------------------ lowering and refusals
def _sign_conv_model(pre_nodes, conv_attrs, pad_input="a"):
    """x -> Sign -> BN -> Sign (bipolar a) -> [pre_nodes] -> Conv(Sign(w)) -> y."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 2, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")]
    for n, v in (("g", [1.0, 1.0]), ("b", [0.1, -0.1]), ("m", [0.0, 0.0]), ("v", [1.0, 1.0])):
        inits.append(numpy_helper.from_array(np.array(v, np.float32), n))
    nodes = [helper.make_node("Sign", ["x"], ["s"], name="sign_in"),
             helper.make_node("Conv", ["s", "w1"], ["c0"], name="conv0", kernel_shape=[1, 1]),
             helper.make_node("BatchNormalization", ["c0", "g", "b", "m", "v"], ["n0"], name="bn"),
             helper.make_node("Sign", ["n0"], ["a"], name="sign"),
             helper.make_node("Sign", ["w"], ["wb"], name="wsign")] + pre_nodes + [
             helper.make_node("Conv", [pad_input, "wb"], ["y"], name="conv", kernel_shape=[3, 3],
                              **conv_attrs)]
    inits.append(numpy_helper.from_array(np.array([[[[1.0]]], [[[-1.0]]]], np.float32), "w1"))
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("attrs,pre", [
    ({"pads": [1, 1, 1, 1]}, []),
    ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, []),
    ({"auto_pad": "SAME_LOWER", "strides": [2, 2]}, []),
    ({}, [helper.make_node("Pad", ["a", "pads"], ["p"], name="pad", mode="constant")]),
])
def test_padded_bipolar_conv_equals_onnxruntime(attrs, pre):
    import onnxruntime as ort
    m = _sign_conv_model(pre, attrs, "p" if pre else "a")
    x = np.random.default_rng(1).uniform(-1, 1, (8, 1, 6, 6)).astype(np.float32)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])
    d = lower(m, "m.onnx")
    assert border_layers(d)
    assert np.array_equal(d.run(x).reshape(ref.shape), ref)


@pytest.mark.parametrize("pre,input_name,why", [
    ([helper.make_node("Pad", ["a", "pads"], ["p"], name="pad", mode="reflect")], "p",
     "Pad mode 'reflect'"),
    ([helper.make_node("Pad", ["a", "pads"], ["p"], name="pad", mode="constant"),
      helper.make_node("Relu", ["p"], ["r"], name="relu")], "r", "Pad node feeding Relu"),
    ([helper.make_node("Pad", ["a", "pads", "half"], ["p"], name="pad", mode="constant")], "p",
     "padding with 0.5"),
    ([helper.make_node("MaxPool", ["a"], ["p"], name="pool", kernel_shape=[2, 2],
                       dilations=[2, 2])], "p", "dilated MaxPool"),
    ([helper.make_node("AveragePool", ["a"], ["p"], name="pool", kernel_shape=[2, 2],
                       pads=[1, 1, 1, 1], count_include_pad=1)], "p", "count_include_pad=1"),
])
def test_unsupported_padding_is_exit_2(pre, input_name, why, tmp_path, cli):
    m = _sign_conv_model(pre, {}, input_name)
    m.graph.initializer.append(numpy_helper.from_array(np.array(0.5, np.float32), "half"))
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    rc, _, err = cli("inspect", path)
    assert rc == 2 and why in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
