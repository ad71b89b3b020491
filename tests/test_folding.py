"""Folding optimizer: legality, budget, --fps, config pins, the does-not-fit error."""
from __future__ import annotations

from pathlib import Path

import pytest

from bnncc import api
from bnncc.boards import get_board
from bnncc.errors import BnnccError
from bnncc.estimate import estimate
from bnncc.folding import fold_for_fps, fold_max_fps, in_elems, out_elems
from bnncc.layers import MVAU, SlidingWindow, WidthConverter

FIX = Path(__file__).parent / "fixtures" / "brevitas"
CNV, TFC = FIX / "cnv_1w1a.onnx", FIX / "tfc_1w1a.onnx"


def check_legal(d):
    g = d.graph
    for l in d.layers():
        if isinstance(l, MVAU):
            assert l.mh % l.pe == 0 and l.mw % l.simd == 0, l.name
            assert l.mem_style in ("block", "lut", "uram")
            preds = list(g.predecessors(l.name))
            if preds and isinstance(d.layer(preds[0]), SlidingWindow):
                swg = d.layer(preds[0])
                want = swg.channels if swg.parallel else l.simd
                assert swg.simd == want and swg.channels % swg.simd == 0, l.name
        elif hasattr(l, "pe") and not isinstance(l, WidthConverter):
            assert int(l.in_shape[-1]) % l.pe == 0 or l.kind == "LabelSelect", l.name
    for u, v in g.edges:           # stream widths agree on every edge
        assert out_elems(d.layer(u)) == in_elems(d.layer(v)), (u, v)


@pytest.mark.parametrize("model,board", [(CNV, "pynq-z2"), (CNV, "zcu104"), (TFC, "pynq-z2")])
def test_max_fps_fits_and_is_legal(model, board):
    b = get_board(board)
    d = api.load(str(model))
    fold_max_fps(d, b, b.clock_mhz)
    check_legal(d)
    e = estimate(d, b, b.clock_mhz)
    assert e["fits"]
    for r in ("LUT", "BRAM18"):
        assert e["totals"][r] <= e["budget"][r]
    if model == CNV and board == "pynq-z2":
        assert e["fps"] > 7972          # FINN SetFolding's result on this board


def test_max_fps_respects_user_budget():
    b = get_board("pynq-z2")
    d = api.load(str(CNV))
    fold_max_fps(d, b, 100, budget={"LUT": 0.3})
    e = estimate(d, b, 100, budget={"LUT": 0.3})
    assert e["fits"] and e["totals"]["LUT"] <= 0.3 * b.LUT
    d2 = api.load(str(CNV))
    fold_max_fps(d2, b, 100)
    assert estimate(d2, b, 100)["fps"] >= e["fps"]


def test_for_fps_meets_target_with_fewer_resources():
    b = get_board("pynq-z2")
    d = api.load(str(CNV))
    fold_for_fps(d, b, 100, 3000)
    check_legal(d)
    e = estimate(d, b, 100)
    assert e["fps"] >= 3000 and e["fits"]
    d2 = api.load(str(CNV))
    fold_max_fps(d2, b, 100)
    e2 = estimate(d2, b, 100)
    assert e["totals"]["LUT"] < e2["totals"]["LUT"]


def test_for_fps_unreachable_names_layer():
    b = get_board("pynq-z2")
    d = api.load(str(CNV))
    with pytest.raises(BnnccError, match="swg_0|mvau_0"):
        fold_for_fps(d, b, 100, 1e6)


def test_config_pins_layers(tmp_path):
    b = get_board("pynq-z2")
    d = api.load(str(CNV))
    cfg = {"layers": {"mvau_1": {"PE": 8, "SIMD": 16, "mem_style": "bram"},
                      "mvau_6": {"PE": 4}}}
    fold_max_fps(d, b, 100, config=cfg)
    assert (d.layer("mvau_1").pe, d.layer("mvau_1").simd, d.layer("mvau_1").mem_style) == \
        (8, 16, "block")
    assert d.layer("swg_1").simd == 16 and d.layer("mvau_6").pe == 4
    check_legal(d)
    bad = tmp_path / "bad.json"
    bad.write_text('{"layers": {"mvau_1": {"PE": 7}}}')
    with pytest.raises(BnnccError, match="PE=7"):
        fold_max_fps(api.load(str(CNV)), b, 100, config=str(bad))


def test_does_not_fit_names_layer_and_amount(tmp_path):
    p = tmp_path / "tiny.toml"
    p.write_text('name = "Tiny"\npart = "x"\nfamily = "xc7"\nclock_mhz = 100.0\n'
                 'LUT = 4000\nFF = 8000\nBRAM18 = 10\nURAM = 0\nDSP = 10\n')
    b = get_board(str(p))
    d = api.load(str(CNV))
    with pytest.raises(BnnccError) as ei:
        fold_max_fps(d, b, 100)
    msg = str(ei.value)
    assert ei.value.exit_code == 2
    assert "mvau_" in msg and "over by" in msg and "fully folded" in msg


def test_refold_is_idempotent():
    b = get_board("pynq-z2")
    d = api.load(str(CNV))
    fold_max_fps(d, b, 100)
    a = [(l.name, getattr(l, "pe", None), getattr(l, "simd", None)) for l in d.layers()]
    fold_max_fps(d, b, 100)
    assert a == [(l.name, getattr(l, "pe", None), getattr(l, "simd", None)) for l in d.layers()]


def test_parallel_window_lifts_the_first_layer_cap():
    """CNV's first layer has 3 channels: channel-serial windows cap it at 9 cycles per
    output pixel (8,100 per frame); --max-fps on Pynq-Z2 folds it as a parallel window and
    goes past that cap. Pinning parallel off brings the cap back."""
    b = get_board("pynq-z2")
    d = fold_max_fps(api.load(str(CNV)), b, 100.0)
    check_legal(d)
    swg0 = d.layers()[0]
    assert isinstance(swg0, SlidingWindow) and swg0.parallel
    assert estimate(d, b, 100.0)["cycles_per_frame"] < 8100
    pinned = fold_max_fps(api.load(str(CNV)), b, 100.0,
                          config={"layers": {swg0.name: {"parallel": False}}})
    check_legal(pinned)
    assert not pinned.layers()[0].parallel
    assert estimate(pinned, b, 100.0)["cycles_per_frame"] >= 8100
