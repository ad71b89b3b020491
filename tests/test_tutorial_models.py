"""Networks written the way BinaryNet tutorials write them (scripts/make_tutorial_models.py):
custom autograd signs, torch.where sign, Hardtanh as Clip, BatchNorm (kept by the
TorchScript exporter, folded into the weights by the dynamo exporter), view(x.size(0),
-1), LogSoftmax, a dynamic batch axis; and a Larq-style NHWC graph as tf2onnx writes it
(scripts/make_nhwc_model.py). `bnncc run` reproduces onnxruntime's outputs."""
import numpy as np
import onnx
import pytest

from bnncc.testing.designs import load_fixture
from conftest import fixture_index, fixture_path

CASES = [c for c in fixture_index() if c["family"] == "tutorial"]


def close_f32(y: np.ndarray, ref: np.ndarray) -> None:
    """Float outputs within a few float32 roundings of the reference, per frame; the
    predicted class is the same."""
    y = np.asarray(y, np.float32).reshape(ref.shape)
    ulp = np.spacing(np.abs(ref).max(axis=1, keepdims=True))
    assert np.all(np.abs(y - ref) <= 4 * ulp), np.max(np.abs(y - ref) / ulp)
    assert np.array_equal(np.argmax(y, 1), np.argmax(ref, 1))


def test_every_export_form_is_present():
    assert {c["name"] for c in CASES} == {f"binarynet_{k}_{e}" for k in ("mlp", "cnn")
                                         for e in ("legacy", "dynamo")} | \
        {"larq_nhwc_cnn", "binarynet_sr_legacy"}


def test_super_resolution_depth_to_space_is_exact():
    """PixelShuffle exports as DepthToSpace: a reordering the host does at the output; the
    outputs are integers times a scale, so they equal onnxruntime's exactly."""
    case = next(c for c in CASES if c["name"] == "binarynet_sr_legacy")
    m = onnx.load(fixture_path(case["model"]))
    assert m.graph.node[-1].op_type == "DepthToSpace"
    refs = np.load(fixture_path(case["refs"]))
    d = load_fixture(case)
    y = np.asarray(d.run(refs["inputs"])).reshape(refs["outputs"].shape)
    assert np.array_equal(y, refs["outputs"])
    assert d.output_shape == (1, 1, 12, 12) and d.layers()[-1].out_shape == (6, 6, 4)


def test_channels_last_input_is_reordered_on_the_host():
    """tf2onnx feeds NHWC and transposes before the first Conv; the host streams the
    pixels in the first layer's order, and the Transpose + Reshape before the classifier
    (Keras flattens NHWC) becomes a weight permutation."""
    case = next(c for c in CASES if c["name"] == "larq_nhwc_cnn")
    d = load_fixture(case)
    assert d.input_shape == (1, 12, 12, 3)
    assert d.input_stage.hw_shape == (12, 12, 3) and d.layers()[0].kind == "SlidingWindow"
    assert any("reorders the input" in n for n in d.notes)
    # Larq's sign(sign(x) + 0.1) on a bipolar stream gives it back: no layer for it
    assert [l.kind for l in d.layers()].count("Thresholding") == 1


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_equals_onnxruntime(case):
    m = onnx.load(fixture_path(case["model"]))
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param, "batch axis not symbolic"
    refs = np.load(fixture_path(case["refs"]))
    design = load_fixture(case)
    close_f32(design.run(refs["inputs"]), refs["outputs"])
    kinds = [l.kind for l in design.layers()]
    binary = [l for l in design.layers() if l.kind == "MVAU" and l.binary]
    assert len(binary) == kinds.count("MVAU") - 1, "only the first layer multiplies"


def test_dynamo_bn_folding_keeps_xnor_popcount():
    """The dynamo export folds BatchNorm into s_c * sign(w): same layers as TorchScript."""
    by = {c["name"]: load_fixture(c) for c in CASES if "cnn" in c["name"]}
    legacy, dynamo = by["binarynet_cnn_legacy"], by["binarynet_cnn_dynamo"]
    assert [l.kind for l in legacy.layers()] == [l.kind for l in dynamo.layers()]
    assert any("BatchNorm folded into the weights" in n for n in dynamo.notes)
    for a, b in zip(legacy.layers(), dynamo.layers()):
        if a.kind == "MVAU":
            assert a.binary == b.binary and a.weights.shape == b.weights.shape


def test_cli_run_and_compile(cli, tmp_path):
    case = next(c for c in CASES if c["name"] == "binarynet_cnn_dynamo")
    refs = np.load(fixture_path(case["refs"]))
    np.save(tmp_path / "in.npy", refs["inputs"][:8])
    decl = ["--input-type", "UINT8", "--input-scale", str(case["input_scale"])]
    rc, _, err = cli("run", fixture_path(case["model"]), "-i", tmp_path / "in.npy",
                     "-o", tmp_path / "out.npy", "--engine", "golden", *decl)
    assert rc == 0, err
    close_f32(np.load(tmp_path / "out.npy"), refs["outputs"][:8])
    rc, _, err = cli("compile", fixture_path(case["model"]), "-o", tmp_path / "prj", *decl)
    assert rc == 0, err
    assert (tmp_path / "prj").is_dir() and any((tmp_path / "prj").rglob("*.cpp"))


def test_without_declared_input_type_is_exit_2(cli):
    case = CASES[0]
    rc, _, err = cli("inspect", fixture_path(case["model"]))
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--input-type" in err
