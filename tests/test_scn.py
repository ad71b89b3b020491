"""Self-compressing networks: per-channel weight bit widths (zeros included), in the
tensor and the grouped form, golden == qonnx's executor exactly, and every channel that
carries no information removed from the hardware (bnncc.passes.prune)."""
import numpy as np
import pytest

from bnncc.frontend.lower import lower
from bnncc.layers import MVAU, Thresholding
from bnncc.passes.prune import _constant_rows
from bnncc.quantizers import ROUNDING_MODES, per_element_int_quant
from bnncc.testing.scn import elementwise_int_quant, qonnx_reference, random_scn_network

GROUPS, PER_GROUP = 8, 25


def removed_channels(design) -> int:
    return sum(l.__dict__.get("removed", {}).get(k, 0) for l in design.layers()
               for k in ("constant_channels", "unread_channels"))


def assert_nothing_removable(design):
    """An independent look at the pruned design: no layer before the last keeps an
    all-zero weight row or a channel no reachable input changes (a layer keeps one
    channel at least), and no reader keeps an all-zero input column of a hidden stream."""
    layers = design.layers()
    for l in layers:
        if not isinstance(l, (MVAU, Thresholding)) or not list(design.graph.successors(l.name)):
            continue
        if l.out_shape[-1] > 1:
            assert not _constant_rows(l), (l.name, _constant_rows(l))
            if isinstance(l, MVAU):
                assert not np.any(np.all(l.weights == 0, axis=1)), l.name


@pytest.mark.parametrize("group", range(GROUPS))
def test_golden_equals_reference_and_prunes(group):
    for seed in range(group * PER_GROUP, (group + 1) * PER_GROUP):
        case = random_scn_network(seed, n_inputs=4)
        for form in ("tensor", "grouped"):
            d = lower(getattr(case, form), f"{case.name}-{form}")
            y = d.run(case.inputs)
            assert np.array_equal(y, case.outputs), (case.name, form, case.meta)
            assert removed_channels(d) >= case.zero_channels, (case.name, form)
            assert_nothing_removable(d)


def test_families_are_covered():
    metas = [random_scn_network(s, with_reference=False).meta for s in range(GROUPS * PER_GROUP)]
    assert sum(m["conv"] for m in metas) > 40 and sum(not m["conv"] for m in metas) > 40
    assert sum(m["per_channel_act"] for m in metas) > 10
    assert sum(m["act"] == "bipolar" for m in metas) > 40


def test_elementwise_reference_equals_stock_on_scalar_widths():
    from qonnx.custom_op.general.intquant import int_quant
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(4000) * 6).astype(np.float32)
    x[:100] = np.round(x[:100] * 2) / 2        # ties
    for bits in range(0, 6):
        for signed in (True, False):
            for narrow in (True, False):
                for mode in ("ROUND", "FLOOR", "CEIL", "HALF_UP"):
                    s, z = np.float32(0.5), np.float32(0)
                    a = int_quant(x, s, z, np.float32(bits), signed, narrow, mode)
                    b = elementwise_int_quant(x, s, z, np.float32(bits), signed, narrow, mode)
                    np.testing.assert_array_equal(a, b)


def test_elementwise_executor_equals_stock_on_grouped_form():
    for seed in range(6):
        case = random_scn_network(seed, n_inputs=3, with_reference=False)
        if case.meta["per_channel_act"]:
            continue
        a = qonnx_reference(case.grouped, case.inputs)
        b = qonnx_reference(case.grouped, case.inputs, elementwise=True)
        c = qonnx_reference(case.tensor, case.inputs, elementwise=True)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_per_element_quantizer_equals_reference(mode):
    """bnncc's per-element IntQuant (levels -> values -> real) against the element-wise
    int_quant, for widths 0-5 side by side in one tensor."""
    rng = np.random.default_rng(1)
    for signed in (True, False):
        for narrow in (False, True):
            bits = rng.integers(0, 6, (1, 64)).astype(np.float64)
            scale = (2.0 ** rng.integers(-3, 2, (1, 64))).astype(np.float32)
            x = (rng.standard_normal((200, 64)) * 8).astype(np.float32)
            x[:20] = np.round(x[:20] * 2) / 2 * scale
            q = per_element_int_quant(np.broadcast_to(scale, x.shape).copy(),
                                      np.zeros(x.shape), np.broadcast_to(bits, x.shape),
                                      signed, narrow, mode)
            ours = ((q.values(q.levels(x)) - q.zeropt) * q.scale).astype(np.float32)
            ref = elementwise_int_quant(x, scale, np.float32(0), bits.astype(np.float32),
                                        signed, narrow, mode)
            np.testing.assert_array_equal(ours, ref)


# -- trained self-compressing fixtures (scripts/make_scn_fixtures.py) -------------------
import json  # noqa: E402
from pathlib import Path  # noqa: E402

SCN = Path(__file__).parent / "fixtures" / "scn"
FIXTURES = json.loads((SCN / "index.json").read_text())


@pytest.mark.parametrize("fix", FIXTURES, ids=lambda f: f["name"])
@pytest.mark.parametrize("form", ["tensor", "grouped"])
def test_trained_fixture_exact_and_pruned(fix, form):
    from bnncc import api
    refs = np.load(SCN / f"{fix['name']}.refs.npz")
    d = api.load(str(SCN / f"{fix['name']}_{form}.onnx"))
    y = d.run(refs["inputs"])
    assert np.array_equal(y, refs["outputs"])
    acc = float((y.argmax(1) == refs["labels"]).mean())
    assert acc == fix["accuracy"]          # the trained model's own held-out accuracy
    assert removed_channels(d) >= fix["zero_channels"] > 0
    assert_nothing_removable(d)
    before = sum(l.__dict__.get("removed", {}).get("weight_bits_before", 0) for l in d.layers())
    after = sum(l.__dict__.get("removed", {}).get("weight_bits_after", 0) for l in d.layers())
    assert after < before


def test_prune_off_keeps_channels_and_the_same_answer():
    from bnncc import frontend
    refs = np.load(SCN / "scn_mlp.refs.npz")
    d = frontend.import_model(str(SCN / "scn_mlp_tensor.onnx"), prune="off")
    assert removed_channels(d) == 0
    assert np.array_equal(d.run(refs["inputs"]), refs["outputs"])


def test_cli_reports_removed_channels_and_savings(tmp_path, capsys):
    """`inspect --json` lists per layer what went and why; `estimate --json` compares with
    the network built with every channel kept; `--prune off` keeps them."""
    from bnncc.cli import main
    model = str(SCN / "scn_digits_tensor.onnx")
    assert main(["inspect", "--json", model]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    removed = sum(l.get("removed", {}).get("constant_channels", 0) +
                  l.get("removed", {}).get("unread_channels", 0) for l in layers)
    assert removed >= next(f["zero_channels"] for f in FIXTURES if f["name"] == "scn_digits")
    assert all(l["removed"]["weight_bits_after"] < l["removed"]["weight_bits_before"]
               for l in layers if "removed" in l and "weight_bits_after" in l["removed"])
    assert main(["estimate", "--json", model]) == 0
    est = json.loads(capsys.readouterr().out)
    c = est["compression"]
    assert c["channels_removed"] == removed
    assert c["weight_bits"]["removed"] < c["weight_bits"]["kept"]
    assert c["saved"]["LUT"] == c["kept_totals"]["LUT"] - est["totals"]["LUT"]
    assert main(["estimate", "--json", "--prune", "off", model]) == 0
    assert "compression" not in json.loads(capsys.readouterr().out)
