"""The Python session of the README with C simulation, the whole verification ladder
(onnx, golden, csim, rtlsim) on trained MNIST models and their labels, a deliberately
broken design caught and named, and progress lines of a long CNV run in a log."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bnncc import api
from bnncc.testing.designs import FIXTURES, flip_threshold

ROOT = Path(__file__).resolve().parents[1]
TFC = FIXTURES / "zoo" / "TFC_1W1A.onnx"


def _session_code() -> str:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_api import readme_session
    return readme_session()


def _cli(capsys, *argv):
    from bnncc.cli import main
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_readme_session_csim_equals_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    refs = np.load(FIXTURES / "zoo" / "TFC_1W1A.refs.npz")
    np.save("images.npy", refs["inputs"][:16])
    np.save("labels.npy", refs["labels"][:16])
    Path("tfc.onnx").write_bytes(TFC.read_bytes())
    ns: dict = {}
    exec(compile(_session_code(), "README.md", "exec"), ns)   # as written: csim
    capsys.readouterr()
    rep = ns["rep"]
    assert rep["exact"] and rep["levels"] == ["onnx", "golden", "csim"]
    assert rep["accuracy"]["csim"] == rep["accuracy"]["onnx"] == \
        float(np.mean(np.argmax(refs["outputs"][:16], 1) == refs["labels"][:16]))
    rc, _, err = _cli(capsys, "run", "tfc.onnx", "-i", "images.npy", "-o", "y.npy",
                      "--engine", "csim")
    assert rc == 0, err
    np.save("api_y.npy", ns["y"])
    assert Path("y.npy").read_bytes() == Path("api_y.npy").read_bytes()
    rc, out, err = _cli(capsys, "cosim", "tfc.onnx", "-i", "images.npy", "--labels",
                        "labels.npy", "--levels", "onnx,golden,csim", "--json")
    assert rc == 0, err
    cli_rep = json.loads(out)
    for k in ("seconds", "fps"):            # wall-clock figures: present, not compared
        assert cli_rep.pop(k).keys() == rep.pop(k).keys()
    assert cli_rep == rep


@pytest.mark.parametrize("name", ["TFC_1W1A", "TFC_2W2A"])
def test_full_ladder_on_trained_mnist(name, tmp_path, capsys):
    """Every level, with backpressure in rtlsim, on 24 of the stored test images: each
    level's accuracy is the trained model's and top-1 agrees frame for frame."""
    refs = np.load(FIXTURES / "zoo" / f"{name}.refs.npz")
    n = 24
    np.save(tmp_path / "x.npy", refs["inputs"][:n])
    np.save(tmp_path / "l.npy", refs["labels"][:n])
    np.save(tmp_path / "e.npy", refs["outputs"][:n])
    rc, out, err = _cli(capsys, "cosim", FIXTURES / "zoo" / f"{name}.onnx", "-i",
                        tmp_path / "x.npy", "--levels", "onnx,golden,csim,rtlsim",
                        "--labels", tmp_path / "l.npy", "--expect", tmp_path / "e.npy",
                        "--backpressure", "0.3", "--json")
    assert rc == 0, err
    rep = json.loads(out)
    trained = float(np.mean(np.argmax(refs["outputs"][:n], 1) == refs["labels"][:n]))
    assert rep["exact"] is True
    assert rep["accuracy"] == {lv: trained for lv in ("onnx", "golden", "csim", "rtlsim",
                                                       "expect")}
    assert rep["agreement"] == {lv: 1.0 for lv in ("onnx", "golden", "csim", "rtlsim")}
    assert rep["max_abs_error"]["rtlsim"] == rep["max_abs_error"]["golden"]
    assert rep["cycles_per_frame_measured"] >= rep["cycles_per_frame_estimated"]
    assert set(rep["fps"]) == {"onnx", "golden", "csim", "rtlsim"}


@pytest.mark.parametrize("levels", ["golden,csim", "onnx,golden,csim"])
def test_broken_design_fails_naming_the_layer(levels, tmp_path, monkeypatch, capsys):
    """One threshold of mvau_1 moved in the hardware that csim builds: cosim exits 1 and
    names mvau_1 (not the last layer, where the difference is seen)."""
    refs = np.load(FIXTURES / "zoo" / "TFC_1W1A.refs.npz")
    np.save(tmp_path / "x.npy", refs["inputs"][:20])
    fold = api.Model.fold

    def broken_fold(self, *a, **kw):
        acc = fold(self, *a, **kw)
        acc.hardware = flip_threshold(acc.design, "mvau_1", channel=3)
        return acc
    monkeypatch.setattr(api.Model, "fold", broken_fold)
    rc, out, err = _cli(capsys, "cosim", TFC, "-i", tmp_path / "x.npy", "--levels", levels)
    assert rc == 1, err
    assert "MISMATCH" in out
    said = [l for l in err.splitlines() if not re.match(r"bnncc: [^:]+: .*\d+ s$", l)]
    assert len(said) == 1, err            # besides progress lines: one line, the verdict
    assert "at layer mvau_1," in said[0] and "csim differs from golden" in said[0]
    rc, out, err = _cli(capsys, "cosim", TFC, "-i", tmp_path / "x.npy", "--levels", levels,
                        "--json")
    rep = json.loads(out)
    assert rc == 1 and rep["exact"] is False and rep["first_mismatch"]["layer"] == "mvau_1"
    monkeypatch.setattr(api.Model, "fold", fold)           # the intact design passes
    rc, _, err = _cli(capsys, "cosim", TFC, "-i", tmp_path / "x.npy", "--levels", levels)
    assert rc == 0, err


def test_cnv_rtlsim_progress_lines_in_a_log(tmp_path):
    """stderr not a terminal: a CNV cosim with RTL simulation (Verilator build included
    when not cached) prints plain progress lines, and no bar."""
    refs = np.load(FIXTURES / "brevitas" / "cnv_1w1a.refs.npz")
    np.save(tmp_path / "x.npy", refs["inputs"][:2])
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "bnncc", "cosim",
                          str(FIXTURES / "brevitas" / "cnv_1w1a.onnx"), "-i",
                          str(tmp_path / "x.npy"), "--levels", "golden,rtlsim"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                         env={k: v for k, v in os.environ.items()
                              if k != "BNNCC_PROGRESS_INTERVAL"})   # the default interval
    stamps, lines = [], []
    for line in p.stderr:
        stamps.append(time.monotonic() - t0)
        lines.append(line)
    out = p.stdout.read()
    rc = p.wait(timeout=1800)
    end = time.monotonic() - t0
    assert rc == 0, "".join(lines)
    assert "bit-exact" in out
    assert all(l.startswith("bnncc: ") and "\r" not in l for l in lines), lines
    # the gaps between lines are a wall-clock figure: bench/progress_gaps.py measures them
    # (goal: at most 10 s); a test on a shared machine only checks that lines come
    assert lines or end <= 10
