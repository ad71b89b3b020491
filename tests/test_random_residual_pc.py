"""Golden model == qonnx executor on 100 random networks whose residual adds join
operands with different per-channel scales (bnncc.testing.netgen.residual_pc)."""
import numpy as np
import pytest

from bnncc.frontend.lower import lower
from bnncc.testing.netgen.residual_pc import random_residual_pc_network

GROUPS, PER_GROUP = 4, 25


@pytest.mark.parametrize("group", range(GROUPS))
def test_golden_equals_reference(group):
    per_channel = 0
    for seed in range(group * PER_GROUP, (group + 1) * PER_GROUP):
        case = random_residual_pc_network(seed)
        assert np.array_equal(case.meta["sim_outputs"], case.outputs), case.name
        d = lower(case.model, case.name)
        per_channel += any(l.kind == "AddStreams" and l.per_channel for l in d.layers())
        y = np.asarray(d.run(case.inputs)).reshape(case.outputs.shape)
        assert np.array_equal(y.astype(case.outputs.dtype), case.outputs), case.name
    assert per_channel == PER_GROUP     # every network has a per-channel-factor add
