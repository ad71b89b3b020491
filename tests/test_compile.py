"""`bnncc compile`: deterministic output, an output directory that is complete or not there
(written beside DIR and swapped in), refusal to use a directory bnncc did not create, and
never deleting a file bnncc did not write (--force, --keep-others, the model inside DIR).
Nothing is written outside DIR. No hardware tools needed."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import fixture_path

TFC = fixture_path("brevitas/tfc_1w1a.onnx")
CNV = fixture_path("brevitas/cnv_1w1a.onnx")
RESNET = fixture_path("resnet/resnet_ts.onnx")                 # per-channel residual adds
QOP_RES = fixture_path("qop/qop_rescnn_pc_u8.onnx")            # QOperator: QLinearAdd, GAP


def tree(root: Path) -> dict[str, bytes]:
    """Relative path -> contents of every file under root (directories implied)."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def snapshot(root: Path) -> dict[str, tuple]:
    """Relative path -> (kind, size, mtime_ns) of everything under root."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        kind = "link" if p.is_symlink() else ("dir" if p.is_dir() else "file")
        out[p.relative_to(root).as_posix()] = (kind, st.st_size, st.st_mtime_ns)
    return out


@pytest.mark.parametrize("model", [TFC, CNV, RESNET, QOP_RES],
                         ids=["tfc_1w1a", "cnv_1w1a", "resnet_ts", "qop_rescnn_pc_u8"])
def test_compile_twice_is_byte_identical(cli, tmp_path, model):
    a, b = tmp_path / "a", tmp_path / "b"
    board = ("--board", "zcu104") if model == QOP_RES else ()   # 8-bit: too big for Pynq-Z2
    assert cli("compile", model, "-o", a, *board)[0] == 0
    assert cli("compile", model, "-o", b, *board)[0] == 0
    ta, tb = tree(a), tree(b)
    assert sorted(ta) == sorted(tb)
    for name in ta:
        assert ta[name] == tb[name], name
    for must in ("hls/top.cpp", "hls/tb.cpp", "hls/run_hls.tcl", "rtl/bnncc_top.v",
                 "report.json", "README.md"):
        assert must in ta, must
    # recompiling into its own output directory gives the same tree again
    assert cli("compile", model, "-o", a, *board)[0] == 0
    assert tree(a) == ta


def test_compile_output_has_no_absolute_paths(cli, tmp_path):
    out = tmp_path / "out"
    assert cli("compile", TFC, "-o", out)[0] == 0
    for name, data in tree(out).items():
        assert str(tmp_path).encode() not in data, name
        assert os.path.dirname(TFC).encode() not in data, name


def test_refuses_foreign_directory(cli, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    (out / "sub").mkdir()
    (out / "sub" / "data.bin").write_bytes(b"\x00\x01")
    before = tree(out)
    rc, stdout, stderr = cli("compile", TFC, "-o", out)
    assert rc == 2
    assert "--force" in stderr and str(out) in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert tree(out) == before                      # untouched
    # --force does not delete the user's files: it names them and refuses
    rc, _, stderr = cli("compile", TFC, "-o", out, "--force")
    assert rc == 2 and "notes.txt" in stderr and "sub/data.bin" in stderr
    assert "--keep-others" in stderr and len(stderr.strip().splitlines()) == 1
    assert tree(out) == before
    # ... unless told to keep them, which writes bnncc's files beside them
    rc, _, _ = cli("compile", TFC, "-o", out, "--force", "--keep-others")
    assert rc == 0
    after = tree(out)
    assert after["notes.txt"] == b"my notes" and after["sub/data.bin"] == b"\x00\x01"
    assert "hls/top.cpp" in after and ".bnncc" in after
    # recompiling keeps them again (they are still not bnncc's), and still refuses without
    assert cli("compile", TFC, "-o", out)[0] == 2
    assert cli("compile", TFC, "-o", out, "--keep-others")[0] == 0
    assert tree(out) == after


def test_force_into_empty_foreign_directory(cli, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert cli("compile", TFC, "-o", out)[0] == 2
    assert cli("compile", TFC, "-o", out, "--force")[0] == 0
    assert (out / "hls" / "top.cpp").is_file()


def test_never_when_the_model_is_inside(cli, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    model = out / "tfc.onnx"
    shutil.copy(TFC, model)
    data = model.read_bytes()
    for extra in ((), ("--force",), ("--force", "--keep-others")):
        rc, _, stderr = cli("compile", model, "-o", out, *extra)
        assert rc == 2 and "model" in stderr and len(stderr.strip().splitlines()) == 1
        assert sorted(tree(out)) == ["tfc.onnx"] and model.read_bytes() == data
    # the same when bnncc made the directory and the user moved the model into it
    out2 = tmp_path / "out2"
    assert cli("compile", TFC, "-o", out2)[0] == 0
    shutil.copy(TFC, out2 / "tfc.onnx")
    rc, _, stderr = cli("compile", out2 / "tfc.onnx", "-o", out2, "--keep-others")
    assert rc == 2 and "model" in stderr
    assert (out2 / "tfc.onnx").read_bytes() == data


def test_user_files_in_its_own_directory_are_never_deleted(cli, tmp_path):
    out = tmp_path / "out"
    assert cli("compile", TFC, "-o", out)[0] == 0
    (out / "my_notes.md").write_text("mine")
    (out / "hls" / "extra.tcl").write_text("mine too")
    before = tree(out)
    rc, _, stderr = cli("compile", TFC, "-o", out, "--force")
    assert rc == 2 and "my_notes.md" in stderr and "hls/extra.tcl" in stderr
    assert tree(out) == before
    # an edited bnncc file is the user's now: it is not replaced either
    (out / "my_notes.md").unlink()
    (out / "hls" / "extra.tcl").unlink()
    (out / "README.md").write_text("edited by me")
    rc, _, stderr = cli("compile", TFC, "-o", out, "--keep-others")
    assert rc == 2 and "README.md" in stderr
    assert (out / "README.md").read_text() == "edited by me"


def test_refuses_a_file(cli, tmp_path):
    f = tmp_path / "out"
    f.write_text("not a directory")
    rc, _, stderr = cli("compile", TFC, "-o", f)
    assert rc == 2 and "not a directory" in stderr
    assert f.read_text() == "not a directory"


def test_replaces_its_own_directory(cli, tmp_path):
    out = tmp_path / "out"
    assert cli("compile", TFC, "-o", out)[0] == 0
    first = tree(out)
    assert cli("compile", CNV, "-o", out)[0] == 0       # bnncc made it: no --force needed
    second = tree(out)
    assert second != first and ".bnncc" in second
    assert cli("compile", TFC, "-o", out)[0] == 0       # the CNV files are gone again
    assert tree(out) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]   # no temporaries left


def test_renderer_failure_leaves_no_directory(cli, tmp_path, monkeypatch):
    from bnncc.backends import rtl

    def broken(*a, **k):
        raise RuntimeError("renderer broke")
    monkeypatch.setattr(rtl, "render", broken)
    out = tmp_path / "out"
    rc, _, stderr = cli("compile", TFC, "-o", out)
    assert rc == 3 and "internal error" in stderr and "renderer broke" in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("when", ["first", "early", "last"])
def test_write_failure_midway_leaves_no_directory(cli, tmp_path, monkeypatch, when):
    """The disk fills after some files: exit 2, one line, and no partial DIR."""
    ref = tmp_path / "ref"
    assert cli("compile", TFC, "-o", ref)[0] == 0
    total = len(tree(ref))
    shutil.rmtree(ref)
    fail_after = {"first": 0, "early": 5, "last": total - 1}[when]
    real = Path.write_bytes
    written = []

    def flaky(self, data):
        if len(written) >= fail_after:
            raise OSError(28, "No space left on device")
        written.append(self)
        return real(self, data)
    monkeypatch.setattr(Path, "write_bytes", flaky)
    out = tmp_path / "out"
    rc, _, stderr = cli("compile", TFC, "-o", out)
    assert rc == 2
    assert "No space left" in stderr and len(stderr.strip().splitlines()) == 1
    assert len(written) == fail_after
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_write_failure_in_own_directory_leaves_the_old_one(cli, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert cli("compile", TFC, "-o", out)[0] == 0
    before = tree(out)
    real = Path.write_bytes
    count = [0]

    def flaky(self, data):
        count[0] += 1
        if count[0] > 10:
            raise OSError(28, "No space left on device")
        return real(self, data)
    monkeypatch.setattr(Path, "write_bytes", flaky)
    rc, _, _ = cli("compile", CNV, "-o", out)
    assert rc == 2
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_refuses_to_write_outside(cli, tmp_path, monkeypatch):
    """A file name that would escape DIR is refused before anything lands outside it."""
    from bnncc import project
    real = project.render_project

    def escaping(*a, **k):
        files = dict(real(*a, **k))
        files["../escaped.txt"] = b"should not exist"
        return dict(sorted(files.items()))
    monkeypatch.setattr(project, "render_project", escaping)
    out = tmp_path / "out"
    rc, _, stderr = cli("compile", TFC, "-o", out)
    assert rc == 2 and "outside" in stderr
    assert not (tmp_path / "escaped.txt").exists()
    assert not out.exists()


def test_nothing_written_outside_dir(tmp_path):
    """A real `bnncc compile` process, with HOME, TMPDIR, the cache and the working
    directory all inside tmp_path: afterwards everything new is under DIR, and the model's
    own folder is unchanged."""
    models = tmp_path / "models"
    models.mkdir()
    model = models / "tfc.onnx"
    shutil.copy(TFC, model)
    for d in ("home", "tmp", "cwd", "cache"):
        (tmp_path / d).mkdir()
    env = dict(os.environ, HOME=str(tmp_path / "home"), TMPDIR=str(tmp_path / "tmp"),
               BNNCC_CACHE=str(tmp_path / "cache"))
    for var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "MPLCONFIGDIR"):
        env.pop(var, None)
    before = snapshot(tmp_path)
    r = subprocess.run([sys.executable, "-m", "bnncc", "compile", str(model), "-o",
                        str(tmp_path / "cwd" / "out")], cwd=tmp_path / "cwd", env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    after = snapshot(tmp_path)
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in before if k in after and before[k] != after[k]
                     and before[k][0] == "file")
    outside = [p for p in new if not (p == "cwd/out" or p.startswith("cwd/out/"))]
    assert outside == [], outside
    assert changed == [], changed
    assert "cwd/out/hls/top.cpp" in new
