"""Bad or unsupported models: exit 2, one line naming the file (and node/op), no traceback,
no output written."""
import subprocess
import sys

import numpy as np
import pytest

from bad_models import CASES, good_model, make_case


@pytest.mark.parametrize("case", CASES)
def test_bad_model_gives_exit_2_and_one_line(case, tmp_path, cli):
    folder = tmp_path / "models"
    folder.mkdir()
    path = make_case(case, str(folder))
    np.save(tmp_path / "in.npy", np.zeros((1, 16), np.float32))
    for argv in (("inspect", path), ("run", path, "-i", tmp_path / "in.npy", "-o", tmp_path / "out.npy")):
        rc, out, err = cli(*argv)
        assert rc == 2, (case, rc, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("bnncc: error: "), err
        assert path in lines[0]
        assert "Traceback" not in err
    assert not (tmp_path / "out.npy").exists()


def test_corpus_is_large_enough():
    assert len(CASES) >= 20


def test_node_and_op_are_named(tmp_path, cli):
    path = make_case("unsupported_op", str(tmp_path))
    rc, _, err = cli("inspect", path)
    assert rc == 2 and "node 'a' (Softplus)" in err


def test_bad_input_batch_is_exit_2(tmp_path, cli):
    path = tmp_path / "good.onnx"
    path.write_bytes(good_model().SerializeToString())
    np.save(tmp_path / "in.npy", np.zeros((3, 15), np.float32))
    rc, _, err = cli("run", path, "-i", tmp_path / "in.npy", "-o", tmp_path / "out.npy")
    assert rc == 2 and "in.npy" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    rc, _, err = cli("run", path, "-i", tmp_path / "bad.npy", "-o", tmp_path / "out.npy")
    assert rc == 2 and "bad.npy" in err
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize("case", ["truncated", "cycle"])
def test_installed_entry_point_has_no_traceback(case, tmp_path):
    path = make_case(case, str(tmp_path))
    p = subprocess.run([sys.executable, "-m", "bnncc", "inspect", path],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
