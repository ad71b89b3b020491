"""Depthwise and grouped convolution: the golden depthwise-order window + VVAU against a
direct NumPy grouped convolution, on hand-built layers."""
import numpy as np
import pytest

from bnncc.datatypes import DataType
from bnncc.layers.thresholding import apply_thresholds
from bnncc.testing.designs import rand_values
from bnncc.testing.grouped import UNIT_CASES as CASES
from bnncc.testing.grouped import grouped_layers, reference_conv



@pytest.mark.parametrize("case", range(len(CASES)))
def test_golden_equals_reference(case):
    shape, oc, g, k, st, pads, idt, wdt, nt, pe = CASES[case]
    rng = np.random.default_rng(case)
    swg, vv, w4 = grouped_layers(rng, shape, oc, g, k, st, pads, idt, wdt, nt, pe)
    x = rand_values(rng, idt, (5,) + shape)
    ref = reference_conv(x, w4, g, st, pads, swg.pad_value)
    if vv.binary:
        ref = (ref + vv.mw) // 2
    if nt:
        ref = apply_thresholds(ref, vv.thresholds, vv.odt)
    got = vv.execute(swg.execute(x))
    assert got.shape == ref.shape
    assert np.array_equal(np.asarray(got, np.int64), np.asarray(ref, np.int64))


def test_cycles_and_order_depend_on_pe():
    rng = np.random.default_rng(7)
    swg, vv, _ = grouped_layers(rng, (4, 4, 8), 8, 8, (3, 3), (1, 1), (0, 0, 0, 0),
                                DataType.uint(3), DataType.int(3), 0, 1)
    x = rand_values(rng, DataType.uint(3), (2, 4, 4, 8))
    base = vv.execute(swg.execute(x))
    assert vv.cycles() == 2 * 2 * 8 * 9
    for pe in (2, 4, 8):
        vv.pe, swg.simd = pe, pe
        assert vv.cycles() == 2 * 2 * (8 // pe) * 9
        assert np.array_equal(vv.execute(swg.execute(x)), base)


def test_block_ram_counts_only_the_bit_columns_that_vary():
    """Yosys drops the weight-ROM bit columns that are equal in every word before mapping
    to block RAM (the two VVAU calibration points with a 2- and 4-word ROM measured half
    the BRAM18 of the full word width). Weights in {0, 1} of an INT4 type vary in bit 0
    only: a 2-word ROM of 16 lanes x 4 bits needs one 16-bit column set."""
    from bnncc.layers.cost import bram18
    rng = np.random.default_rng(3)
    _, vv, _ = grouped_layers(rng, (4, 4, 16), 16, 4, (1, 1), (1, 1), (0, 0, 0, 0),
                                DataType.uint(4), DataType.int(4), 0, 2)
    w = np.zeros_like(vv.weights)
    w[:, 0] = [1, 0] * (w.shape[0] // 2)              # every lane differs between the words
    w[:, 1:] = rng.integers(0, 2, (w.shape[0], w.shape[1] - 1))
    vv.weights = w
    depth = vv.groups // vv.pe
    assert vv.weight_image().shape == (depth, vv.pe * vv.cout * vv.cin * 4)
    live = vv.live_weight_bits()
    assert live <= vv.pe * vv.cout * vv.cin and live > 0
    assert vv.resources("block")["BRAM18"] == bram18(live, depth)
    vv.weights = rng.integers(-8, 8, w.shape)          # random 4-bit weights: most bits vary
    assert vv.live_weight_bits() > vv.pe * vv.cout * vv.cin
