"""bnncc sweep: Pareto fronts, the same bytes on every executor, each point reproducible.

The cluster test starts a real `dask scheduler` and two `dask worker` processes on free
localhost ports (port 0, found through a scheduler file), bounded by generous timeouts.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bnncc.boards import RESOURCES
from bnncc.sweep import ladder, pareto

REPO = Path(__file__).resolve().parent.parent
FIX = Path(__file__).parent / "fixtures" / "brevitas"
CNV, TFC = FIX / "cnv_1w1a.onnx", FIX / "tfc_1w1a.onnx"
BOARDS = "pynq-z2,ultra96-v2,zcu104"
NUMBERS = ("fps", "cycles_per_frame", "totals", "utilization", "fits")


def _pt(fps, lut, bram, ii=None, on_board=True):
    t = {r: 0 for r in RESOURCES}
    t.update(LUT=lut, BRAM18=bram)
    return {"fps": fps, "cycles_per_frame": ii or int(1e8 / fps), "totals": t,
            "utilization": {r: t[r] / 1000 for r in RESOURCES}, "fits": True,
            "config": {"layers": {}}, "on_board": on_board}


def test_pareto_keeps_only_undominated_points():
    a, b, c = _pt(100, 10, 5), _pt(200, 20, 5), _pt(150, 30, 5)   # c: slower and dearer than b
    d = _pt(300, 15, 9)                                           # cheaper LUT, more BRAM: kept
    e = _pt(400, 1, 1, on_board=False)                            # off the board: dropped
    front = pareto([c, e, d, b, a])
    assert [p["fps"] for p in front] == [100, 200, 300]
    assert all("on_board" not in p for p in front)


def test_pareto_one_point_per_interval_prefers_the_given_one():
    cheap, chosen = _pt(100, 10, 5, ii=1000), _pt(100, 12, 5, ii=1000)
    assert pareto([cheap, chosen])[0]["totals"]["LUT"] == 10
    assert pareto([cheap, chosen], prefer=chosen)[0]["totals"]["LUT"] == 12


def test_ladder_spans_both_ends():
    t = ladder(64, 1_000_000, 20)
    assert t[0] == 64 and t[-1] == 1_000_000 and t == sorted(set(t)) and len(t) == 20
    assert ladder(500, 500, 10) == [500]


def test_bad_arguments_exit_2(cli, tmp_path):
    rc, _, err = cli("sweep", tmp_path / "missing.onnx", "--scheduler", "none")
    assert rc == 2 and "missing.onnx" in err and err.count("\n") == 1
    rc, _, err = cli("sweep", TFC, "--budget", "GPU=0.5", "--scheduler", "none")
    assert rc == 2 and "GPU" in err
    rc, _, err = cli("sweep", TFC, "--boards", "nosuchboard", "--scheduler", "none")
    assert rc == 2 and "nosuchboard" in err


# --------------------------------------------------------------------------- the cluster
def _env():
    from bnncc.testing.dask_cluster import worker_env
    return worker_env(REPO)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """tcp address of a scheduler with two single-thread worker processes."""
    pytest.importorskip("distributed")
    from bnncc.testing.dask_cluster import dask_processes
    with dask_processes(tmp_path_factory.mktemp("dask"), 2, repo=REPO, timeout=300) as addr:
        yield addr


def _sweep(out: Path, scheduler: str, *extra) -> bytes:
    cmd = [sys.executable, "-m", "bnncc", "sweep", str(CNV), str(TFC), "--boards", BOARDS,
           "--points", "8", "-o", str(out), "--scheduler", scheduler, *extra]
    r = subprocess.run(cmd, env=_env(), capture_output=True, timeout=900)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    return (out / "sweep.json").read_bytes()


def _files(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_cluster_sweep_equals_local_and_reproduces(cluster, tmp_path, cli):
    remote = _sweep(tmp_path / "remote", cluster)
    local = _sweep(tmp_path / "local", "local", "--workers", "2")
    serial = _sweep(tmp_path / "serial", "none")
    assert remote == local == serial
    assert _files(tmp_path / "remote") == _files(tmp_path / "serial")   # md, plots, configs

    res = json.loads(remote)
    assert [(Path(r["model"]).name, r["board"]) for r in res["results"]] == \
        [(m, b) for m in ("cnv_1w1a.onnx", "tfc_1w1a.onnx") for b in BOARDS.split(",")]
    for r in res["results"]:
        front = r["pareto"]
        assert len(front) >= 3, r
        fps = [p["fps"] for p in front]
        assert fps == sorted(fps) and len(set(fps)) == len(fps)
        for i, p in enumerate(front):            # more fps always costs more of something
            for q in front[i + 1:]:
                assert any(q["totals"][k] > p["totals"][k] for k in RESOURCES), (p, q)
        assert all(p["utilization"]["LUT"] <= 1 and p["utilization"]["BRAM18"] <= 1
                   for p in front)

        args = [r["model"], "--board", r["board"], "--clock-mhz", r["clock_mhz"], "--json"]
        rc, out, err = cli("estimate", *args, "--max-fps")
        assert rc == 0, err
        best = json.loads(out)
        fastest = max((p for p in front if p["fits"]), key=lambda p: p["fps"])
        assert {k: fastest[k] for k in NUMBERS} == {k: best[k] for k in NUMBERS}
        for row in best["layers"]:
            pin = fastest["config"]["layers"].get(row["name"], {})
            for k in ("PE", "SIMD"):
                if k in pin:
                    assert pin[k] == row[k], (row, pin)

        for i, p in enumerate(front):
            cfg = tmp_path / f"cfg_{i}.json"
            cfg.write_text(json.dumps(p["config"]))
            rc, out, err = cli("estimate", *args, "--config", cfg)
            assert rc == 0, err
            got = json.loads(out)
            assert {k: got[k] for k in NUMBERS} == {k: p[k] for k in NUMBERS}, (r["board"], i)
