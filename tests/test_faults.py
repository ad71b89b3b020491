"""Faults from outside: a compile killed at several points, Ctrl-C during start-up, a
closed output pipe, a full disk. Real `python -m bnncc` processes; no privileges needed
(the full disk is /dev/full or RLIMIT_FSIZE)."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import fixture_path

TFC = fixture_path("brevitas/tfc_1w1a.onnx")
CNV = fixture_path("brevitas/cnv_1w1a.onnx")
BNNCC = [sys.executable, "-m", "bnncc"]


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _loaded(pid: int, lib: str) -> bool:
    try:
        return lib in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _wait(proc, cond, timeout=120.0) -> bool:
    """Poll until cond() holds (True) or the process ends first (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        if cond():
            return True
        time.sleep(0.0005)
    raise AssertionError("timed out")


def _temps(parent: Path, name: str) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.startswith(f".{name}.bnncc-")]


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """The old directory (a TFC compile) and the complete new one (a CNV compile)."""
    from bnncc.cli import main
    root = tmp_path_factory.mktemp("ref")
    assert main(["compile", TFC, "-o", str(root / "old")]) == 0
    assert main(["compile", CNV, "-o", str(root / "new")]) == 0
    return root / "old", tree(root / "old"), tree(root / "new")


POINTS = {
    # after onnx's C extension is loaded: importing / loading / lowering, nothing written
    "loading": lambda proc, parent: _loaded(proc.pid, "onnx_cpp2py_export"),
    # the temporary sibling exists: files are being written
    "writing": lambda proc, parent: bool(_temps(parent, "out")),
    # the temporary sibling holds the marker and some files
    "late": lambda proc, parent: any(len(list(t.rglob("*"))) >= 20 for t in _temps(parent, "out")),
}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
@pytest.mark.parametrize("point", list(POINTS))
def test_killed_compile_leaves_old_or_complete_new(trees, tmp_path, sig, point):
    import shutil
    old_dir, old, new = trees
    out = tmp_path / "out"
    shutil.copytree(old_dir, out)
    proc = subprocess.Popen([*BNNCC, "compile", CNV, "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    hit = _wait(proc, lambda: POINTS[point](proc, tmp_path))
    if hit:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if point in ("loading", "writing"):
        assert hit, f"the compile ended before point '{point}'"
    if hit and proc.returncode != 0:   # the signal landed before the compile finished
        want = 143 if sig == signal.SIGTERM else -signal.SIGKILL
        assert proc.returncode == want, err
        if sig == signal.SIGTERM:
            assert err.strip().splitlines() == ["bnncc: terminated"], err
            assert "Traceback" not in err
    got = tree(out)
    assert got == old or got == new, "partial output directory"
    if sig == signal.SIGTERM:
        assert _temps(tmp_path, "out") == []
        return
    # whatever a SIGKILL left beside DIR, the next compile (a cheap one) cleans it up
    r = subprocess.run([*BNNCC, "compile", TFC, "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert tree(out) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("lib", ["_multiarray_umath", "onnx_cpp2py_export"])
def test_ctrl_c_during_import_is_130_and_one_line(lib):
    proc = subprocess.Popen([*BNNCC, "inspect", TFC], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert _wait(proc, lambda: _loaded(proc.pid, lib)), "ended before the import"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["bnncc: interrupted"], err
    assert out == ""


def test_ctrl_c_during_compile_removes_the_temporary(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([*BNNCC, "compile", CNV, "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    hit = _wait(proc, lambda: _loaded(proc.pid, "onnx_cpp2py_export"))
    assert hit
    time.sleep(0.3)   # into loading / lowering
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode != 0:
        assert proc.returncode == 130 and err.strip().splitlines() == ["bnncc: interrupted"]
        assert list(tmp_path.iterdir()) == []
    else:
        assert (out / ".bnncc").is_file()


def test_broken_pipe_is_one_line():
    r, w = os.pipe()
    os.close(r)   # the reader is gone before bnncc writes a byte (`| head -0`)
    p = subprocess.run([*BNNCC, "inspect", TFC], stdout=w, stderr=subprocess.PIPE, text=True)
    os.close(w)
    assert p.returncode == 141
    assert len(p.stderr.strip().splitlines()) == 1 and "pipe" in p.stderr
    assert "Traceback" not in p.stderr


def test_head_reads_one_line_then_closes(tmp_path):
    p = subprocess.Popen([*BNNCC, "estimate", CNV], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    first = p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    assert first
    assert p.returncode in (0, 141), err   # 0 if it had written everything already
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1


def test_json_to_a_full_disk_is_one_line():
    with open("/dev/full", "w") as full:
        p = subprocess.run([*BNNCC, "estimate", TFC, "--json"], stdout=full,
                           stderr=subprocess.PIPE, text=True)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "bnncc: error: standard output: cannot write: No space left on device"]


def _small_files(limit):
    def pre():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # get EFBIG instead of dying
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


def test_compile_onto_a_full_disk_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    p = subprocess.run([*BNNCC, "compile", CNV, "-o", str(out)], capture_output=True, text=True,
                       preexec_fn=_small_files(16 * 1024))
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and "File too large" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_run_output_onto_a_full_disk(tmp_path):
    x = np.random.default_rng(0).uniform(-1, 1, (300, 1, 28, 28)).astype(np.float32)
    np.save(tmp_path / "in.npy", x)
    p = subprocess.run([*BNNCC, "run", TFC, "-i", str(tmp_path / "in.npy"), "-o",
                        str(tmp_path / "out.npy")], capture_output=True, text=True,
                       preexec_fn=_small_files(4096))
    assert p.returncode == 2, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "out.npy" in p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["in.npy"]


def test_internal_error_is_exit_3_and_debug_shows_the_traceback(tmp_path):
    """An error bnncc did not foresee, planted in the loader: one line asking for a bug
    report, exit 3; the traceback only with --debug or BNNCC_DEBUG=1."""
    fake = tmp_path / "fake"
    fake.mkdir()
    code = ("import sys\n"
            "import bnncc.frontend.load as load\n"
            "def boom(*a, **k):\n    raise ZeroDivisionError('planted')\n"
            "load.validate = boom\n"
            "from bnncc.entry import run\nrun()\n")
    script = fake / "run.py"
    script.write_text(code)
    p = subprocess.run([sys.executable, str(script), "estimate", TFC], capture_output=True,
                       text=True)
    assert p.returncode == 3
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error" in lines[0] and "planted" in lines[0]
    assert "--debug" in lines[0] and "Traceback" not in p.stderr
    for extra, env in ((["--debug"], {}), ([], {"BNNCC_DEBUG": "1"})):
        p = subprocess.run([sys.executable, str(script), "estimate", TFC, *extra],
                           capture_output=True, text=True, env={**os.environ, **env})
        assert p.returncode == 3 and "Traceback" in p.stderr and "planted" in p.stderr
