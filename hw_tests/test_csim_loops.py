"""What Vitis would schedule: an instrumented C simulation (-DBNNCC_COUNT_LOOPS) counts the
iterations of every layer's II=1 loop, per frame; they must equal the layer's cycle
estimate, on every fixture at two foldings (the simple folding and the optimizer's
--max-fps on Pynq-Z2). A template that runs slower than the report says fails here,
without vendor tools."""
from __future__ import annotations

import numpy as np
import pytest

from bnncc import api
from bnncc.boards import get_board
from bnncc.folding import fold_max_fps, fold_simple
from bnncc.sim import csim
from bnncc.testing.designs import FIXTURES, fixture_index, rand_values

FOLDINGS = ("simple", "max_fps")


def _fold(d, how):
    if how == "simple":
        return fold_simple(d)
    b = get_board("pynq-z2")
    return fold_max_fps(d, b, b.clock_mhz)


@pytest.mark.parametrize("how", FOLDINGS)
@pytest.mark.parametrize("entry", fixture_index(), ids=lambda e: e["name"])
def test_loop_counts_equal_cycle_estimate(entry, how):
    d = _fold(api.load(str(FIXTURES / entry["model"])), how)
    frames = 2
    q = rand_values(np.random.default_rng(0), d.first().idt, (frames,) + tuple(d.first().in_shape))
    counts = csim.loop_counts(d, q)
    for l in d.layers():
        assert counts.get(l.name, 0) == frames * l.cycles(), (l.name, l.kind, counts.get(l.name),
                                                             frames * l.cycles())
