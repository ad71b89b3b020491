"""Golden model == onnxruntime / qonnx exactly on 100 random padded binary convolution
networks (bnncc.testing.netgen.padded: pads 0-2, strides 1-2, kernels 1-5, explicit pads,
auto_pad SAME_*, Pad nodes with 0 / +1 / -1)."""
import numpy as np
import pytest

from bnncc.frontend.lower import lower
from bnncc.layers import MVAU
from bnncc.testing.netgen.padded import random_padded_network

GROUPS = 4
PER_GROUP = 25


@pytest.mark.parametrize("group", range(GROUPS))
def test_golden_equals_reference_exactly(group):
    borders = 0
    for seed in range(group * PER_GROUP, (group + 1) * PER_GROUP):
        case = random_padded_network(seed)
        d = lower(case.model, case.name)
        y = np.asarray(d.run(case.inputs))
        ref = case.outputs
        assert np.array_equal(y.reshape(ref.shape).astype(ref.dtype), ref), case.name
        borders += sum(isinstance(l, MVAU) and l.border is not None for l in d.layers())
    assert borders >= PER_GROUP // 2      # the corrected path is what most of them test


def test_generator_covers_the_padding_forms():
    styles, kernels, strides = set(), set(), set()
    for seed in range(40):
        for info in random_padded_network(seed, n_inputs=1).meta["layers"]:
            if info.get("kind") == "conv":
                styles.add((info["pad_style"], info["pad_value"]))
                kernels.add(info["kernel"])
                strides.add(info["stride"])
    assert {("pads", 0.0), ("same_upper", 0.0), ("same_lower", 0.0), ("pad_node", 0.0),
            ("pad_node", 1.0), ("pad_node", -1.0)} <= styles
    assert kernels == {1, 2, 3, 4, 5} and strides == {1, 2}


def test_generator_is_deterministic():
    a, b = random_padded_network(3), random_padded_network(3)
    assert a.model.SerializeToString() == b.model.SerializeToString()
    assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.outputs, b.outputs)
