"""Average and global average pooling on quantized feature maps, against qonnx."""
import numpy as np
import pytest

from bnncc.frontend.lower import lower
from bnncc.testing.designs import pool_model
from bnncc.testing.netgen import reference_outputs

@pytest.mark.parametrize("mode", ["avg", "global"])
@pytest.mark.parametrize("rounding", ["FLOOR", "ROUND", "CEIL"])
def test_average_pool_matches_qonnx(mode, rounding):
    model = pool_model(mode, rounding, seed=len(mode) + len(rounding))
    x = np.random.default_rng(3).uniform(-1, 1, (64, 3, 8, 8)).astype(np.float32)
    ref = reference_outputs(model, x)
    design = lower(model, "pool.onnx")
    assert "SumPool" in [l.kind for l in design.layers()]
    assert np.array_equal(design.run(x).reshape(ref.shape), ref)
