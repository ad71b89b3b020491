"""The Python API is the CLI's pipeline: the README's session gives byte for byte what
the commands give; the verification ladder from the user's side (the original model, the
labels, the user's expected outputs); progress output; inspect / boards --json; the cache
commands; the per-layer plot. No hardware tools needed (C / RTL simulation of the same
session: hw_tests/test_api_hw.py)."""
from __future__ import annotations

import io
import json
import logging
import re
import time
from pathlib import Path

import numpy as np
import pytest

import bnncc
from bnncc import progress
from conftest import fixture_path

TFC = fixture_path("zoo/TFC_1W1A.onnx")
ZOO = ["TFC_1W1A", "TFC_1W2A", "TFC_2W2A"]
README = Path(__file__).resolve().parents[1] / "README.md"


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def readme_session() -> str:
    """The Python session in the README (the ```python block after 'From Python')."""
    text = README.read_text()
    m = re.search(r"## From Python.*?```python\n(.*?)```", text, re.S)
    assert m, "README has no Python session"
    return m.group(1)


def test_readme_session_equals_cli(cli, tmp_path, monkeypatch, capsys):
    """Run the README's session as written (golden engine: C simulation is in
    hw_tests), then the CLI with the same options: same estimate, same files."""
    monkeypatch.chdir(tmp_path)
    refs = np.load(fixture_path("zoo/TFC_1W1A.refs.npz"))
    np.save("images.npy", refs["inputs"][:8])
    np.save("labels.npy", refs["labels"][:8])
    Path("tfc.onnx").write_bytes(Path(TFC).read_bytes())
    ns: dict = {}
    code = readme_session().replace('engine="csim"', 'engine="golden"')
    code = code.replace(', "csim"]', "]")
    exec(compile(code, "README.md", "exec"), ns)
    printed = capsys.readouterr().out
    assert "frames/s" in printed and "{'onnx': 1.0, 'golden': 1.0} True" in printed
    acc = ns["acc"]
    rc, out, err = cli("estimate", "tfc.onnx", "--board", "pynq-z2", "--json")
    assert rc == 0, err
    assert out == json.dumps(acc.estimate(), sort_keys=True) + "\n"
    assert cli("compile", "tfc.onnx", "--board", "pynq-z2", "-o", "cli_out")[0] == 0
    assert tree(Path("cli_out")) == tree(Path(ns["out"]))
    rc, _, err = cli("run", "tfc.onnx", "-i", "images.npy", "-o", "y.npy")
    assert rc == 0, err
    np.save("api_y.npy", acc.predict(np.load("images.npy")))
    assert Path("y.npy").read_bytes() == Path("api_y.npy").read_bytes()


@pytest.mark.parametrize("fold", [dict(board="zcu104", fps=20000.0),
                                  dict(board="pynq-z2", budget={"LUT": 0.3}, clock_mhz=150.0)],
                         ids=["fps", "budget"])
def test_fold_options_match_cli(cli, fold):
    acc = bnncc.load(TFC).fold(**fold)
    args = ["estimate", TFC, "--board", fold["board"], "--json"]
    if "fps" in fold:
        args += ["--fps", fold["fps"]]
    if "budget" in fold:
        args += ["--lut-budget", fold["budget"]["LUT"], "--clock-mhz", fold["clock_mhz"]]
    rc, out, err = cli(*args)
    assert rc == 0, err
    assert out == json.dumps(acc.estimate(), sort_keys=True) + "\n"


def test_model_folds_again_unchanged():
    m = bnncc.load(TFC)
    a = m.fold(board="pynq-z2").estimate()
    m.fold(board="pynq-z2", fps=1000.0)
    assert m.fold(board="pynq-z2").estimate() == a
    assert all(getattr(l, "pe", 1) == 1 for l in m.design.layers())   # m stays unfolded


@pytest.mark.parametrize("name", ZOO)
def test_ladder_accuracy_equals_the_trained_model(name, cli, tmp_path):
    """onnx and golden on every stored MNIST image with the labels and the stored
    reference outputs: each level's accuracy is the trained model's, and each agrees
    with the reference on every image (so also with each other, image for image)."""
    refs = np.load(fixture_path(f"zoo/{name}.refs.npz"))
    x, labels, ref = refs["inputs"], refs["labels"], refs["outputs"]
    for k, v in (("x", x), ("l", labels), ("e", ref)):
        np.save(tmp_path / f"{k}.npy", v)
    model = fixture_path(f"zoo/{name}.onnx")
    rc, out, err = cli("cosim", model, "-i", tmp_path / "x.npy", "--levels", "onnx,golden",
                       "--labels", tmp_path / "l.npy", "--expect", tmp_path / "e.npy", "--json")
    assert rc == 0, err
    rep = json.loads(out)
    trained = float(np.mean(np.argmax(ref, 1) == labels))
    assert rep["frames"] == len(x) == 100 and 0.8 < trained < 1.0
    assert rep["accuracy"] == {"onnx": trained, "golden": trained, "expect": trained}
    assert rep["reference"] == "expect"
    assert rep["agreement"] == {"onnx": 1.0, "golden": 1.0}
    assert rep["max_abs_error"]["golden"] <= 1e-5 * np.abs(ref).max()
    assert rep["seconds"].keys() == rep["fps"].keys() == {"onnx", "golden"}
    # frame for frame: the API's predictions are the trained model's
    acc = bnncc.load(model).fold()
    assert np.array_equal(np.argmax(acc.predict(x), 1), np.argmax(ref, 1))


def test_expect_that_disagrees_fails_with_exit_1(cli, tmp_path):
    refs = np.load(fixture_path("zoo/TFC_1W1A.refs.npz"))
    np.save(tmp_path / "x.npy", refs["inputs"][:20])
    wrong = refs["outputs"][:20].copy()
    wrong[3] = np.roll(wrong[3], 1)             # one frame's top-1 moves
    np.save(tmp_path / "e.npy", wrong)
    rc, out, err = cli("cosim", TFC, "-i", tmp_path / "x.npy", "--levels", "golden",
                       "--expect", tmp_path / "e.npy")
    assert rc == 1
    assert "agreement with expect" in out and "0.9500" in out
    assert err.count("\n") == 1 and "top-1 of golden" in err


def test_summary_table_lists_every_level(cli, tmp_path):
    refs = np.load(fixture_path("zoo/TFC_1W1A.refs.npz"))
    np.save(tmp_path / "x.npy", refs["inputs"][:10])
    np.save(tmp_path / "l.npy", refs["labels"][:10])
    rc, out, err = cli("cosim", TFC, "-i", tmp_path / "x.npy", "--levels", "onnx,golden",
                       "--labels", tmp_path / "l.npy")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("| level ") and "top-1 accuracy" in lines[0]
    assert lines[2].startswith("| onnx ") and lines[3].startswith("| golden ")
    assert "top-1 agrees with onnx on every frame" in out


@pytest.mark.parametrize("args,msg", [
    (["--levels", "golden,fpga"], "levels must be"),
    (["--levels", "golden,golden"], "levels must be"),
    (["--levels", "golden"], "two or more levels"),
    (["--labels", "LABELS"], "labels must be one number per frame"),
    (["--expect", "EXPECT"], "expected outputs"),
    (["--backpressure", "1.5"], "backpressure"),
])
def test_cosim_bad_options_exit_2(cli, tmp_path, args, msg):
    refs = np.load(fixture_path("zoo/TFC_1W1A.refs.npz"))
    np.save(tmp_path / "x.npy", refs["inputs"][:4])
    np.save(tmp_path / "l.npy", refs["labels"][:3])
    np.save(tmp_path / "e.npy", refs["outputs"][:4, :5])
    args = [str(tmp_path / "l.npy") if a == "LABELS" else
            str(tmp_path / "e.npy") if a == "EXPECT" else a for a in args]
    rc, _, err = cli("cosim", TFC, "-i", tmp_path / "x.npy", *args)
    assert rc == 2 and err.count("\n") == 1 and msg in err, err


def test_inspect_and_boards_json(cli):
    rc, out, _ = cli("inspect", TFC, "--json")
    assert rc == 0
    d = json.loads(out)
    design = bnncc.load(TFC).design
    assert [l["name"] for l in d["layers"]] == [l.name for l in design.layers()]
    assert d["input"]["shape"] == [1, 1, 28, 28] and d["layers"][0]["mode"] == "xnor-popcount"
    rc, out, _ = cli("boards", "--json")
    boards = json.loads(out)
    assert rc == 0 and "pynq-z2" in [b["key"] for b in boards]
    assert all(set(b["capacity"]) == {"LUT", "FF", "BRAM18", "URAM", "DSP"} for b in boards)


def test_help_names_every_option(cli):
    """Every command and option has a help text (argparse prints none for a bare one)."""
    from bnncc.cli import parser
    p = parser()
    sub = next(a for a in p._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sp in sub.choices.items():
        for act in sp._actions:
            assert act.help, f"{name} {act.option_strings or act.dest} has no help"
    for act in sub._choices_actions:
        assert act.help, act.dest


# ------------------------------------------------------------------------------ progress
def test_log_progress_lines_at_least_every_interval(caplog):
    r = progress.LogReporter(interval=0.2)
    caplog.set_level(logging.INFO, logger="bnncc")
    progress._active.append(r)
    try:
        with progress.task("slow step", 10) as tick:
            for i in range(10):
                time.sleep(0.1)
                tick(i + 1)
        with progress.task("silent step"):       # reports nothing itself: heartbeat
            guard = time.monotonic() + 120       # a hang guard, not a timing check
            while sum(rec.getMessage().startswith("silent step: ")
                      for rec in caplog.records) < 2 and time.monotonic() < guard:
                time.sleep(0.05)
    finally:
        progress._active.remove(r)
        r.close()
    msgs = [rec.getMessage() for rec in caplog.records]
    assert any(m.startswith("slow step: ") and "/10 frames" in m for m in msgs), msgs
    assert "slow step: done, 10/10 frames" in " ".join(msgs)
    assert sum(m.startswith("silent step: ") for m in msgs) >= 2, msgs


def test_quick_steps_print_nothing(caplog):
    r = progress.LogReporter(interval=5.0)
    caplog.set_level(logging.INFO, logger="bnncc")
    progress._active.append(r)
    try:
        with progress.task("quick", 3) as tick:
            tick(3)
    finally:
        progress._active.remove(r)
        r.close()
    assert not caplog.records


def test_bar_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    s = Tty()
    with progress.reporting("bar", s):
        with progress.task("simulating", 10) as tick:
            tick(5)
    text = s.getvalue()
    assert "\r" in text and "10/10 frames" in text and "simulating" in text


def test_quiet_and_verbose(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "INTERVAL", 0.0)
    refs = np.load(fixture_path("zoo/TFC_1W1A.refs.npz"))
    np.save(tmp_path / "x.npy", refs["inputs"][:4])
    rc, _, err = cli("-q", "run", TFC, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert rc == 0 and err == ""
    rc, _, err = cli("run", "-v", TFC, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert rc == 0 and "golden model: started" in err and "folding search" in err


# -------------------------------------------------------------------------------- cache
def test_cache_location_and_commands(cli, tmp_path, monkeypatch):
    from bnncc.resources import cache_dir, cache_root
    monkeypatch.delenv("BNNCC_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "bnncc"
    monkeypatch.setenv("BNNCC_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    (cache_dir("csim") / "abc").mkdir()
    (cache_dir("csim") / "abc" / "tb").write_bytes(b"x" * 1000)
    (tmp_path / "mine" / "not-ours.txt").write_text("keep me")
    rc, out, _ = cli("cache", "info", "--json")
    info = json.loads(out)
    assert rc == 0 and info["path"] == str(tmp_path / "mine") and info["bytes"] == 1000
    assert info["parts"]["csim"] == {"entries": 1, "bytes": 1000}
    rc, out, _ = cli("cache")
    assert rc == 0 and str(tmp_path / "mine") in out and "csim" in out
    rc, out, _ = cli("cache", "clean")
    assert rc == 0 and not (tmp_path / "mine" / "csim").exists()
    assert (tmp_path / "mine" / "not-ours.txt").read_text() == "keep me"


# --------------------------------------------------------------------------------- plot
def test_plot_renders_readable_and_unclipped():
    """Render the per-layer plot of CNV (29 blocks) and look at the pixels: a PNG of
    the expected size, text in the title band, nothing drawn into the outer margin
    (a clipped title or label would touch it), and the same bytes twice."""
    from PIL import Image

    from bnncc.plot import plot_png
    acc = bnncc.load(fixture_path("brevitas/cnv_1w1a.onnx")).fold()
    est = acc.estimate()
    png = plot_png(est)
    assert png == plot_png(est)
    img = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    h, w = img.shape
    assert w >= 0.42 * len(est["layers"]) * 100 and h >= 600
    title = img[: int(0.04 * h)]
    assert (title < 128).sum() > 200                  # dark text pixels: the title
    cols = np.where((title < 128).any(0))[0]
    assert cols.min() > 0.1 * w and cols.max() < 0.9 * w   # centred, not clipped
    assert (img[:3] > 250).all() and (img[-3:] > 250).all()
    assert (img[:, :3] > 250).all() and (img[:, -3:] > 250).all()
