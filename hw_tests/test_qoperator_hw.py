"""The quantize_static(QOperator) residual CNN (tests/fixtures/qop/qop_rescnn_pc_u8:
QLinearConv, com.microsoft QLinearAdd, QLinearGlobalAveragePool, QGemm) through
`bnncc cosim --levels onnx,golden,csim,rtlsim` under random backpressure: the integer
levels agree exactly, equal onnxruntime's outputs, and the measured cycles per frame are
the estimate."""
import json
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def test_residual_cnn_cosim_exact(tmp_path, capsys):
    from bnncc.cli import main
    refs = np.load(FIXTURES / "qop" / "qop_rescnn_pc_u8.refs.npz")
    np.save(tmp_path / "x.npy", refs["inputs"][:8])
    np.save(tmp_path / "e.npy", refs["outputs"][:8])
    rc = main([str(a) for a in ("cosim", FIXTURES / "qop" / "qop_rescnn_pc_u8.onnx", "-i",
                                tmp_path / "x.npy", "--levels", "onnx,golden,csim,rtlsim",
                                "--expect", tmp_path / "e.npy", "--backpressure", "0.3",
                                "--board", "zcu104", "--json")])   # 8-bit: too big for Pynq-Z2
    out = capsys.readouterr()
    assert rc == 0, out.err
    rep = json.loads(out.out)
    assert rep["exact"] is True
    assert all(rep["max_abs_error"][k] == 0 for k in ("golden", "csim", "rtlsim"))
    assert rep["stalls_seen"] > 0
    # the frame interval, without backpressure (which stalls a design this fast)
    rc = main([str(a) for a in ("cosim", FIXTURES / "qop" / "qop_rescnn_pc_u8.onnx", "-i",
                                tmp_path / "x.npy", "--levels", "golden,rtlsim",
                                "--board", "zcu104", "--json")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    rep = json.loads(out.out)
    assert rep["exact"] is True
    assert rep["cycles_per_frame_measured"] == rep["cycles_per_frame_estimated"]
