"""The logic-depth model (bnncc.timing) against Yosys: `synth_xilinx`, then the flip-flops,
shift registers (SRL) and block RAMs deleted (paths start and end at them), then `ltp -noff`, the longest
path in cells (LUTs, muxes, carry cells). Checked on MVAUs of growing SIMD: the depth the
model predicts is what Yosys finds (within one level), and it does not grow with SIMD."""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from bnncc import timing
from bnncc.backends import rtl
from bnncc.datatypes import DataType
from bnncc.layers import MVAU
from bnncc.sim.tools import yosys_cmd

BIP = DataType.bipolar()


def yosys_levels(layer, family: str, tmp_path) -> int:
    """Cells on the longest register-to-register path of one layer's module."""
    env = rtl._env()
    files = {"bnncc_fifo.v": env.get_template("fifo.v.j2").render()}
    mod = "bnncc_t"
    files[f"{mod}.v"] = rtl.render_layer(layer, mod, files)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    script = (f"read_verilog bnncc_fifo.v {mod}.v; synth_xilinx -flatten -noiopad -noclkbuf "
              f"-family {family} -top {mod}; delete t:FD* t:SRL* t:RAMB* t:$_DFF*; tee -o ltp.txt ltp -noff")
    r = subprocess.run([*yosys_cmd(), "-q", "-p", script], cwd=tmp_path, capture_output=True,
                       text=True, timeout=1800)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    out = (tmp_path / "ltp.txt").read_text()
    assert "Longest topological path" in out, out[-2000:]
    return len(re.findall(r"\(via ", out))


def binary_mvau(mh, mw, pe, simd, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.choice([-1, 1], (mh, mw)).astype(np.int64)
    t = np.sort(rng.integers(0, mw, (mh, 1)), 1).astype(np.int64)
    return MVAU("mv", BIP, BIP, (mw,), (mh,), weights=w, wdt=BIP, binary=True,
                accdt=DataType.for_range(0, mw), thresholds=t, tdt=DataType.int(10),
                pe=pe, simd=simd)


@pytest.mark.parametrize("family", ["xc7", "xcup"])
def test_mvau_depth_matches_yosys_and_does_not_grow_with_simd(family, tmp_path):
    levels = {}
    for simd in (16, 256):
        l = binary_mvau(8, 256, 2, simd)
        (tmp_path / str(simd)).mkdir()
        got = yosys_levels(l, family, tmp_path / str(simd))
        model = max(timing.mvau(l, family).values())
        assert abs(got - model) <= 1, (simd, got, timing.mvau(l, family))
        levels[simd] = got
    assert levels[256] <= levels[16] + 1, levels


def test_integer_mvau_depth_matches_yosys(tmp_path):
    rng = np.random.default_rng(1)
    idt, wdt = DataType.int(2), DataType.int(2)
    w = rng.integers(-2, 2, (4, 64)).astype(np.int64)
    t = np.sort(rng.integers(-40, 40, (4, 3)), 1).astype(np.int64)
    l = MVAU("mv", idt, DataType.int(2), (64,), (4,), weights=w, wdt=wdt, binary=False,
             accdt=DataType.for_range(-256, 256), thresholds=t, tdt=DataType.int(10), pe=2,
             simd=32)
    got = yosys_levels(l, "xc7", tmp_path)
    model = max(timing.mvau(l, "xc7").values())
    assert abs(got - model) <= 1, (got, timing.mvau(l, "xc7"))


def test_budget_rule():
    assert timing.budget("xc7", 200.0) == 5          # ZC706
    assert timing.budget("xcup", 200.0) == 8         # ZCU104
    assert timing.budget("xcup", 300.0) == 5         # Alveo U250
    assert timing.budget("xc7", 100.0) == 10         # Pynq-Z2


@pytest.mark.parametrize("neg", [False, True])
def test_thresholding_depth_matches_yosys_and_does_not_grow_with_pe(neg, tmp_path):
    from bnncc.layers import Thresholding
    levels = {}
    for pe in (2, 32):
        rng = np.random.default_rng(pe)
        c = 64
        t = np.sort(rng.integers(-60, 60, (c, 3)), 1).astype(np.int64)
        negate = (rng.random(c) < 0.5) if neg else None
        l = Thresholding("th", DataType.int(6), DataType.uint(2), (c,), (c,), thresholds=t,
                         tdt=DataType.int(8), negate=negate, pe=pe)
        (tmp_path / str(pe)).mkdir()
        got = yosys_levels(l, "xc7", tmp_path / str(pe))
        model = max(timing.thresholding(l, "xc7").values())
        assert abs(got - model) <= 1, (pe, got, timing.thresholding(l, "xc7"))
        levels[pe] = got
    assert levels[32] <= levels[2] + 1, levels


@pytest.mark.parametrize("k", [1, 2])
def test_labelselect_depth_matches_yosys_and_does_not_grow_with_pe(k, tmp_path):
    from bnncc.layers import LabelSelect
    levels = {}
    for pe in (2, 16):
        l = LabelSelect("ls", DataType.int(6), DataType.uint(6), (64,), (k,), k=k, pe=pe)
        (tmp_path / str(pe)).mkdir()
        got = yosys_levels(l, "xc7", tmp_path / str(pe))
        model = max(timing.layer_depth(l, "xc7").values())
        assert abs(got - model) <= 1, (pe, got, timing.layer_depth(l, "xc7"))
        levels[pe] = got
    assert levels[16] <= levels[2] + 1, levels
