"""Co-simulation spread over an executor (bnncc/executor.py): many models, or one input
batch cut into shards, each a task that loads its model once per worker, folds it the
way the client asked and runs `cosim` (bnncc/sim/cosim.py) on its frames.

The client merges the shard reports into one, as if the batch had run whole: frames
add up, the verdict is exact only if every shard is, and the first mismatch is the
first in frame order (its frame counted from the start of the batch). Measured cycles
per frame and latency are the worst shard's; stalls and total cycles add up. With
backpressure, shard k draws its stalls from seed + k.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import BnnccError
from ..executor import ModelRef, cached_design


@dataclass(frozen=True)
class CosimJob:
    """One model on one board, folded as `fps` / `budget` / `config` (a dict) say."""
    ref: ModelRef
    board: object
    clock_mhz: float
    levels: tuple
    x: np.ndarray
    fps: float | None = None
    budget: dict | None = None
    config: dict | None = None
    backpressure: float = 0.0
    seed: int = 0


def cosim_task(job: CosimJob, models=None) -> dict:
    from ..folding import fold
    from .cosim import cosim
    try:
        design = cached_design(job.ref, (models or {}).get(job.ref.sha256))
        fold(design, job.board, job.clock_mhz, fps=job.fps, budget=job.budget,
             config=job.config)
        return cosim(design, job.x, list(job.levels), backpressure=job.backpressure,
                     seed=job.seed)
    except BnnccError as e:
        return {"error": e.line(), "exit_code": e.exit_code}


def shards(job: CosimJob, n: int) -> list[CosimJob]:
    """The job cut into at most n shards of consecutive frames."""
    n = max(1, min(n, len(job.x)))
    cuts = np.linspace(0, len(job.x), n + 1).astype(int)
    return [replace(job, x=job.x[a:b], seed=job.seed + k)
            for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])) if b > a]


def merge(reports: list[dict], frames: list[int]) -> dict:
    """One report for shards in frame order (`frames`: frames per shard)."""
    out = {"exact": all(r["exact"] for r in reports), "frames": int(sum(frames)),
           "levels": reports[0]["levels"], "shards": len(reports)}
    worst = {"cycles_per_frame_measured": max, "latency_cycles_measured": max,
             "cycles_per_frame_estimated": max, "stalls_seen": sum, "total_cycles": sum}
    for k, f in worst.items():
        if all(k in r for r in reports):
            out[k] = f(r[k] for r in reports)
    if all("seconds" in r for r in reports):    # time summed over the shards
        sec = {lv: sum(r["seconds"][lv] for r in reports) for lv in out["levels"]}
        out["seconds"] = {lv: round(v, 3) for lv, v in sec.items()}
        out["fps"] = {lv: float(f"{out['frames'] / v:.4g}") if v > 0 else None
                      for lv, v in sec.items()}
    start = 0
    for r, n in zip(reports, frames):
        if not r["exact"]:
            m = dict(r["first_mismatch"])
            m["frame"] += start
            out["first_mismatch"] = m
            break
        start += n
    return out


def run(jobs: list[CosimJob], ex, n_shards: int = 1, model_bytes: dict | None = None) -> list[dict]:
    """A merged report per job, every job cut into n_shards tasks, on executor `ex`."""
    pieces, owner = [], []
    for i, job in enumerate(jobs):
        for s in shards(job, n_shards):
            pieces.append(s)
            owner.append(i)
    shared = {"models": model_bytes} if model_bytes and ex.kind == "dask" else {}
    reps = ex.map(cosim_task, pieces, **shared)
    for r in reps:
        if "error" in r:
            e = BnnccError(r["error"])
            e.exit_code = r["exit_code"]
            raise e
    out = []
    for i in range(len(jobs)):
        mine = [(r, len(p.x)) for r, p, o in zip(reps, pieces, owner) if o == i]
        out.append(merge([r for r, _ in mine], [n for _, n in mine]))
    return out
