"""The calibration machinery without Yosys: points build the layers they name, and a
refit reaches every model at once (bnncc.calibrate, bnncc.cal_points, bnncc.layers.cost)."""
from __future__ import annotations

import json

import numpy as np

from bnncc import cal_points, calibrate
from bnncc.layers import cost
from bnncc.layers.streams import AddStreams


def test_written_coefficients_reach_the_models(tmp_path, monkeypatch):
    """write_coefficients (what `calibrate --fit` calls) updates the coefficient lists the
    layer modules hold, and the cached FIFO figures, without a re-import."""
    path = tmp_path / "coefficients.json"
    path.write_text(cost.COEFFICIENTS.read_text())
    monkeypatch.setattr(cost, "COEFFICIENTS", path)
    before = cost.fifo_resources(64, 300)
    spec = next(p for p in cal_points.TRAIN if p["kind"] == "AddStreams")
    add = cal_points.build_layer(spec, "a")
    add_before = add.resources()["LUT"]
    try:
        c = json.loads(path.read_text())
        cost.write_coefficients({"FIFO": {"LUT": [2 * v for v in c["FIFO"]["LUT"]],
                                          "FF": [2 * v for v in c["FIFO"]["FF"]]},
                                 "ADD": {"LUT": [3 * v for v in c["ADD"]["LUT"]],
                                         "FF": c["ADD"]["FF"]}})
        after = cost.fifo_resources(64, 300)
        assert after["FF"] > before["FF"] and after["LUT"] > before["LUT"]
        assert add.resources()["LUT"] > add_before
    finally:
        path.write_text(json.dumps(c, indent=1, sort_keys=True) + "\n")
        cost.reload_coefficients()
    assert cost.fifo_resources(64, 300) == before
    assert add.resources()["LUT"] == add_before


def test_per_channel_add_points():
    """Per-channel AddStreams points (tuple factors) build the per-channel layer, with an
    output type that holds every channel's exact sum, and render as RTL."""
    pts = [p for p in cal_points.TRAIN + cal_points.heldout()
           if p["kind"] == "AddStreams" and isinstance(p["ka"], (tuple, list))]
    assert len(pts) >= 4 and any(p in cal_points.heldout() for p in pts)
    rng = np.random.default_rng(0)
    for p in pts:
        layer = cal_points.build_layer(p, "m")
        assert isinstance(layer, AddStreams) and layer.per_channel
        a = rng.integers(layer.idt.min, layer.idt.max + 1, (200, p["c"]))
        b = rng.integers(layer.idt_b.min, layer.idt_b.max + 1, (200, p["c"]))
        exact = np.asarray(p["ka"]) * a + np.asarray(p["kb"]) * b
        assert layer.odt.min <= exact.min() and exact.max() <= layer.odt.max
        assert np.array_equal(layer.execute(a, b), exact)
        files, top, _ = calibrate.render_point(p, calibrate.point_name(p))
        assert f"module {top}" in files[f"{top}.v"]
        assert "per-channel" in cal_points.point_label(p)
