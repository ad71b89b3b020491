"""HLS backend without a compiler: every layer kind renders, output is deterministic,
the dataflow top wires a DAG with one stream per consumer input and the FIFO depths of
bnncc.passes.fifos, unsupported graphs and layers are refused, the project has what
Vitis HLS needs, and the word packing helpers round-trip."""
from __future__ import annotations

import re

import networkx as nx
import numpy as np
import pytest

from bnncc.backends import hls, hls_layers
from bnncc.datatypes import DataType
from bnncc.errors import BnnccError
from bnncc.ir import INPUT, Design, HostStage
from bnncc.layers import (MVAU, AddStreams, Concat, LabelSelect, MaxPool, SlidingWindow, SumPool,
                          Thresholding)
from bnncc.passes.fifos import fifo_depths
from bnncc.sim import csim
from bnncc.testing.designs import graph_design

BIP = DataType.bipolar()


def every_kind_design() -> Design:
    """SWG (parallel form) -> MVAU (multiply) -> MaxPool -> Thresholding (bipolar), which
    feeds (through a Duplicate) SWG(1x1) -> MVAU (binary), the AddStreams 2 * mvau - thr,
    and the Concat of that sum with thr; then a global SumPool -> LabelSelect, with width
    converters between them: every layer kind and template at least once, and a skip
    connection into each join."""
    rng = np.random.default_rng(0)
    i4 = DataType.int(4)
    swg = SlidingWindow("swg", i4, i4, (6, 6, 2), (4, 4, 18), kernel=(3, 3), stride=(1, 1),
                        pads=(0, 0, 0, 0), pad_value=0, simd=2, parallel=True)
    w = rng.choice([-1, 1], size=(8, 18))
    acc = DataType.for_range(-8 * 18, 8 * 18)
    mv = MVAU("mv0", i4, acc, (4, 4, 18), (4, 4, 8), weights=w, wdt=BIP, binary=False,
              accdt=acc, pe=4, simd=2)
    pool = MaxPool("pool", acc, acc, (4, 4, 8), (2, 2, 8), kernel=(2, 2), stride=(2, 2), pe=2)
    thr = np.sort(rng.integers(-40, 40, size=(8, 1)), axis=1)
    th = Thresholding("thr", acc, BIP, (2, 2, 8), (2, 2, 8), thresholds=thr, tdt=acc,
                      negate=rng.random(8) < 0.5, pe=8)
    swg2 = SlidingWindow("swg2", BIP, BIP, (2, 2, 8), (2, 2, 8), kernel=(1, 1), stride=(1, 1),
                         pads=(0, 0, 0, 0), pad_value=1, simd=8)
    acc2 = DataType.for_range(0, 8)
    mv2 = MVAU("mv1", BIP, acc2, (2, 2, 8), (2, 2, 8), weights=rng.choice([-1, 1], size=(8, 8)),
               wdt=BIP, binary=True, accdt=acc2, pe=4, simd=8)
    s = DataType.for_range(-1, 17)                             # 2 * [0, 8] - [-1, 1]
    add = AddStreams("add", acc2, s, (2, 2, 8), (2, 2, 8), idt_b=BIP, ka=2, kb=-1,
                     inputs=["mv1", "thr"], pe=4)
    cat = Concat("cat", s, s, (2, 2, 8), (2, 2, 16), idts=(s, BIP), channels=(8, 8),
                 inputs=["add", "thr"], pe=2)
    sp = SumPool("gap", s, DataType.for_range(-4, 68), (2, 2, 16), (1, 1, 16), kernel=(2, 2),
                 stride=(1, 1), pe=4)
    ls = LabelSelect("top", sp.odt, DataType.for_range(0, 15), (1, 1, 16), (1, 1, 2), k=2,
                     pe=2)
    return graph_design(swg, mv, pool, th, swg2, mv2, add, cat, sp, ls)


def depthwise_design() -> Design:
    """A depthwise-order window feeding a VVAU (grouped convolution)."""
    from bnncc.testing.designs import chain_design
    from bnncc.testing.grouped import UNIT_CASES, grouped_layers
    shape, oc, g, k, st, pads, idt, wdt, nt, pe = UNIT_CASES[0]
    swg, vv, _ = grouped_layers(np.random.default_rng(0), shape, oc, g, k, st, pads, idt,
                                wdt, nt, pe)
    return chain_design(swg, vv)


def reorder_design() -> Design:
    """A DepthToSpace block, then an overlapping max pool (depthwise window + WindowMax)."""
    from bnncc.layers import DepthToSpace, WindowMax
    from bnncc.testing.designs import chain_design
    t = DataType.int(3)
    d2s = DepthToSpace("d2s", t, t, (3, 3, 8), (6, 6, 2), mode="DCR", block=2, pe=2)
    swg = SlidingWindow("swgp", t, t, (6, 6, 2), (3, 3, 18), kernel=(3, 3), stride=(2, 2),
                        pads=(1, 1, 1, 1), pad_value=t.min, simd=2, depthwise=True)
    wm = WindowMax("wmax", t, t, (3, 3, 18), (3, 3, 2), kernel=(3, 3), pe=2)
    return chain_design(d2s, swg, wm)


def test_every_kind_renders():
    d, dw, ro = every_kind_design(), depthwise_design(), reorder_design()
    kinds = {l.kind for x in (d, dw, ro) for l in x.layers()}
    assert kinds == set(hls.TEMPLATE_OF), kinds
    assert len(d.inputs_of("cat")) == 2 and len(d.inputs_of("add")) == 2
    used = {c.get("template") or hls.TEMPLATE_OF[c["kind"]]
            for x in (d, dw, ro) for c in hls.layer_contexts(x)}
    on_disk = {p.name for p in hls.templates_dir().glob("*.hpp.j2")} - {"top.hpp.j2"}
    assert used == on_disk, on_disk ^ used
    for x in (d, dw, ro):
        files = hls.render(x)
        for name in ("top.cpp", "top.hpp", "tb.cpp", "run_hls.tcl", "Makefile",
                     "bnncc_common.h", "bnncc_stream.h", "tb_input.bin"):
            assert name in files
        for l in x.layers():
            src = files[hls.c_name(l.name) + ".hpp"].decode()
            assert f"void {hls.c_name(l.name)}(hls::stream<" in src
            assert "{{" not in src and "{%" not in src


def test_top_has_dataflow_and_axis():
    src = hls.render(every_kind_design())["top.cpp"].decode()
    assert "#pragma HLS DATAFLOW" in src
    assert "#pragma HLS INTERFACE axis port=in" in src
    assert "#pragma HLS INTERFACE axis port=out" in src
    mv = hls.render(every_kind_design())["mv0.hpp"].decode()
    assert "#pragma HLS ARRAY_PARTITION variable=mv0_weights dim=1 complete" in mv
    common = hls.render(every_kind_design())["bnncc_common.h"].decode()
    assert '#include "bnncc_stream.h"' in common and "__SYNTHESIS__" in common


def test_run_hls_tcl():
    tcl = hls.render(every_kind_design(), part="xczu3eg-sbva484-1-e", clock_mhz=200.0)
    tcl = tcl["run_hls.tcl"].decode()
    for cmd in ("open_project", "set_top bnncc_top", "add_files", "open_solution",
                "set_part {xczu3eg-sbva484-1-e}", "create_clock -period 5.000", "csim_design",
                "csynth_design", "export_design -format ip_catalog"):
        assert cmd in tcl, cmd


def test_emit_is_deterministic(tmp_path):
    a = hls.emit(every_kind_design(), tmp_path / "a")
    b = hls.emit(every_kind_design(), tmp_path / "b")
    assert [p.name for p in a] == [p.name for p in b]
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes(), pa.name
    assert all(p.parent == tmp_path / "a" / "hls" for p in a)


def test_templates_dir_is_the_checkout():
    d = hls.templates_dir()
    assert (d / "mvau.hpp.j2").is_file() and (d / "bnncc_stream.h").is_file()


def _calls(top_cpp: str) -> dict[str, list[str]]:
    """Function name -> the stream arguments of its call in bnncc_top."""
    body = top_cpp.split("#pragma HLS DATAFLOW", 1)[1]
    return {m.group(1): m.group(2).split(", ")
            for m in re.finditer(r"^  (\w+)\(([^()]*)\);$", body, re.M)}


def test_dag_streams_and_depths():
    """Every stream has one writer and one reader, input i of layer v reads a stream its
    producer writes, and that stream has the depth bnncc.passes.fifos gives (v, i)."""
    d = every_kind_design()
    top = hls.render(d)["top.cpp"].decode()
    depth = {m.group(1): int(m.group(2))
             for m in re.finditer(r"#pragma HLS STREAM variable=(\w+) depth=(\d+)", top)}
    calls = _calls(top)
    uses = [s for args in calls.values() for s in args if s.startswith("s_")]
    assert sorted(uses) == sorted(2 * list(depth)), "each stream: one writer, one reader"
    assert calls["bnncc_axis_in"] == ["in", "s_in"] and depth["s_in"] == 2
    want = fifo_depths(d)
    assert len(want) == len(depth) - 2          # plus s_in and the output to bnncc_axis_out
    names = hls.layer_names(d)
    for (v, i), n in want.items():
        assert depth[calls[names[v]][i]] == n, (v, i)
    for v in names:
        n_in = len(d.inputs_of(v))
        for i, p in enumerate(d.inputs_of(v)):
            written = ["s_in"] if p == INPUT else calls[names[p]][len(d.inputs_of(p)):]
            assert calls[names[v]][i] in written, (v, i)
        assert len(calls[names[v]]) == n_in + getattr(d.layer(v), "n", 1)
    assert max(want.values()) > 2               # the skip paths need deeper FIFOs


def test_duplicate_outputs_follow_readers():
    """Output k of a Duplicate is the stream of design.readers(dup)[k]; ports are the
    inputs in inputs_of order, then the outputs."""
    d = every_kind_design()
    calls = _calls(hls.render(d)["top.cpp"].decode())
    names = hls.layer_names(d)
    dups = [l for l in d.layers() if l.kind == "Duplicate"]
    assert [l.n for l in dups] == [3]
    dup = names[dups[0].name]
    outs = calls[dup][1:]
    assert outs == [f"s_{dup}_{k}" for k in range(3)]
    for k, (v, i) in enumerate(d.readers(dups[0].name)):
        assert calls[names[v]][i] == outs[k]


def test_render_is_deterministic_for_a_dag():
    d = every_kind_design()
    assert hls.render(d) == hls.render(d)
    e = every_kind_design()                    # an equal design built again
    assert hls.render(e) == hls.render(d)


def _two_readers_design(dup: bool) -> Design:
    """t reads the input; add reads the input and t: a fan-out of the host stream."""
    t = Thresholding("t", DataType.int(4), DataType.int(4), (8,), (8,),
                     thresholds=np.arange(-7, 8)[None].repeat(8, 0), tdt=DataType.int(4), pe=2)
    add = AddStreams("add", DataType.int(4), DataType.int(6), (8,), (8,), idt_b=DataType.int(4),
                     ka=1, kb=1, inputs=[INPUT, "t"], pe=2)
    if dup:
        return graph_design(t, add)
    g = nx.DiGraph()
    g.add_node("t", layer=t)
    g.add_node("add", layer=add)
    g.add_edge("t", "add")
    stage = HostStage(shape=(1,), gather=np.zeros(1, int), chain=[])
    return Design("u", g, "x", (1, 8), "y", (1, 8), stage, stage)


def test_fan_out_needs_a_duplicate():
    with pytest.raises(BnnccError, match="host input stream must feed exactly one layer"):
        hls.render(_two_readers_design(dup=False))
    d = _two_readers_design(dup=True)
    first, last = hls.endpoints(d)
    assert first.kind == "Duplicate" and last.name == "add"
    assert "void dup_input(hls::stream<ap_uint<4> > &in, hls::stream<ap_uint<4> > &out0, " \
        "hls::stream<ap_uint<4> > &out1);" in hls.render(d)["top.hpp"].decode()


def test_layer_read_twice_without_duplicate_is_refused():
    i4 = DataType.int(4)
    t = Thresholding("t", i4, i4, (8,), (8,), thresholds=np.arange(-7, 8)[None].repeat(8, 0),
                     tdt=i4, pe=2)
    u = Thresholding("u", i4, i4, (8,), (8,), thresholds=np.arange(-7, 8)[None].repeat(8, 0),
                     tdt=i4, pe=2)
    add = AddStreams("add", i4, DataType.int(6), (8,), (8,), idt_b=i4, ka=1, kb=1,
                     inputs=["t", "u"], pe=2)
    g = nx.DiGraph()
    for l in (t, u, add):
        g.add_node(l.name, layer=l)
    g.add_edges_from([("t", "u"), ("t", "add"), ("u", "add")])
    stage = HostStage(shape=(1,), gather=np.zeros(1, int), chain=[])
    with pytest.raises(BnnccError, match="t feeds 2 inputs"):
        hls.render(Design("u", g, "x", (1, 8), "y", (1, 8), stage, stage))


@pytest.mark.parametrize("cls", [MaxPool, SumPool])
@pytest.mark.parametrize("hw,kernel,stride,ok", [
    ((6, 6), (2, 2), (2, 2), True),
    ((6, 6), (6, 6), (1, 1), True),            # global: one window, whatever the stride
    ((6, 5), (2, 5), (2, 3), True),            # rows 2/2, one window across the columns
    ((7, 7), (3, 3), (2, 2), False),           # overlapping windows
    ((6, 6), (2, 2), (3, 3), False),           # gaps between windows
])
def test_pool_windows(cls, hw, kernel, stride, ok):
    (h, w), (kh, kw), (sh, sw) = hw, kernel, stride
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    idt = DataType.int(3)
    odt = DataType.for_range(-4 * kh * kw, 3 * kh * kw) if cls is SumPool else idt
    l = cls("p", idt, odt, (h, w, 4), (oh, ow, 4), kernel=kernel, stride=stride, pe=2)
    if ok:
        src = hls.render(graph_design(l))["p.hpp"].decode()
        assert f"const unsigned KH = {kh}, KW = {kw};" in src
        assert ("s += " in src) == (cls is SumPool)
    else:
        with pytest.raises(BnnccError, match="p: the HLS pool supports non-overlapping"):
            hls.render(graph_design(l))


def test_narrow_join_outputs_are_refused():
    """A sum or concat whose output type cannot hold its values would wrap in hardware."""
    i4 = DataType.int(4)
    t = Thresholding("t", i4, i4, (8,), (8,), thresholds=np.arange(-7, 8)[None].repeat(8, 0),
                     tdt=i4, pe=2)
    add = AddStreams("add", i4, DataType.int(5), (8,), (8,), idt_b=i4, ka=2, kb=1,
                     inputs=["t", INPUT], pe=2)
    with pytest.raises(BnnccError, match="add: output type INT5 cannot hold"):
        hls.render(graph_design(t, add))
    cat = Concat("cat", i4, BIP, (8,), (16,), idts=(i4, i4), channels=(8, 8),
                 inputs=["t", INPUT], pe=2)
    with pytest.raises(BnnccError, match="cat: a bipolar output needs bipolar inputs"):
        hls.render(graph_design(t, cat))


def test_unfolded_edges_are_refused():
    l1 = Thresholding("a", DataType.int(4), DataType.uint(1), (8,), (8,),
                      thresholds=np.zeros((8, 1), int), tdt=DataType.int(4), pe=2)
    l2 = Thresholding("b", DataType.uint(1), DataType.uint(1), (8,), (8,),
                      thresholds=np.ones((8, 1), int), tdt=DataType.int(2), pe=4)
    g = nx.DiGraph()
    g.add_node("a", layer=l1)
    g.add_node("b", layer=l2)
    g.add_edge("a", "b")
    stage = HostStage(shape=(1,), gather=np.zeros(1, int), chain=[])
    d = Design("u", g, "x", (1, 8), "y", (1, 8), stage, stage)
    with pytest.raises(Exception, match="words"):
        hls.render(d)


@pytest.mark.parametrize("dt", [BIP, DataType.int(3), DataType.uint(5), DataType.int(13)])
@pytest.mark.parametrize("elems", [1, 3, 16])
def test_word_files_round_trip(dt, elems):
    rng = np.random.default_rng(elems)
    if dt.is_bipolar:
        v = rng.choice([-1, 1], size=4 * elems)
    else:
        v = rng.integers(dt.min, dt.max + 1, size=4 * elems)
    bits = elems * dt.bits
    data = csim.words_to_bytes(v, dt, elems, 8 * ((bits + 7) // 8))
    assert len(data) == 4 * ((bits + 7) // 8)
    assert np.array_equal(csim.bytes_to_values(data, dt, elems, bits), v)


def test_word_literals():
    lit = hls_layers.word_literals(np.array([[1, -1, 1]]), BIP)
    assert lit.tolist() == ["0x5ULL"]
    lit = hls_layers.word_literals(np.array([[-1, 2]]), DataType.int(3))
    assert lit.tolist() == ["0x17ULL"]   # 0b010_111
    wide = hls_layers.word_literals(np.ones((1, 70), int), BIP).item()
    assert wide.startswith('ap_uint<70>("0x3f') and wide.endswith('", 16)')
