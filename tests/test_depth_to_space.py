"""DepthToSpace (DCR, CRD) and SpaceToDepth between hardware layers: a DepthToSpace block
in the stream (bnncc/layers/depth_to_space.py), golden model against the qonnx executor on
the fixtures (tests/fixtures/reorder, scripts/make_reorder_fixtures.py) and on a random
family, its read order against the ONNX op, its folding, estimate row and project files.
C simulation and Verilator: hw_tests/test_depth_to_space_hw.py."""
from pathlib import Path

import numpy as np
import onnx
import pytest

import bnncc
from bnncc.datatypes import DataType
from bnncc.layers import DepthToSpace, WidthConverter
from bnncc.layers.depth_to_space import reorder
from bnncc.testing.netgen import reference_outputs
from bnncc.testing.netgen.reorder import random_reorder_network

FIX = Path(__file__).resolve().parent / "fixtures" / "reorder"
SR = ("sr_dcr_w4", "sr_crd_w4", "sr_s2d_w4", "sr_dcr_w1")


def _d2s(design):
    return [l for l in design.layers() if isinstance(l, DepthToSpace)]


@pytest.mark.parametrize("name", SR)
def test_fixture_golden_equals_reference(name):
    path = FIX / f"{name}.onnx"
    refs = np.load(FIX / f"{name}.refs.npz")
    x, want = refs["inputs"], refs["outputs"]
    m = bnncc.load(str(path))
    assert len(_d2s(m.design)) == 1          # in hardware, between the two convs
    assert np.array_equal(reference_outputs(onnx.load(str(path)), x), want)
    assert np.array_equal(m.run(x), want)


def test_run_command_equals_reference(tmp_path, cli):
    out, refs = tmp_path / "y.npy", np.load(FIX / "sr_crd_w4.refs.npz")
    np.save(tmp_path / "x.npy", refs["inputs"])
    rc, _, err = cli("run", FIX / "sr_crd_w4.onnx", "-i", tmp_path / "x.npy", "-o", out)
    assert rc == 0, err
    assert np.array_equal(np.load(out), refs["outputs"])


@pytest.mark.parametrize("seed", range(20))
def test_random_family_golden_equals_reference(seed, tmp_path):
    case = random_reorder_network(seed)
    p = tmp_path / "m.onnx"
    onnx.save(case.model, str(p))
    m = bnncc.load(str(p))
    assert _d2s(m.design), case.meta
    assert np.array_equal(m.run(case.inputs), case.outputs), case.meta


@pytest.mark.parametrize("mode,shape,b,pe", [
    ("DCR", (3, 4, 8), 2, 1), ("DCR", (3, 4, 8), 2, 2), ("DCR", (2, 3, 18), 3, 2),
    ("CRD", (3, 4, 8), 2, 1), ("CRD", (2, 2, 27), 3, 1),
    ("S2D", (4, 6, 3), 2, 1), ("S2D", (4, 6, 3), 2, 3), ("S2D", (6, 3, 2), 3, 2)])
def test_read_order_is_the_onnx_permutation(mode, shape, b, pe):
    """The four counters the HLS and RTL step through give, block by block, the
    permutation the ONNX op (NumPy, channels last) makes."""
    h, w, c = shape
    out = reorder(np.zeros((1,) + shape), mode, b).shape[1:]
    l = DepthToSpace("d", DataType.int(4), DataType.int(4), shape, out, mode=mode, block=b, pe=pe)
    words = np.arange(int(np.prod(shape)) // pe)
    elems = np.arange(int(np.prod(shape))).reshape((1,) + shape)
    want = reorder(elems, mode, b).reshape(-1)
    bw = l.block_words()
    got = np.concatenate([k * bw + l.read_order() for k in range(l.blocks())])
    assert sorted(got) == list(words)
    # word k of the output holds elements k*pe .. k*pe+pe-1 of the reordered stream
    assert np.array_equal((got[:, None] * pe + np.arange(pe)).reshape(-1), want)


def test_layers_and_modes():
    d = bnncc.load(str(FIX / "sr_s2d_w4.onnx")).design
    (l,) = _d2s(d)
    assert (l.mode, l.block, l.in_shape, l.out_shape) == ("S2D", 2, (6, 6, 8), (3, 3, 32))
    assert l.pe_channels() == 8
    (l,) = _d2s(bnncc.load(str(FIX / "sr_crd_w4.onnx")).design)
    assert l.mode == "CRD" and l.pe_channels() == 1


@pytest.mark.parametrize("name", SR)
def test_folding_follows_the_neighbours(name):
    """At --max-fps the block takes its producer's word where legal: no width converter
    on its input (CRD can only take one element per word)."""
    acc = bnncc.load(str(FIX / f"{name}.onnx")).fold("pynq-z2")
    g = acc.design.graph
    (l,) = _d2s(acc.design)
    prod = g.nodes[next(iter(g.predecessors(l.name)))]["layer"]
    if l.mode != "CRD":
        assert not isinstance(prod, WidthConverter)
        assert prod.pe == l.pe
    est = acc.estimate()
    row = next(r for r in est["layers"] if r["name"] == l.name)
    assert row["cycles"] == l.cycles() == int(np.prod(l.in_shape)) // l.pe
    assert est["cycles_per_frame"] == max(r["cycles"] for r in est["layers"])


def test_pinned_pe_is_kept():
    acc = bnncc.load(str(FIX / "sr_dcr_w4.onnx")).fold(
        "pynq-z2", config={"layers": {"d2s_0": {"PE": 1}}})
    (l,) = _d2s(acc.design)
    assert l.pe == 1


def test_buffer_is_counted_with_its_floor():
    """Two blocks of words: LUT RAM cells for a small buffer (never below their floor),
    block RAM for a large one."""
    from bnncc.layers.cost import bram18, lutram_sdp
    small = DepthToSpace("d", DataType.int(4), DataType.int(4), (6, 6, 8), (12, 12, 2),
                         mode="DCR", block=2, pe=2)
    w, depth, st = small.buffer_shape()
    assert (w, depth, st) == (8, 2 * 6 * 4, "distributed")
    r = small.resources()
    assert r["LUT"] >= lutram_sdp(w, depth) and r["BRAM18"] == 0
    big = DepthToSpace("d", DataType.int(4), DataType.int(4), (64, 64, 64), (128, 128, 16),
                       mode="DCR", block=2, pe=4)
    w, depth, st = big.buffer_shape()
    assert st == "block" and depth == 2 * 64 * 64 // 4     # two input rows of words
    assert big.resources()["BRAM18"] == bram18(w, depth, rom=False) > 0


def test_compile_writes_the_project(tmp_path, cli):
    outs = []
    for k in range(2):
        out = tmp_path / f"p{k}"
        rc, _, err = cli("compile", FIX / "sr_dcr_w4.onnx", "-o", out)
        assert rc == 0, err
        outs.append(out)
    hpp, v = outs[0] / "hls" / "d2s_0.hpp", outs[0] / "rtl" / "bnncc_d2s_0.v"
    assert "DepthToSpace (DCR)" in hpp.read_text() and "ping-pong" in v.read_text()
    for f in sorted(p for p in outs[0].rglob("*") if p.is_file() and p.name != ".bnncc"):
        assert f.read_bytes() == (outs[1] / f.relative_to(outs[0])).read_bytes(), f


def test_depth_to_space_at_the_output_stays_on_the_host(tmp_path):
    """Where nothing in hardware reads it, the reordering stays a gather on the host."""
    from bnncc.testing.netgen.reorder import _G
    from onnx import TensorProto, helper
    g = _G()
    x = g.quant("x", 0.125, 4, True)
    w = np.random.default_rng(0).integers(-2, 3, (8, 3, 3, 3)).astype(np.float32)
    y = g.quant(g.node("Conv", [x, g.const(w)], kernel_shape=[3, 3], pads=[1] * 4), 1.0, 4, True)
    y = g.node("DepthToSpace", [y], blocksize=2, mode="CRD")
    m = helper.make_model(helper.make_graph(g.nodes, "t", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 3, 4, 4])], [helper.make_tensor_value_info(
            y, TensorProto.FLOAT, None)], g.inits), opset_imports=[
        helper.make_opsetid("", 13), helper.make_opsetid("qonnx.custom_op.general", 1)])
    p = tmp_path / "m.onnx"
    onnx.save(m, str(p))
    mod = bnncc.load(str(p))
    assert not _d2s(mod.design)
    xs = (np.random.default_rng(1).integers(-8, 8, (3, 3, 4, 4)) / 8).astype(np.float32)
    assert np.array_equal(mod.run(xs), reference_outputs(m, xs))
