"""brevitas_examples' ImageNet models with depthwise convolutions, generated here by
scripts/make_dws_fixtures.py (random weights, calibrated BatchNorm statistics) because
they are too large to commit: MobileNet-v1 4 bit at width 0.25 and ProxylessNAS mobile14
4 bit, at 224 x 224. Slow (minutes each on a shared machine): set BNNCC_SLOW=1. Needs the
`export` extra (torch, brevitas)."""
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("BNNCC_SLOW"), reason="slow: set BNNCC_SLOW=1"),
    pytest.mark.skipif(importlib.util.find_spec("brevitas_examples") is None,
                       reason="needs the export extra (torch, brevitas)"),
]
MODELS = ("mobilenet_v1_025", "proxylessnas_mobile14")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    sys.path.insert(0, str(REPO / "scripts"))
    import make_dws_fixtures as M
    out = Path(os.environ.get("BNNCC_DWS_DIR") or tmp_path_factory.mktemp("dws"))
    paths = {}
    for name in MODELS:
        p = out / f"{name}.onnx"
        if not p.is_file():
            M.build_imagenet_model(name, out)
        paths[name] = p
    return paths


@pytest.mark.parametrize("name", [MODELS[0], pytest.param(MODELS[1], marks=pytest.mark.xfail(
    strict=True, reason="open: golden differs from the qonnx executor by up to 0.40 (of 2.66) "
    "on ProxylessNAS, and qonnx from torch by 0.39; which reference is right is not yet "
    "established"))])
def test_golden_and_csim_equal_qonnx(built, name):
    from bnncc import api
    from bnncc.folding import fold_simple
    from bnncc.sim import csim
    path = built[name]
    refs = np.load(str(path).replace(".onnx", ".refs.npz"))
    d = api.load(str(path), "INT8", 2.0 ** -7)      # float pixels on the INT8 grid
    assert sum(l.kind == "VVAU" for l in d.layers()) >= 13
    y = d.run(refs["inputs"]).reshape(refs["outputs"].shape)
    assert np.array_equal(np.argmax(y, -1), np.argmax(refs["outputs"], -1))
    assert np.max(np.abs(y - refs["outputs"])) <= 1e-5 * np.max(np.abs(refs["outputs"]))
    fold_simple(d)
    q = d.quantize_input(refs["inputs"][:1])
    out, _ = csim.simulate(d, q)
    assert np.array_equal(out, d.run_layers(q))


@pytest.mark.parametrize("board", ["zcu104", "kv260"])
def test_mobilenet_estimate_fits(built, board):
    from bnncc.cli import main
    rc = main(["estimate", str(built["mobilenet_v1_025"]), "--board", board,
               "--input-type", "INT8", "--input-scale", "0.0078125"])
    assert rc == 0
