"""Self-compressing networks: per-channel weight bit widths (zeros included), in the
tensor and the grouped form, golden == qonnx's executor exactly, and every channel that
carries no information removed from the hardware (bnncc.passes.prune)."""
import numpy as np
import pytest

from bnncc.frontend.lower import lower
from bnncc.ir import INPUT
from bnncc.layers import (MVAU, AddStreams, Concat, Duplicate, MaxPool, SlidingWindow, SumPool,
                          Thresholding)
from bnncc.passes.prune import _constant_rows
from bnncc.quantizers import ROUNDING_MODES, per_element_int_quant
from bnncc.testing.scn import (elementwise_int_quant, qonnx_reference, random_scn_network,
                               residual_example)

GROUPS, PER_GROUP = 8, 25


def removed_channels(design) -> int:
    return sum(l.__dict__.get("removed", {}).get(k, 0) for l in design.layers()
               for k in ("constant_channels", "unread_channels"))


def _compile_time_constant(design, name: str, c: int) -> bool:
    """Channel c of `name`'s stream is the same for every input (a simple upward look)."""
    if name == INPUT:
        return False
    l = design.layer(name)
    up = design.inputs_of(name)
    if isinstance(l, (MVAU, Thresholding)) and c in _constant_rows(l):
        return True
    if isinstance(l, MaxPool) and not isinstance(l, SumPool):
        return _compile_time_constant(design, up[0], c)
    if isinstance(l, AddStreams):     # an operand that no longer streams c adds 0
        return all(l.operand_channel(i, c) is None or
                   _compile_time_constant(design, p, l.operand_channel(i, c))
                   for i, p in enumerate(up))
    if isinstance(l, Concat):
        off = np.cumsum((0,) + tuple(l.channels))
        i = int(np.searchsorted(off, c, side="right") - 1)
        return _compile_time_constant(design, up[i], c - int(off[i]))
    return False


def _single_channel_source(design, name: str, c: int) -> bool:
    """Some producer of channel c (up through adds, concats, pooling) has one channel
    (which it keeps)."""
    if name == INPUT:
        return False
    l = design.layer(name)
    up = design.inputs_of(name)
    if isinstance(l, (MVAU, Thresholding)):
        return l.out_shape[-1] <= 1
    if isinstance(l, (MaxPool, Duplicate)):
        return _single_channel_source(design, up[0], c)
    if isinstance(l, AddStreams):
        return any(l.operand_channel(i, c) is not None and
                   _single_channel_source(design, p, l.operand_channel(i, c))
                   for i, p in enumerate(up))
    if isinstance(l, Concat):
        off = np.cumsum((0,) + tuple(l.channels))
        i = int(np.searchsorted(off, c, side="right") - 1)
        return _single_channel_source(design, up[i], c - int(off[i]))
    return False


def _kept_for_a_reason(design, name: str, c: int) -> bool:
    """A constant channel may stay only where the pass's rules keep it: it meets (after
    adds, concats and channel-wise layers) a padded window or a reader that cannot
    absorb a constant; an add absorbs it (both operands constant) or folds it in."""
    for r in design.graph.successors(name):
        l = design.layer(r)
        if isinstance(l, AddStreams):
            i = design.inputs_of(r).index(name)
            if _kept_for_a_reason(design, r, l.output_channel(i, c)):
                return True
        elif isinstance(l, Concat):
            i = design.inputs_of(r).index(name)
            if _kept_for_a_reason(design, r, int(sum(l.channels[:i])) + c):
                return True
        elif isinstance(l, (Thresholding, MaxPool, Duplicate)) and not isinstance(l, SumPool):
            if _kept_for_a_reason(design, r, c):
                return True
        elif isinstance(l, SlidingWindow) and any(l.pads):
            return True
        elif not isinstance(l, (MVAU, SlidingWindow)):
            return True
    return False


def _needed_upstream(design, name: str, c: int, reader: str) -> bool:
    """A channel-wise layer's input channel c must stay for another reader of it (then
    the layer keeps the channel even if its own output there is constant)."""
    if name == INPUT or any(r != reader for r in design.graph.successors(name)):
        return True
    l, up = design.layer(name), design.inputs_of(name)
    if isinstance(l, (Thresholding, MaxPool, Duplicate)):
        return _needed_upstream(design, up[0], c, name)
    if isinstance(l, AddStreams):
        return any(l.operand_channel(i, c) is not None and
                   _needed_upstream(design, p, l.operand_channel(i, c), name)
                   for i, p in enumerate(up))
    if isinstance(l, Concat):
        off = np.cumsum((0,) + tuple(l.channels))
        i = int(np.searchsorted(off, c, side="right") - 1)
        return _needed_upstream(design, up[i], c - int(off[i]), name)
    return False


def assert_nothing_removable(design):
    """An independent look at the pruned design: no layer before the last keeps an
    all-zero weight row or a channel no reachable input changes (a layer keeps one
    channel at least), unless it meets a padded window (or a reader that cannot absorb
    a constant); and no add or concat passes on a channel constant in all of its
    sources."""
    for l in design.layers():
        if not list(design.graph.successors(l.name)) or l.out_shape[-1] <= 1:
            continue
        if isinstance(l, (MVAU, Thresholding)):
            for c in _constant_rows(l):
                assert _kept_for_a_reason(design, l.name, c) or (
                    isinstance(l, Thresholding) and
                    _needed_upstream(design, design.inputs_of(l.name)[0], c, l.name)), (l.name, c)
            if isinstance(l, MVAU):
                for c in np.flatnonzero(np.all(l.weights == 0, axis=1)):
                    assert c in _constant_rows(l) or l.thresholds is None, (l.name, c)
        if isinstance(l, (AddStreams, Concat)):
            for c in range(l.out_shape[-1]):
                if _compile_time_constant(design, l.name, c):
                    assert _kept_for_a_reason(design, l.name, c) or \
                        _single_channel_source(design, l.name, c), (l.name, c)


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
    joins = [m["join"] for m in metas if m["join"] is not None]
    for kind in ("add", "add_pc", "concat"):
        assert sum(j["kind"] == kind for j in joins) > 15, kind
    assert sum(j["two_layers"] for j in joins) > 20 and sum(j["padded"] for j in joins) > 10
    assert sum(j["kind"] != "concat" and not j["two_layers"] for j in joins) > 10


@pytest.mark.parametrize("form", ["tensor", "grouped"])
def test_residual_removals_by_rule(form):
    """Known removals through a residual add: the stem's zero channels (read by both
    branches), the channel zero in both branches (a constant sum), the channels zero in
    one branch only (folded into the add, which stops reading that operand there), the
    channel the head ignores (unread after the add, so gone from both branches)."""
    model, x = residual_example(form)
    d = lower(model, "residual")
    assert np.array_equal(d.run(x), qonnx_reference(model, x, elementwise=form == "tensor"))
    rec = {l.kind + str(i): l.__dict__.get("removed", {}) for i, l in enumerate(d.layers())}
    by = {l.name: l for l in d.layers()}
    mv = [l for l in d.layers() if isinstance(l, MVAU)]
    add = next(l for l in d.layers() if isinstance(l, AddStreams))
    assert mv[0].removed["constant_channels"] == 2 and mv[0].mh == 6, rec
    for branch in mv[1:3]:       # rows 3 and 2 (A) / 5 (B) constant, row 6 unread
        assert branch.removed["constant_channels"] == 2, rec
        assert branch.removed["unread_channels"] == 1, rec
        assert branch.mh == 5 and branch.mw == 6
    assert add.removed == {"folded_constant_channels": 2, "sum_constant_channels": 1,
                           "sum_unread_channels": 1}
    assert add.in_shape == (6,) and add.in_shapes == [(5,), (5,)]
    assert [list(add.live_mask(i)) for i in (0, 1)] == [[1, 1, 0, 1, 1, 1], [1, 1, 1, 1, 0, 1]]
    assert by[d.inputs_of(mv[3].name)[0]].out_shape == (6,)
    assert mv[3].mw == 6
    assert_nothing_removable(d)


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
    assert acc == fix.get("torch_accuracy", acc)     # and torch's, where recorded
    # all zero-bit channels go, but those a padded window reads as a non-zero constant
    assert removed_channels(d) >= fix["zero_channels"] - fix.get("kept_through_padding", 0) > 0
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


def test_inspect_json_reports_removals_through_an_add(tmp_path, capsys):
    """`inspect --json`: per layer the channels removed and why, the add's constant sum
    and its unread channel included."""
    import onnx
    from bnncc.cli import main
    model, _ = residual_example("tensor")
    path = tmp_path / "residual.onnx"
    onnx.save(model, str(path))
    assert main(["inspect", "--json", str(path)]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    add = next(l for l in layers if l["kind"] == "AddStreams")
    assert add["removed"] == {"folded_constant_channels": 2, "sum_constant_channels": 1,
                              "sum_unread_channels": 1}
    assert add["operand_channels"] == [5, 5]
    mv = [l for l in layers if l["kind"] == "MVAU"]
    assert [l["removed"].get("constant_channels", 0) for l in mv] == [2, 2, 2, 0]
    assert [l["removed"].get("unread_channels", 0) for l in mv] == [0, 1, 1, 0]


def test_onnx_level_of_the_per_channel_form_says_why(tmp_path, capsys):
    """qonnx's executor cannot run per-channel bit widths: `cosim --levels onnx` on that form
    is one line naming the Quant (exit 2), and the grouped form runs at the onnx level."""
    from bnncc.cli import main
    x = np.load(SCN / "scn_mlp.refs.npz")["inputs"][:2]
    np.save(tmp_path / "x.npy", x)
    rc = main(["cosim", str(SCN / "scn_mlp_tensor.onnx"), "-i", str(tmp_path / "x.npy"),
               "--levels", "onnx,golden"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "(Quant)" in err[0] and "per-channel bit widths" in err[0]
    assert main(["cosim", str(SCN / "scn_mlp_grouped.onnx"), "-i", str(tmp_path / "x.npy"),
                 "--levels", "onnx,golden"]) == 0
