"""Golden model == qonnx / onnxruntime on 300 random QONNX and plain-ONNX networks
(FC and conv, 1-4 bit, random BatchNorm with negative and zero gammas, exact ties)."""
import numpy as np
import pytest

from bnncc.frontend.lower import lower
from bnncc.testing.netgen import FAMILIES, random_network

GROUPS = 12
PER_GROUP = 25


@pytest.mark.parametrize("group", range(GROUPS))
def test_golden_equals_reference_exactly(group):
    checked = 0
    for seed in range(group * PER_GROUP, (group + 1) * PER_GROUP):
        case = random_network(seed)
        y = np.asarray(lower(case.model, case.name).run(case.inputs))
        ref = case.outputs
        assert y.shape == ref.shape or y.size == ref.size, case.name
        assert np.array_equal(y.reshape(ref.shape).astype(ref.dtype), ref), case.name
        checked += 1
    assert checked == PER_GROUP


def test_all_families_are_covered():
    assert {random_network(s).family for s in range(len(FAMILIES))} == set(FAMILIES)
