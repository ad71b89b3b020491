"""Sharded co-simulation: how shard reports merge, how a batch is cut (no simulators)."""
from __future__ import annotations

import numpy as np

from bnncc.executor import ModelRef
from bnncc.sim.shards import CosimJob, merge, shards


def test_shards_cover_the_batch_in_order_with_their_own_seeds():
    x = np.arange(10, dtype=np.float32)[:, None]
    job = CosimJob(ModelRef("m.onnx", "0" * 64), None, 100.0, ("golden", "csim"), x, seed=5)
    parts = shards(job, 3)
    assert np.array_equal(np.concatenate([p.x for p in parts]), x)
    assert [p.seed for p in parts] == [5, 6, 7] and len(shards(job, 50)) == 10


def test_merge_counts_the_first_mismatch_from_the_start_of_the_batch():
    ok = {"exact": True, "frames": 4, "levels": ["golden", "rtlsim"], "stalls_seen": 3,
          "cycles_per_frame_measured": 100, "cycles_per_frame_estimated": 98,
          "latency_cycles_measured": 300, "total_cycles": 500}
    bad = dict(ok, exact=False, cycles_per_frame_measured=110,
               first_mismatch={"levels": ["golden", "rtlsim"], "layer": "mvau_2", "frame": 1,
                               "index": 7, "values": [3, 4]})
    later = dict(bad, first_mismatch=dict(bad["first_mismatch"], frame=0))
    m = merge([ok, bad, later], [4, 4, 3])
    assert m["exact"] is False and m["frames"] == 11 and m["shards"] == 3
    assert m["first_mismatch"]["frame"] == 5 and m["first_mismatch"]["layer"] == "mvau_2"
    assert m["stalls_seen"] == 9 and m["total_cycles"] == 1500
    assert m["cycles_per_frame_measured"] == 110 and m["latency_cycles_measured"] == 300
    both = merge([ok, ok], [4, 4])
    assert both["exact"] is True and both["frames"] == 8 and "first_mismatch" not in both
    assert both["stalls_seen"] == 6 and both["cycles_per_frame_measured"] == 100
