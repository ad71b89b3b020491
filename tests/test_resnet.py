"""ResNet-style Brevitas networks with float residual adds of per-channel-scaled operands
(tests/fixtures/resnet, scripts/make_resnet_fixtures.py): `bnncc run` equals the qonnx
executor, every add is a per-channel AddStreams, `compile` writes the project twice
byte-identically."""
import numpy as np
import onnx
import pytest

from conftest import fixture_index, fixture_path

RESNET = [c for c in fixture_index() if c.get("family") == "resnet"]
IDS = [c["name"] for c in RESNET]


def test_both_exporters_present():
    assert sorted(IDS) == ["resnet_dynamo", "resnet_ts"]


@pytest.mark.parametrize("case", RESNET, ids=IDS)
def test_cli_run_equals_qonnx_executor(case, cli, tmp_path):
    from bnncc.testing.netgen import reference_outputs
    refs = np.load(fixture_path(case["refs"]))
    model = onnx.load(fixture_path(case["model"]))
    ref = np.asarray(reference_outputs(model, refs["inputs"])).reshape(refs["outputs"].shape)
    assert np.array_equal(ref, refs["outputs"])
    np.save(tmp_path / "in.npy", refs["inputs"])
    rc, _, err = cli("run", fixture_path(case["model"]), "-i", tmp_path / "in.npy",
                     "-o", tmp_path / "out.npy")
    assert rc == 0, err
    y = np.load(tmp_path / "out.npy").reshape(ref.shape)
    assert np.array_equal(y, ref)
    assert len(np.unique(ref)) > 20


@pytest.mark.parametrize("case", RESNET, ids=IDS)
def test_adds_are_per_channel(case):
    from bnncc.frontend.lower import lower
    d = lower(onnx.load(fixture_path(case["model"])), case["name"])
    adds = [l for l in d.layers() if l.kind == "AddStreams"]
    assert len(adds) == 3 and all(l.per_channel for l in adds)
    # the requantization after each add is a standalone Thresholding
    for a in adds:
        assert [d.layer(n).kind for n, _ in d.readers(a.name)] == ["Thresholding"]


def test_compile_writes_project(cli, tmp_path):
    """The per-channel factors reach the HLS code (twice the same bytes: tests/test_compile.py)."""
    a = tmp_path / "a"
    assert cli("compile", fixture_path(RESNET[0]["model"]), "-o", a)[0] == 0
    files = list(a.rglob("*.hpp"))
    assert (a / "rtl" / "bnncc_top.v").is_file() and (a / "report.json").is_file()
    assert any("KA[" in p.read_text() for p in files)


def test_inexact_ratio_refused(cli, tmp_path):
    """One channel's scale made 0.1 * 2^-10 of itself: the ratio of the two operands'
    scales in that channel needs a denominator above 2^32, so the add is refused with
    one line (exit 2), not approximated."""
    from onnx import numpy_helper
    m = onnx.load(fixture_path(RESNET[0]["model"]))
    prod = {o: n for n in m.graph.node for o in n.output}
    add = next(n for n in m.graph.node if n.op_type == "Add" and n.input[0] in prod
               and prod[n.input[0]].op_type == "Quant")
    inits = {t.name: t for t in m.graph.initializer}
    t = inits[prod[add.input[0]].input[1]]
    s = numpy_helper.to_array(t).copy()
    assert s.size > 1                     # the operand is per-channel
    s.flat[0] *= np.float32(0.1) * np.float32(2.0 ** -10)
    t.CopyFrom(numpy_helper.from_array(s, t.name))
    onnx.save(m, tmp_path / "bad.onnx")
    rc, _, err = cli("inspect", tmp_path / "bad.onnx")
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no integer ratio below 2^32" in lines[0] and "Add" in lines[0]
