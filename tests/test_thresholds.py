"""Threshold folding is exact on every reachable accumulator value of every channel,
checked against the original ONNX nodes run by qonnx's executor (threshold_oracle.py)."""
import numpy as np
import onnx
import pytest

from bnncc import api
from bnncc.layers import MVAU
from bnncc.passes.widths import mvau_acc_range
from conftest import fixture_path
from threshold_oracle import check_layer

MODELS = ["brevitas/tfc_1w1a.onnx", "brevitas/tfc_2w2a.onnx", "brevitas/tfc_1w2a.onnx",
          "brevitas/cnv_1w1a.onnx", "zoo/TFC_1W1A.onnx"]


def folded_layers(path):
    design = api.load(fixture_path(path))
    return onnx.load(fixture_path(path)), [l for l in design.layers()
                                           if isinstance(l, MVAU) and l.thresholds is not None]


@pytest.mark.parametrize("path", MODELS)
def test_every_reachable_accumulator(path):
    model, layers = folded_layers(path)
    assert layers
    points = sum(check_layer(model, l) for l in layers)
    expected = sum(int((np.subtract(*mvau_acc_range(l.weights, l.idt, l.binary)[::-1]) + 1).sum())
                   for l in layers)
    assert points == expected


def test_negative_gamma_channels_are_flipped_and_checked():
    model, layers = folded_layers("brevitas/cnv_1w1a.onnx")
    assert sum(int(l.negated.sum()) for l in layers) > 0


@pytest.mark.parametrize("what", ["threshold", "flip"])
def test_oracle_catches_a_wrong_fold(what):
    model, layers = folded_layers("brevitas/tfc_1w1a.onnx")
    layer = layers[1]
    lo, hi = mvau_acc_range(layer.weights, layer.idt, layer.binary)
    if what == "threshold":
        c = int(np.argmax((layer.thresholds[:, 0] > lo) & (layer.thresholds[:, 0] <= hi)))
        layer.thresholds[c, 0] += 1
    else:
        c = int(np.argmax(layer.negated))
        assert layer.negated[c]
        layer.negated[c] = False
    with pytest.raises(AssertionError):
        check_layer(model, layer)
