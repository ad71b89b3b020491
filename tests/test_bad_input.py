"""The bad-input corpus (tests/bad_models.py) through every command it applies to.

Bad models and bad batches: exit 2, exactly one stderr line naming the file, no
traceback, no output directory or file, nothing written anywhere else. Odd but legal
models: every command succeeds and `run` gives what the qonnx executor gives.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from bad_models import CASES, good_model, make_case


def snapshot(root):
    out = {}
    for base, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(base, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def commands(case, inp, tmp):
    model, extra = case.path, list(case.args)
    run = ["run", model, "-i", inp, "-o", str(tmp / "out.npy"), *extra]
    cosim = ["cosim", model, "-i", inp, "--levels", "golden,csim", *extra]
    if case.kind == "batch":
        return [run, cosim]
    return [["inspect", model, *extra], ["estimate", model, "--json", *extra],
            ["compile", model, "-o", str(tmp / "outdir"), *extra], run, cosim]


def batch_file(case, tmp):
    if case.batch_file is not None:
        return case.batch_file
    p = str(tmp / "in.npy")
    np.save(p, case.batch, allow_pickle=False)
    return p


@pytest.mark.parametrize("case", [c for c in CASES if not c.startswith("legal_")])
def test_refused_in_every_command(case, tmp_path, cli):
    folder = tmp_path / "models"
    folder.mkdir()
    c = make_case(case, str(folder))
    inp = batch_file(c, tmp_path)
    named = inp if c.kind == "batch" else c.path
    before = snapshot(tmp_path)
    for argv in commands(c, inp, tmp_path):
        rc, out, err = cli(*argv)
        lines = err.strip().splitlines()
        assert rc == 2, (case, argv[0], rc, err)
        assert len(lines) == 1 and lines[0].startswith("bnncc: error: "), (argv[0], err)
        assert named in lines[0], (argv[0], err)
        assert "Traceback" not in err
        assert snapshot(tmp_path) == before, argv[0]   # no DIR, no out.npy, nothing else


def _reference(model_path, x):
    """The qonnx executor, one frame at a time (the models declare batch 1)."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes
    m = ModelWrapper(onnx.load(model_path)).transform(InferShapes())
    iname, oname = m.graph.input[0].name, m.graph.output[0].name
    x = np.asarray(x, np.float32)
    x = x[None] if x.ndim == len(m.get_tensor_shape(iname)) - 1 else x
    return np.concatenate([execute_onnx(m, {iname: f[None]})[oname] for f in x])


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith("legal_")])
def test_legal_odd_inputs_work_and_match_qonnx(case, tmp_path, cli):
    folder = tmp_path / "models"
    folder.mkdir()
    c = make_case(case, str(folder))
    rng = np.random.default_rng(3)
    if c.batch is None or case in ("legal_unused_extra_node",):
        c.batch = rng.uniform(-1.5, 1.5, c.batch.shape).astype(np.float32)
    inp = batch_file(c, tmp_path)
    for argv in commands(c, inp, tmp_path)[:4]:   # cosim's csim needs g++ (hw_tests)
        rc, out, err = cli(*argv)
        assert rc == 0, (case, argv[0], err)
    got = np.load(tmp_path / "out.npy")
    ref = c.path
    if "unused" in case:   # the reference executor cannot run the dead node; it changes nothing
        ref = str(tmp_path / "without_unused.onnx")
        open(ref, "wb").write(good_model().SerializeToString())
    want = _reference(ref, np.load(inp))
    assert got.shape == want.shape
    assert np.array_equal(got, want.astype(got.dtype)), (case, np.abs(got - want).max())


def test_corpus_is_large_enough():
    assert len(CASES) >= 150
    for one_of_each_class in ("huge_input", "quant_rounding_int", "conv_stride_0",
                              "maxpool_stride_0", "external_offset_float",
                              "external_location_nul", "conv_pads_negative", "maxpool_kernel_0",
                              "acc_over_64_bits", "batch_nan", "zeropt_1e30",
                              "quant_signed_str0", "quant_signed_float", "batch_complex",
                              "conv_kernel_mismatch", "opset_99", "scale_inf", "scale_nan",
                              "batch_empty", "legal_unused_extra_node", "batch_out_of_type"):
        assert one_of_each_class in CASES


def test_node_and_op_are_named(tmp_path, cli):
    c = make_case("unsupported_op", str(tmp_path))
    rc, _, err = cli("inspect", c.path)
    assert rc == 2 and "node 'a' (Softplus)" in err
    c = make_case("conv_stride_0", str(tmp_path))
    rc, _, err = cli("inspect", c.path)
    assert rc == 2 and "(Conv)" in err and "strides" in err and "[0, 1]" in err


@pytest.mark.parametrize("case,words", [
    ("scale_inf", ["(Quant)", "scale"]), ("acc_over_64_bits", ["69 bits"]),
    ("quant_signed_str0", ["signed", "'0'"]), ("opset_99", ["opset 99"]),
    ("conv_kernel_mismatch", ["kernel_shape", "(Conv)"]), ("zeropt_1e30", ["zero-point"]),
    ("batch_nan", ["in.npy", "nan"]), ("batch_complex", ["complex"]),
    ("batch_empty", ["empty"]), ("batch_out_of_type", ["in.npy"])])
def test_messages_blame_the_right_thing(case, words, tmp_path, cli):
    c = make_case(case, str(tmp_path))
    inp = batch_file(c, tmp_path)
    rc, _, err = cli("run", c.path, "-i", inp, "-o", tmp_path / "out.npy", *c.args)
    assert rc == 2
    for w in words:
        assert w in err, (w, err)


def test_bad_input_batch_is_exit_2(tmp_path, cli):
    path = tmp_path / "good.onnx"
    path.write_bytes(good_model().SerializeToString())
    np.save(tmp_path / "in.npy", np.zeros((3, 15), np.float32))
    rc, _, err = cli("run", path, "-i", tmp_path / "in.npy", "-o", tmp_path / "out.npy")
    assert rc == 2 and "in.npy" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize("case", ["truncated", "cycle", "conv_stride_0"])
def test_installed_entry_point_has_no_traceback(case, tmp_path):
    c = make_case(case, str(tmp_path))
    p = subprocess.run([sys.executable, "-m", "bnncc", "inspect", c.path],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr


def test_run_never_overwrites_its_inputs(tmp_path, cli):
    path = tmp_path / "good.onnx"
    data = good_model().SerializeToString()
    path.write_bytes(data)
    np.save(tmp_path / "in.npy", np.zeros((2, 16), np.float32))
    batch = (tmp_path / "in.npy").read_bytes()
    for out in (path, tmp_path / "in.npy"):
        rc, _, err = cli("run", path, "-i", tmp_path / "in.npy", "-o", out)
        assert rc == 2 and "inputs" in err and len(err.strip().splitlines()) == 1
    assert path.read_bytes() == data and (tmp_path / "in.npy").read_bytes() == batch
