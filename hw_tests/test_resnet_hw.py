"""The ResNet-style fixtures (per-channel residual adds, tests/fixtures/resnet) through
`bnncc cosim --levels onnx,golden,csim,rtlsim`: the integer levels agree exactly and equal
the qonnx executor's outputs; --max-fps folds the adds to PE > 1 (per-lane constants or
the channel-word ROM)."""
import json
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def _cli(capsys, *argv):
    from bnncc.cli import main
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("name,fold", [("resnet_ts", []), ("resnet_dynamo", ["--max-fps"])])
def test_cosim_exact(name, fold, tmp_path, capsys):
    refs = np.load(FIXTURES / "resnet" / f"{name}.refs.npz")
    np.save(tmp_path / "x.npy", refs["inputs"][:4])
    np.save(tmp_path / "e.npy", refs["outputs"][:4])
    rc, out, err = _cli(capsys, "cosim", FIXTURES / "resnet" / f"{name}.onnx", "-i",
                        tmp_path / "x.npy", "--levels", "onnx,golden,csim,rtlsim",
                        "--expect", tmp_path / "e.npy", "--backpressure", "0.3", "--json",
                        *fold)
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["exact"] is True
    assert rep["max_abs_error"]["golden"] == 0 and rep["max_abs_error"]["rtlsim"] == 0
