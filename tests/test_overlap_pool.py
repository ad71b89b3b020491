"""Overlapping, strided-past, padded and ceil-mode max pooling (ResNet stems): a
depthwise-order sliding window padding with the smallest code plus a WindowMax
(bnncc/layers/window_max.py); golden model against the qonnx executor (onnxruntime's
MaxPool), folding, estimate, and the cases that cannot be exact refused at lowering.
C simulation and Verilator: hw_tests/test_depth_to_space_hw.py."""
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import bnncc
from bnncc.layers import MaxPool, SlidingWindow, WindowMax
from bnncc.testing.netgen import reference_outputs
from bnncc.testing.netgen.reorder import _G, pool_network

FIX = Path(__file__).resolve().parent / "fixtures" / "reorder"

POOLS = [  # kernel, stride, pads, ceil_mode
    (3, 2, 1, False), (3, 2, 1, True), (3, 2, 0, True), (3, 2, 0, False), (2, 1, 0, False),
    (3, 1, 1, False), (2, 3, 0, False), (2, 2, 1, False), (3, 3, 1, True), (2, 2, 0, True)]


@pytest.mark.parametrize("bits", [1, 3])
@pytest.mark.parametrize("pool", POOLS, ids=str)
def test_pool_golden_equals_reference(pool, bits, tmp_path):
    case = pool_network(POOLS.index(pool), pool, bits=bits, shape=(2, 7, 8))
    p = tmp_path / "m.onnx"
    onnx.save(case.model, str(p))
    d = bnncc.load(str(p)).design
    kinds = [l.kind for l in d.layers()]
    k, s, pad, ceil = pool
    tiles = k == s and not pad and not (ceil and (7 - k) % s)
    assert ("MaxPool" in kinds) == tiles and ("WindowMax" in kinds) != tiles, kinds
    y = d.run(case.inputs)
    assert y.shape == case.outputs.shape
    assert np.array_equal(y, case.outputs)


@pytest.mark.parametrize("name", ["stem_pool_w3", "stem_pool_ceil_w1"])
def test_fixture_golden_equals_reference(name):
    path = FIX / f"{name}.onnx"
    x, want = np.load(FIX / f"{name}_in.npy"), np.load(FIX / f"{name}_out.npy")
    assert np.array_equal(reference_outputs(onnx.load(str(path)), x), want)
    m = bnncc.load(str(path))
    swg, wm = [l for l in m.design.layers() if isinstance(l, (SlidingWindow, WindowMax))][-2:]
    assert swg.depthwise and isinstance(wm, WindowMax)
    assert swg.pad_value == swg.idt.min or (swg.idt.is_bipolar and swg.pad_value == -1)
    assert np.array_equal(m.run(x), want)


def test_window_and_max_fold_together():
    acc = bnncc.load(str(FIX / "stem_pool_w3.onnx")).fold("pynq-z2")
    layers = acc.design.layers()
    wm = next(l for l in layers if isinstance(l, WindowMax))
    swg = acc.design.layer(next(iter(acc.design.graph.predecessors(wm.name))))
    assert isinstance(swg, SlidingWindow) and swg.simd == wm.pe
    est = acc.estimate()
    row = next(r for r in est["layers"] if r["name"] == wm.name)
    assert row["cycles"] == wm.cycles() == int(np.prod(wm.in_shape)) // wm.pe
    assert row["LUT"] > 0
    cfg = acc.design and bnncc.load(str(FIX / "stem_pool_w3.onnx")).fold(
        "pynq-z2", config={"layers": {wm.name: {"PE": 2}}})
    wm2 = next(l for l in cfg.design.layers() if isinstance(l, WindowMax))
    assert wm2.pe == 2 and cfg.design.layer(swg.name).simd == 2


def test_compile_writes_the_project(tmp_path, cli):
    out = tmp_path / "p"
    rc, _, err = cli("compile", FIX / "stem_pool_w3.onnx", "-o", out)
    assert rc == 0, err
    assert any("window_max" in f.read_text() or "max over each" in f.read_text()
               for f in (out / "rtl").glob("bnncc_wmax*.v"))
    assert (out / "hls" / "wmax_0.hpp").exists()


def test_tiling_pool_keeps_the_pool_block():
    from bnncc.testing.netgen.reorder import pool_network as pn
    case = pn(0, (2, 2, 0, False), bits=1, shape=(2, 8, 8))
    import tempfile
    with tempfile.TemporaryDirectory() as t:
        p = Path(t) / "m.onnx"
        onnx.save(case.model, str(p))
        d = bnncc.load(str(p)).design
    assert any(isinstance(l, MaxPool) for l in d.layers())


def _pool_model(**attrs):
    g = _G()
    x = g.quant("x", 0.125, 4, True)
    w = np.ones((2, 2, 3, 3), np.float32)
    y = g.quant(g.node("Conv", [x, g.const(w)], kernel_shape=[3, 3], pads=[1] * 4), 1.0, 4, True)
    g.nodes.append(helper.make_node("MaxPool", [y], ["p"], name="the_pool", **attrs))
    return helper.make_model(helper.make_graph(g.nodes, "t", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 2, 5, 5])], [helper.make_tensor_value_info(
            "p", TensorProto.FLOAT, None)], g.inits), opset_imports=[
        helper.make_opsetid("", 13), helper.make_opsetid("qonnx.custom_op.general", 1)])


@pytest.mark.parametrize("attrs,why", [
    (dict(kernel_shape=[2, 2], pads=[2, 2, 0, 0]), "holds only padding"),
    (dict(kernel_shape=[2, 2], dilations=[2, 2]), "dilated MaxPool"),
])
@pytest.mark.parametrize("command", ["inspect", "estimate", "compile", "cosim"])
def test_inexact_pools_are_refused_at_lowering(attrs, why, command, tmp_path, cli):
    p = tmp_path / "m.onnx"
    onnx.save(_pool_model(**attrs), str(p))
    np.save(tmp_path / "x.npy", np.zeros((1, 2, 5, 5), np.float32))
    args = {"inspect": [], "estimate": [], "compile": ["-o", tmp_path / "o"],
            "cosim": ["-i", tmp_path / "x.npy"]}[command]
    rc, _, err = cli(command, p, *args)
    assert rc == 2 and why in err and "Traceback" not in err, err
    assert "the_pool" in err and "MaxPool" in err and str(p) in err, err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("auto", ["SAME_UPPER", "SAME_LOWER"])
def test_auto_pad_same_equals_reference(auto, tmp_path):
    m = _pool_model(kernel_shape=[3, 3], strides=[2, 2], auto_pad=auto)
    p = tmp_path / "m.onnx"
    onnx.save(m, str(p))
    d = bnncc.load(str(p)).design
    assert any(isinstance(l, WindowMax) for l in d.layers())
    x = (np.random.default_rng(5).integers(-8, 8, (6, 2, 5, 5)) / 8).astype(np.float32)
    want = reference_outputs(m, x)
    assert np.array_equal(d.run(x), want)
