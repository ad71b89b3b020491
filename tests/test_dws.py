"""Depthwise-separable models through the command line: brevitas_examples' MobileNet-v1
blocks (tests/fixtures/dws, scripts/make_dws_fixtures.py) run, inspect, estimate and fold;
a grouped Conv that does not split evenly is refused."""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import cli_run_fixture, fixture_index, fixture_path

DWS = [c for c in fixture_index() if c.get("family") == "dws"]


@pytest.mark.parametrize("case", DWS, ids=[c["name"] for c in DWS])
def test_cli_run_equals_qonnx_executor(case, cli, tmp_path):
    y, refs = cli_run_fixture(cli, case, tmp_path)
    assert np.array_equal(y, refs["outputs"])
    assert len(np.unique(refs["outputs"])) > 4


def test_inspect_shows_vvau_rows(cli):
    rc, out, _ = cli("inspect", fixture_path(DWS[0]["model"]))
    assert rc == 0
    rows = [r for r in out.splitlines() if " VVAU " in r]
    assert len(rows) == 3
    assert all("groups=" in r and "CIN=1" in r and "thresholds=15" in r for r in rows)
    assert sum("order=depthwise" in r for r in out.splitlines()) == 3


@pytest.mark.parametrize("board", ["pynq-z2", "zcu104"])
def test_estimate_folds_vvau_with_its_window(cli, board):
    rc, out, err = cli("estimate", fixture_path(DWS[0]["model"]), "--board", board, "--json")
    assert rc == 0, err
    est = json.loads(out)
    rows = est["layers"]
    vv = [i for i, r in enumerate(rows) if r["kind"] == "VVAU"]
    assert len(vv) == 3 and all(rows[i]["LUT"] > 0 and rows[i]["cycles"] > 0 for i in vv)
    assert est["fits"] and est["fps"] > 0
    assert any(rows[i]["PE"] > 1 for i in vv)
    for i in vv:     # the window before it carries SIMD kernel positions of PE groups of
        # CIN = 1 channel per word: PE channels, or (SIMD = K, parallel window) whole windows
        r, w = rows[i], rows[i - 1]
        assert w["kind"] == "SlidingWindow" and w["SIMD"] == r["PE"]
        assert w["out_elems"] == r["in_elems"] == r["SIMD"] * r["PE"]
        assert r["SIMD"] in (1, 9) and (r["SIMD"] == 1 or w["in_elems"] == r["PE"])


def test_max_fps_takes_whole_windows_where_the_pixel_is_narrow(cli, tmp_path):
    """On a large board a narrow-pixel depthwise layer runs one window per cycle (VVAU
    SIMD = K = 9 behind a parallel window, one cycle per output pixel); pinned to SIMD 1
    the same model is slower."""
    model = fixture_path(DWS[0]["model"])
    rc, out, err = cli("estimate", model, "--board", "zcu104", "--json")
    assert rc == 0, err
    est = json.loads(out)
    rows = est["layers"]
    fast = [i for i, r in enumerate(rows) if r["kind"] == "VVAU" and r["SIMD"] == 9]
    assert fast
    for i in fast:
        assert rows[i]["PE"] * rows[i]["SIMD"] == rows[i]["in_elems"]
        assert rows[i - 1]["in_elems"] == rows[i]["PE"]        # a whole pixel in per cycle
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"layers": {r["name"]: {"SIMD": 1} for r in rows
                                          if r["kind"] == "VVAU"}}))
    rc, out, err = cli("estimate", model, "--board", "zcu104", "--config", cfg, "--json")
    assert rc == 0, err
    slow = json.loads(out)
    assert all(r["SIMD"] == 1 for r in slow["layers"] if r["kind"] == "VVAU")
    assert slow["fps"] < est["fps"]


def test_config_pins_vvau_pe(cli, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"layers": {"vvau_0": {"PE": 4}}}))
    rc, out, err = cli("estimate", fixture_path(DWS[0]["model"]), "--config", cfg, "--json")
    assert rc == 0, err
    row = next(r for r in json.loads(out)["layers"] if r["name"] == "vvau_0")
    assert row["PE"] == 4 and row["cycles"] == 12 * 12 * (8 // 4) * 9
    cfg.write_text(json.dumps({"layers": {"vvau_0": {"PE": 3}}}))
    rc, _, err = cli("estimate", fixture_path(DWS[0]["model"]), "--config", cfg)
    assert rc == 2 and "PE=3" in err and len(err.strip().splitlines()) == 1


def test_uneven_groups_refused(cli, tmp_path):
    q = "qonnx.custom_op.general"
    c = lambda n, v: numpy_helper.from_array(np.asarray(v, np.float32), n)
    nodes = [helper.make_node("Quant", ["x", "s", "z", "b"], ["xq"], domain=q, signed=1,
                              narrow=0, rounding_mode="ROUND"),
             helper.make_node("Conv", ["xq", "w"], ["y"], group=4, kernel_shape=[3, 3],
                              name="conv_g4")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [1, 6, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
                          [c("s", 1.0), c("z", 0.0), c("b", 4.0), c("w", np.ones((4, 1, 3, 3)))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(q, 1)])
    onnx.save(m, tmp_path / "g.onnx")
    rc, _, err = cli("inspect", tmp_path / "g.onnx")
    assert rc == 2 and "conv_g4" in err and "Conv" in err and "group=4" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("case", DWS, ids=[c["name"] for c in DWS])
def test_exact_arithmetic_golden_equals_exact_reference(case, cli, tmp_path, monkeypatch):
    """bnncc's real-arithmetic folding (api.load(exact=True), bnncc.arith) against the
    float64 reference executor whose roundings are all checked to be decided: the same
    output integers on the fixture's inputs (ProxylessNAS, where float32 references
    disagree, runs the same comparison in hw_tests/test_imagenet_dws.py)."""
    from bnncc import api
    from bnncc.testing import exact_onnx
    path = fixture_path(case["model"])
    x = np.load(fixture_path(case["refs"]))["inputs"]
    want, margins = exact_onnx.run(path, x)
    assert min(margins.values()) > exact_onnx.MARGIN
    y = api.load(str(path), exact=True).run(x).reshape(want.shape)
    step = np.min(np.diff(np.unique(want)))           # one output quantization step
    assert np.max(np.abs(y - want)) < 1e-3 * step
    assert len(np.unique(want)) > 4
    np.save(tmp_path / "x.npy", x)                    # the CLI's --arithmetic exact: the same
    seen, load = [], api.load                         # (and it reaches the folding)
    monkeypatch.setattr(api, "load", lambda *a: seen.append(a[-1]) or load(*a))
    rc, _, err = cli("run", path, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy",
                     "--arithmetic", "exact")
    assert rc == 0, err
    assert np.array_equal(np.load(tmp_path / "y.npy").reshape(y.shape), y) and seen == [True]


def test_exact_reference_refuses_an_undecided_rounding(tmp_path):
    """A Quant input exactly on a tie (2.5 steps) in float64 terms is refused, not guessed."""
    from bnncc.testing import exact_onnx
    node = helper.make_node("Quant", ["x", "s", "z", "b"], ["y"], name="q",
                            domain="qonnx.custom_op.general", signed=1, narrow=0,
                            rounding_mode="ROUND")
    g = helper.make_graph([node], "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
                          [numpy_helper.from_array(np.array(v, np.float32), n)
                           for n, v in (("s", 0.1), ("z", 0.0), ("b", 4.0))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("qonnx.custom_op.general", 1)])
    onnx.save(m, tmp_path / "q.onnx")
    y, margins = exact_onnx.run(tmp_path / "q.onnx", np.array([[0.1, 0.26]]))
    assert np.allclose(y, [[0.1, 0.3]]) and margins["q"] > 0.05
    with pytest.raises(exact_onnx.Undecided):
        exact_onnx.run(tmp_path / "q.onnx", np.array([[float(np.float32(0.1)) * 2.5, 0.0]]))
