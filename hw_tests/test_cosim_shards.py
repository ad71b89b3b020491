"""`bnncc cosim --shards N [--scheduler ...]`: the batch cut into pieces, in this process and
on a real two-worker Dask cluster, gives the verdict of the whole batch (g++ csim)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TFC = REPO / "bnncc" / "examples" / "tfc_w1a1.onnx"
MNIST = REPO / "bnncc" / "examples" / "mnist8.npy"


def _cosim(*extra):
    from bnncc.testing.dask_cluster import worker_env
    r = subprocess.run([sys.executable, "-m", "bnncc", "cosim", str(TFC), "-i", str(MNIST),
                        "--levels", "golden,csim", "--json", *extra], env=worker_env(REPO),
                       capture_output=True, timeout=900)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    rep = json.loads(r.stdout)
    assert rep.pop("seconds").keys() == rep.pop("fps").keys() == {"golden", "csim"}
    return rep                   # without the wall-clock figures, which differ per run


def test_shards_in_process_and_on_a_cluster(tmp_path):
    pytest.importorskip("distributed")
    from bnncc.testing.dask_cluster import dask_processes
    whole = _cosim()
    assert whole["exact"] and whole["frames"] == 8
    here = _cosim("--shards", "3", "--scheduler", "none")
    assert here == dict(whole, shards=3)
    with dask_processes(tmp_path, 2, repo=REPO, timeout=300) as addr:
        there = _cosim("--shards", "2", "--scheduler", addr)
    assert there == dict(whole, shards=2)
