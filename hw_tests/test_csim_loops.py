"""What Vitis would schedule: an instrumented C simulation (-DBNNCC_COUNT_LOOPS) counts the
iterations of every layer's II=1 loop, per frame; they must equal the layer's cycle
estimate, on every fixture at two foldings (the simple folding and the optimizer's
--max-fps on Pynq-Z2). A template that runs slower than the report says fails here,
without vendor tools."""
from __future__ import annotations

import numpy as np
import pytest

from bnncc.folding import fold_simple
from bnncc.sim import csim
from bnncc.testing.designs import fixture_index, fold_fastest, load_fixture, rand_values

FOLDINGS = ("simple", "max_fps")
# Still open: where the DepthToSpace block is the slowest layer, its HLS version (one block
# more per frame) runs slower than the RTL rate the report states.
HLS_SLOWER = {("sr_crd_w4", "max_fps"), ("sr_s2d_w4", "max_fps")}


def _fold(d, how):
    if how == "simple":
        return fold_simple(d)
    fold_fastest(d)                  # --max-fps on Pynq-Z2, or ZCU104 where it does not fit
    return d


@pytest.mark.parametrize("how", FOLDINGS)
@pytest.mark.parametrize("entry", fixture_index(), ids=lambda e: e["name"])
def test_loop_counts_equal_cycle_estimate(entry, how):
    d = _fold(load_fixture(entry), how)
    frames = 2
    q = rand_values(np.random.default_rng(0), d.first().idt, (frames,) + tuple(d.first().in_shape))
    counts = csim.loop_counts(d, q)
    interval = max(l.cycles() for l in d.layers())
    for l in d.layers():
        want = l.cycles()
        if l.kind == "LabelSelect":
            # the RTL emits a row's k labels while it reads the next row or frame; one HLS
            # call per frame cannot, so it takes k more cycles, never the bottleneck
            want = int(np.prod(l.in_shape[:-1]) if len(l.in_shape) > 1 else 1) * \
                (l.labels // l.pe + l.k)
            assert want <= interval, (l.name, want, interval)     # the design's rate holds
        if l.kind == "WidthConverter":
            want = l.hls_cycles()        # = cycles() unless neither word size divides the other
        if l.kind == "DepthToSpace":
            # the RTL fills the next frame's first block while it reads out the last one;
            # one HLS call per frame cannot, so it takes one block more per frame
            want = (l.blocks() + 1) * l.block_words()
            if want > interval and (entry["name"], how) in HLS_SLOWER:
                pytest.xfail(f"known: the HLS {l.name} sets the rate, {want} > {interval} cycles")
            assert want <= interval, (l.name, want, interval)     # the design's rate holds
        assert counts.get(l.name, 0) == frames * want, (l.name, l.kind, counts.get(l.name),
                                                       frames * want)
