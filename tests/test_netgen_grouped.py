"""Random depthwise / grouped convolution networks (bnncc.testing.netgen.grouped): the
golden model equals qonnx's executor exactly on all of them, and they exercise what they
claim (VVAUs with several group counts, binary and integer, strides and pads)."""
import numpy as np
import pytest

from bnncc.frontend.lower import lower
from bnncc.testing.netgen.grouped import GROUPED_FAMILIES, random_grouped_network

N = 100


@pytest.fixture(scope="module")
def designs():
    out = []
    for seed in range(N):
        case = random_grouped_network(seed, n_inputs=4)
        out.append((case, lower(case.model, case.name)))
    return out


def test_golden_equals_reference(designs):
    for case, d in designs:
        y = d.run(case.inputs).reshape(case.outputs.shape)
        bad = np.argwhere(y != case.outputs)
        assert bad.size == 0, f"{case.name}: first mismatch at {bad[0].tolist()}"


def test_coverage(designs):
    vv = [l for _, d in designs for l in d.layers() if l.kind == "VVAU"]
    assert {c.family for c, _ in designs} == set(GROUPED_FAMILIES)
    assert any(l.binary for l in vv) and any(not l.binary for l in vv)
    assert {l.cin for l in vv} >= {1, 2, 3} and {l.cout for l in vv} >= {1, 2}
    assert len({l.groups for l in vv}) >= 5
    swgs = [l for _, d in designs for l in d.layers() if l.kind == "SlidingWindow" and l.depthwise]
    assert {l.stride for l in swgs} >= {(1, 1), (2, 2)} and any(any(l.pads) for l in swgs)
    assert {l.kernel for l in swgs} >= {(1, 1), (2, 2), (3, 3)}
    # outputs are not constant: a wrong weight or threshold would show
    for case, _ in designs:
        assert len(np.unique(case.outputs)) >= 2, case.name


def test_deterministic():
    a, b = random_grouped_network(5), random_grouped_network(5)
    assert a.model.SerializeToString() == b.model.SerializeToString()
    assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.outputs, b.outputs)
