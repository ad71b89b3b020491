"""Every committed fixture model reproduces its reference outputs through the golden model
(references computed by qonnx's executor when the fixtures were made)."""
import numpy as np
import pytest

from bnncc import api
from bnncc.testing.designs import load_fixture
from conftest import fixture_index, fixture_path

CASES = fixture_index()


def check_outputs(y: np.ndarray, ref: np.ndarray, kind: str) -> None:
    y = np.asarray(y).reshape(ref.shape)
    if kind == "index":
        assert np.array_equal(y.astype(np.int64), ref.astype(np.int64))
        return
    assert np.array_equal(np.argmax(y.reshape(len(y), -1), 1), np.argmax(ref.reshape(len(ref), -1), 1))
    assert np.max(np.abs(y - ref)) <= 1e-5 * np.max(np.abs(ref))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_reproduces_reference(case):
    refs = np.load(fixture_path(case["refs"]))
    design = load_fixture(case)
    y = design.run(refs["inputs"])
    check_outputs(y, refs["outputs"], case["output_kind"])
    if case["family"] == "qdq":   # int8 QDQ from quantize_static: onnxruntime's integers exactly
        assert np.array_equal(y.reshape(refs["outputs"].shape), refs["outputs"])
        assert np.array_equal(y.reshape(refs["outputs"].shape), refs["outputs_fused"])


def test_numpy_path_equals_compiled_kernel(monkeypatch):
    """The C popcount kernel is only a fast path: the NumPy definition gives the same."""
    case = next(c for c in CASES if c["name"].startswith("cnv_1w1a"))
    refs = np.load(fixture_path(case["refs"]))
    design = api.load(fixture_path(case["model"]))
    q = design.quantize_input(refs["inputs"][:4])
    fast = design.run_layers(q)
    monkeypatch.setenv("BNNCC_NO_CKERNEL", "1")
    assert np.array_equal(design.run_layers(q), fast)


def test_cli_run_writes_model_outputs(tmp_path, cli):
    case = next(c for c in CASES if c["name"].startswith("tfc_1w1a"))
    refs = np.load(fixture_path(case["refs"]))
    np.save(tmp_path / "in.npy", refs["inputs"][:10])
    rc, _, err = cli("run", fixture_path(case["model"]), "-i", tmp_path / "in.npy",
                     "-o", tmp_path / "out.npy", "--engine", "golden")
    assert rc == 0, err
    check_outputs(np.load(tmp_path / "out.npy"), refs["outputs"][:10], case["output_kind"])


def test_inspect_prints_one_line_per_layer(cli):
    case = next(c for c in CASES if c["name"].startswith("cnv_1w1a"))
    rc, out, _ = cli("inspect", fixture_path(case["model"]))
    assert rc == 0
    design = api.load(fixture_path(case["model"]))
    rows = [l for l in out.splitlines() if l.split()[0] in {x.name for x in design.layers()}]
    assert len(rows) == len(design.layers()) == 17
    assert any("xnor-popcount" in r and "thresholds=1" in r for r in rows)
