"""Resource models against Yosys synth_xilinx on the calibration sweep (bnncc.calibrate).

Yosys results are cached by content hash under $BNNCC_CACHE/yosys, so after the first
run (about 10 minutes for the whole sweep on two cores) this takes seconds. The sweep's
table is written to docs/calibration.md by `python -m bnncc.calibrate`; this test checks
the file is current too."""
from __future__ import annotations

from pathlib import Path

import pytest

from bnncc import calibrate

DOC = Path(__file__).resolve().parent.parent / "docs" / "calibration.md"


@pytest.fixture(scope="module")
def rows():
    return calibrate.sweep("xc7", jobs=2, log=lambda *a: None)


def test_sweep_size(rows):
    assert len(rows) >= 30
    assert {r["spec"]["kind"] for r in rows} >= {"MVAU", "Thresholding", "SlidingWindow",
                                                  "MaxPool", "LabelSelect", "Fifo",
                                                  "WidthConverter", "SumPool", "AddStreams",
                                                  "Concat", "Duplicate"}
    assert any(r["spec"].get("par") for r in rows)     # parallel sliding windows


def test_lut_within_15_percent(rows):
    bad = [(r["point"], r["yosys"]["LUT"], r["model"]["LUT"]) for r in rows
           if abs(r["err"]["LUT"]) > 0.15]
    assert not bad, bad


def test_ff_within_15_percent(rows):
    bad = [(r["point"], r["yosys"]["FF"], r["model"]["FF"]) for r in rows
           if abs(r["err"]["FF"]) > 0.15]
    assert not bad, bad


def test_bram_exact(rows):
    bad = [(r["point"], r["yosys"]["BRAM18"], r["model"]["BRAM18"]) for r in rows
           if not r["bram_exact"]]
    assert not bad, bad


def test_dsp_exact(rows):
    bad = [(r["point"], r["yosys"]["DSP"], r["model"]["DSP"]) for r in rows if not r["dsp_exact"]]
    assert not bad, bad


def test_doc_is_current(rows):
    assert DOC.read_text() == calibrate.markdown(rows, "xc7")
