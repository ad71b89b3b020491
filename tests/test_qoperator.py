"""onnxruntime's com.microsoft QLinearAdd / QLinearMul / QLinearGlobalAveragePool /
QLinearConcat against
onnxruntime itself (the reference; MLAS's x86-64 kernels, docs/qoperator.md), on every
integer the operand can hold, and the quantize_static residual CNN fixture
(scripts/make_qoperator_models.py): conv-BN-relu blocks, a QLinearAdd, a
QLinearGlobalAveragePool head."""
import numpy as np
import onnx
import pytest
from conftest import fixture_path
from onnx import TensorProto, helper, numpy_helper

from bnncc.frontend.lower import lower

F32 = np.float32
MS = "com.microsoft"


def _ort(model, x):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


def _model(nodes, inits, shape, out_shape, name="m"):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(MS, 1)])
    m.ir_version = 8
    return m


def _scalars(**kw):
    out = []
    for k, v in kw.items():
        out.append(numpy_helper.from_array(np.asarray(v, F32 if k.startswith("s") else np.uint8), k))
    return out


def _all_codes(rng, shape, s, zp):
    """Float inputs whose QuantizeLinear codes run through every uint8 value per channel."""
    n = int(np.prod(shape[2:]))
    q = np.stack([rng.permutation(np.resize(np.arange(256), n)) for _ in range(shape[1])])
    return ((q.reshape(shape).astype(F32) - F32(zp)) * F32(s)).astype(F32)


def _quant_in(s, zp):
    return helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["q"], name="quant"), \
        _scalars(sx=s, zx=zp)


def _dequant_out(src, s_name, z_name):
    return helper.make_node("DequantizeLinear", [src, s_name, z_name], ["y"], name="dequant")


def _golden(m, x):
    return np.asarray(lower(m, "m.onnx").run(x)).reshape(x.shape[0], -1)


def _rand_params(rng):
    return [F32(np.exp(rng.uniform(-4, -1))) for _ in range(3)], \
        [int(rng.integers(0, 256)) for _ in range(3)]


@pytest.mark.parametrize("const_shape", [(), (1, 4, 1, 1)], ids=["per-tensor", "per-channel"])
def test_qlinear_add_of_a_constant_is_bit_exact(const_shape):
    """One fused multiply-add of the stream (MLAS's scalar-operand path): exact on all 256
    codes of every channel, for random scales and zero points."""
    rng = np.random.default_rng(1)
    shape = (1, 4, 16, 16)
    for trial in range(12):
        (sa, sb, sc), (za, zb, zc) = _rand_params(rng)
        qn, inits = _quant_in(sa, za)
        c = rng.integers(0, 256, size=const_shape).astype(np.uint8)
        inits += _scalars(sb=sb, zb=zb, sc=sc, zc=zc) + [numpy_helper.from_array(c, "c")]
        ins = ["q", "sx", "zx", "c", "sb", "zb", "sc", "zc"] if trial % 2 else \
            ["c", "sb", "zb", "q", "sx", "zx", "sc", "zc"]
        nodes = [qn, helper.make_node("QLinearAdd", ins, ["a"], name="qadd", domain=MS),
                 _dequant_out("a", "sc", "zc")]
        m = _model(nodes, inits, list(shape), list(shape))
        x = _all_codes(rng, shape, sa, za)
        ref = _ort(m, x).reshape(1, -1)
        assert np.array_equal(_golden(m, x), ref), trial


def test_qlinear_add_of_a_same_shape_constant_is_bit_exact():
    """A (1, N) tensor plus a constant of its shape: the kernel's vector path (two fused
    multiply-adds, the constant's first); every code meets 4 random constants."""
    rng = np.random.default_rng(5)
    n = 1024
    for trial in range(12):
        (sa, sb, sc), (za, zb, zc) = _rand_params(rng)
        qn, inits = _quant_in(sa, za)
        c = rng.integers(0, 256, size=(1, n) if trial % 2 else (n,)).astype(np.uint8)
        inits += _scalars(sb=sb, zb=zb, sc=sc, zc=zc) + [numpy_helper.from_array(c, "c")]
        nodes = [qn, helper.make_node("QLinearAdd", ["q", "sx", "zx", "c", "sb", "zb", "sc", "zc"], ["a"],
                                      name="qadd", domain=MS), _dequant_out("a", "sc", "zc")]
        m = _model(nodes, inits, [1, n], [1, n])
        q = rng.permutation(np.resize(np.arange(256), n))[None]
        x = ((q.astype(F32) - F32(za)) * F32(sa)).astype(F32)
        assert np.array_equal(_golden(m, x), _ort(m, x)), trial


@pytest.mark.parametrize("const_shape", [(), (1, 4, 1, 1)], ids=["per-tensor", "per-channel"])
def test_qlinear_mul_by_a_constant_is_bit_exact(const_shape):
    """Integer product, float32 multiplier, + zero point: exact, including negative and
    zero factors (b - zb), which flip or freeze a channel."""
    rng = np.random.default_rng(2)
    shape = (1, 4, 16, 16)
    flipped = False
    for trial in range(12):
        (sa, sb, sc), (za, zb, zc) = _rand_params(rng)
        sc = F32(sa * sb * rng.uniform(20, 200))
        qn, inits = _quant_in(sa, za)
        c = rng.integers(0, 256, size=const_shape).astype(np.uint8)
        if const_shape and trial == 0:
            c.reshape(-1)[0] = zb    # a channel multiplied by zero
        flipped |= bool(np.any(c.astype(int) < zb))
        inits += _scalars(sb=sb, zb=zb, sc=sc, zc=zc) + [numpy_helper.from_array(c, "c")]
        nodes = [qn, helper.make_node("QLinearMul", ["q", "sx", "zx", "c", "sb", "zb", "sc", "zc"],
                                      ["a"], name="qmul", domain=MS),
                 _dequant_out("a", "sc", "zc")]
        m = _model(nodes, inits, list(shape), list(shape))
        x = _all_codes(rng, shape, sa, za)
        assert np.array_equal(_golden(m, x), _ort(m, x).reshape(1, -1)), trial
    assert flipped


@pytest.mark.parametrize("channels_last", [0, 1])
def test_qlinear_global_average_pool_is_bit_exact(channels_last):
    rng = np.random.default_rng(3 + channels_last)
    for trial in range(8):
        c, h, w = 4, int(rng.integers(2, 9)), int(rng.integers(2, 9))
        (sx, sy, _), (zx, zy, _) = _rand_params(rng)
        sy = F32(sx * rng.uniform(0.3, 3))
        conv_w = np.eye(c, dtype=np.int8).reshape(c, c, 1, 1)
        # a 1x1 identity QLinearConv gives the pool a hardware producer
        inits = _scalars(sx=sx, zx=zx, sy=sy, zy=zy, sw=1.0) + \
            [numpy_helper.from_array(conv_w, "w"), numpy_helper.from_array(np.zeros((), np.int8), "zw")]
        nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["q"], name="quant"),
                 helper.make_node("QLinearConv", ["q", "sx", "zx", "w", "sw", "zw", "sx", "zx"], ["qc"],
                                  name="conv", kernel_shape=[1, 1])]
        src = "qc"
        if channels_last:
            nodes.append(helper.make_node("Transpose", ["qc"], ["qt"], name="nhwc", perm=[0, 2, 3, 1]))
            src = "qt"
        nodes += [helper.make_node("QLinearGlobalAveragePool", [src, "sx", "zx", "sy", "zy"], ["p"],
                                   name="gap", domain=MS, channels_last=channels_last),
                  _dequant_out("p", "sy", "zy")]
        out = [1, 1, 1, c] if channels_last else [1, c, 1, 1]
        m = _model(nodes, inits, [1, c, h, w], out)
        x = np.concatenate([_all_codes(rng, (1, c, h, w), sx, zx) for _ in range(16)])
        ref = np.concatenate([_ort(m, x[i:i + 1]).reshape(1, -1) for i in range(len(x))])
        assert np.array_equal(_golden(m, x), ref), trial


def test_qlinear_concat_is_bit_exact():
    """Each input requantized to the output's parameters (onnxruntime's float32 table,
    or a copy when they are equal), then one channel Concat: all 256 codes."""
    rng = np.random.default_rng(8)
    w = np.eye(2, dtype=np.int8).reshape(2, 2, 1, 1)
    for trial in range(9):
        (s1, s2, sy), (z1, z2, zy) = _rand_params(rng)
        if trial % 3 == 0:
            s2, z2 = sy, zy        # this input is copied
        inits = _scalars(sx=s1, zx=z1, s2=s2, z2=z2, sy=sy, zy=zy, sw=F32(s2 / s1)) + \
            [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.zeros((), np.int8), "zw")]
        nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["q"], name="quant"),
                 helper.make_node("QLinearConv", ["q", "sx", "zx", "w", "sw", "zw", "s2", "z2"], ["b"],
                                  name="conv", kernel_shape=[1, 1]),
                 helper.make_node("QLinearConcat", ["sy", "zy", "q", "sx", "zx", "b", "s2", "z2"], ["c"],
                                  name="cat", domain=MS, axis=1),
                 _dequant_out("c", "sy", "zy")]
        m = _model(nodes, inits, [1, 2, 16, 16], [1, 4, 16, 16])
        x = _all_codes(rng, (1, 2, 16, 16), s1, z1)
        d = lower(m, "m.onnx")
        assert [l.kind for l in d.layers()].count("Concat") == 1
        assert np.array_equal(np.asarray(d.run(x)).reshape(1, -1), _ort(m, x).reshape(1, -1)), trial


def _swap_add(sa, za, sc, zc, sb, zb):
    """a = QuantizeLinear(x), b = a with its two channels swapped (an exact 1x1
    QLinearConv to scale sb), QLinearAdd(a, b): every (a, b) pair of codes occurs."""
    w = np.array([[0, 1], [1, 0]], np.int8).reshape(2, 2, 1, 1)
    sw = F32(sb / sa) if F32(F32(sa) * F32(sb / sa) / F32(sb)) == 1 else None
    inits = _scalars(sx=sa, zx=za, sb=sb, zb=zb, sc=sc, zc=zc, sw=sw) + \
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.zeros((), np.int8), "zw")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["q"], name="quant"),
             helper.make_node("QLinearConv", ["q", "sx", "zx", "w", "sw", "zw", "sb", "zb"], ["b"],
                              name="swap", kernel_shape=[1, 1]),
             helper.make_node("QLinearAdd", ["q", "sx", "zx", "b", "sb", "zb", "sc", "zc"], ["a"],
                              name="qadd", domain=MS),
             _dequant_out("a", "sc", "zc")]
    return _model(nodes, inits, [1, 2, 256, 256], [1, 2, 256, 256])


@pytest.mark.parametrize("tabulate", [True, False], ids=["kernel-table", "exact-sum"])
def test_qlinear_add_of_two_streams(tabulate, monkeypatch):
    """An AddStreams (ka * a + kb * b with ka / kb = rA / rB exactly), then thresholds.
    Where MLAS's float32 outputs (two fused multiply-adds) are a non-decreasing function
    of ka * a + kb * b over all code pairs, the thresholds are read off that table: bit
    for bit on all 65,536 pairs. Otherwise (forced here) they round the exact value of
    MLAS's formula, and onnxruntime may differ only where that value lies within float32
    noise (1e-6 relative) of a rounding tie."""
    from bnncc.frontend.ops import qoperator
    if not tabulate:
        monkeypatch.setattr(qoperator, "_mlas_add_table", lambda *a: None)
    rng = np.random.default_rng(4)
    q = np.stack([np.repeat(np.arange(256), 256), np.tile(np.arange(256), 256)]).reshape(1, 2, 256, 256)
    tried = diffs = 0
    while tried < 6:
        (sa, sb, sc), (za, zb, zc) = _rand_params(rng)
        sb = sa if tried == 0 else F32(sa * F32(rng.uniform(0.25, 4)))
        zb = za
        if F32(F32(sa) * F32(sb / sa) / F32(sb)) != 1:
            continue      # the swap conv must be exact
        tried += 1
        m = _swap_add(sa, za, sc, zc, sb, zb)
        x = ((q.astype(F32) - F32(za)) * F32(sa)).astype(F32)
        ref = _ort(m, x).reshape(-1)
        d = lower(m, "m.onnx")
        assert [l.kind for l in d.layers()].count("AddStreams") == 1
        y = np.asarray(d.run(x)).reshape(-1)
        assert any("not monotone" in n for n in d.notes) != tabulate
        if tabulate:
            assert np.array_equal(y, ref)
            continue
        # the exact value of the kernel's formula, and how close it is to a tie
        ra, rb = F32(sa / sc), F32(sb / sc)
        f = F32(F32(zc) - F32(np.float64(ra) * za + np.float64(F32(rb * F32(zb)))))
        a, b = q[0, 0].reshape(-1), q[0, 1].reshape(-1)
        va = np.concatenate([a, b]).astype(np.float64) * np.float64(ra)
        vb = np.concatenate([b, a]).astype(np.float64) * np.float64(rb)
        v = va + vb + np.float64(f)
        mag = np.abs(va) + np.abs(vb) + abs(float(f))
        near = np.abs(v - np.floor(v) - 0.5) <= 1e-6 * mag
        differ = y != ref
        assert not np.any(differ & ~near), np.flatnonzero(differ & ~near)[:5]
        assert np.all(np.abs(y - ref)[differ] <= float(sc) * 1.0001)
        diffs += int(differ.sum())
    assert diffs <= 64


def _refused_models():
    """QOperator constructs bnncc cannot lower exactly: (model, node name, op, reason)."""
    mul = _swap_add(F32(0.02), 128, F32(0.05), 0, F32(0.02), 128)
    for n in mul.graph.node:
        if n.op_type == "QLinearAdd":
            n.op_type, n.name = "QLinearMul", "qmul"
    yield "stream_mul", mul, "qmul", "QLinearMul", "two non-constant tensors"
    qn, inits = _quant_in(F32(0.02), 128)
    inits += _scalars(sy=F32(0.03), zy=100)
    cat = [qn, helper.make_node("QLinearConcat", ["sy", "zy", "q", "sx", "zx", "q", "sx", "zx"],
                                ["c"], name="cat", domain=MS, axis=2), _dequant_out("c", "sy", "zy")]
    yield "concat_h", _model(cat, inits, [1, 2, 4, 4], [1, 2, 8, 4]), "cat", "QLinearConcat", \
        "channel axis only"
    qn, inits = _quant_in(F32(0.02), 128)
    inits += _scalars(sy=F32(0.03), zy=100)
    lrelu = [qn, helper.make_node("QLinearLeakyRelu", ["q", "sx", "zx", "sy", "zy"], ["c"], name="lrelu",
                                  domain=MS, alpha=0.1), _dequant_out("c", "sy", "zy")]
    yield "leaky", _model(lrelu, inits, [1, 2, 4, 4], [1, 2, 4, 4]), "lrelu", "QLinearLeakyRelu", \
        "lookup table"
    qn, inits = _quant_in(F32(0.02), 128)
    inits += _scalars(sb=F32(0.01), zb=3, sc=F32(0.03), zc=10) + \
        [numpy_helper.from_array(np.arange(32, dtype=np.uint8).reshape(1, 2, 4, 4), "c")]
    full = [qn, helper.make_node("QLinearAdd", ["q", "sx", "zx", "c", "sb", "zb", "sc", "zc"], ["a"],
                                 name="qadd", domain=MS), _dequant_out("a", "sc", "zc")]
    yield "full_const_add", _model(full, inits, [1, 2, 4, 4], [1, 2, 4, 4]), "qadd", "QLinearAdd", \
        "varies within a channel"
    qn, inits = _quant_in(F32(0.02), 128)
    inits += [numpy_helper.from_array(np.array([0.01, 0.02], F32), "sb")] + \
        _scalars(zb=3, sc=F32(0.03), zc=10) + [numpy_helper.from_array(np.uint8(7), "c")]
    pc = [qn, helper.make_node("QLinearAdd", ["q", "sx", "zx", "c", "sb", "zb", "sc", "zc"], ["a"],
                               name="qadd", domain=MS), _dequant_out("a", "sc", "zc")]
    yield "per_channel_scale", _model(pc, inits, [1, 2, 4, 4], [1, 2, 4, 4]), "qadd", "QLinearAdd", \
        "per-tensor"


@pytest.mark.parametrize("case", list(_refused_models()), ids=lambda c: c[0])
def test_inexact_constructs_exit_2_naming_node_op_and_why(case, cli, tmp_path):
    name, m, node, op, why = case
    p = tmp_path / f"{name}.onnx"
    onnx.save(m, p)
    for cmd in (("inspect", p), ("estimate", p)):
        rc, _, err = cli(*cmd)
        assert rc == 2 and len(err.strip().splitlines()) == 1, err
        assert f"{name}.onnx" in err and node in err and f"({op})" in err and why in err, err
        assert "Traceback" not in err


RES = "qop/qop_rescnn_pc_u8"
# its 8-bit requantizations (255 thresholds a channel) do not fit the default Pynq-Z2
RES_BOARD = ("--board", "zcu104")


def test_residual_cnn_fixture_is_what_quantize_static_writes():
    m = onnx.load(fixture_path(f"{RES}.onnx"))
    ops = {(n.domain, n.op_type) for n in m.graph.node}
    assert {("", "QLinearConv"), (MS, "QLinearAdd"), (MS, "QLinearGlobalAveragePool"),
            (MS, "QGemm")} <= ops
    assert not any(n.op_type in ("Conv", "BatchNormalization", "Add") for n in m.graph.node)


def test_residual_cnn_run_equals_onnxruntime(cli, tmp_path):
    refs = np.load(fixture_path(f"{RES}.refs.npz"))
    m = onnx.load(fixture_path(f"{RES}.onnx"))
    assert np.array_equal(np.concatenate([_ort_input(m, x[None]) for x in refs["inputs"][:8]]),
                          refs["outputs"][:8])
    np.save(tmp_path / "in.npy", refs["inputs"])
    rc, _, err = cli("run", fixture_path(f"{RES}.onnx"), "-i", tmp_path / "in.npy",
                     "-o", tmp_path / "out.npy", *RES_BOARD)
    assert rc == 0, err
    y = np.load(tmp_path / "out.npy").reshape(refs["outputs"].shape)
    assert np.array_equal(y, refs["outputs"])
    assert len(np.unique(refs["outputs"])) > 20
    layers = lower(m, RES).layers()
    kinds = [l.kind for l in layers]
    assert kinds.count("AddStreams") == 1 and kinds.count("SumPool") == 1
    # the exact scale ratio is 4779506 / 896727; a convergent of it orders every code
    # pair as onnxruntime's kernel does, so the add and its thresholds stay narrow
    add = next(l for l in layers if l.kind == "AddStreams")
    assert (add.ka, add.kb) == (517, 97) and add.odt.bits <= 18


def _ort_input(m, x):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(m.SerializeToString(), so,
                                providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def test_residual_cnn_compiles(cli, tmp_path):
    """(Twice the same bytes: tests/test_compile.py.)"""
    rc, _, err = cli("compile", fixture_path(f"{RES}.onnx"), "-o", tmp_path / "a", *RES_BOARD)
    assert rc == 0, err
    for must in ("hls/top.cpp", "rtl/bnncc_top.v", "report.json"):
        assert (tmp_path / "a" / must).is_file(), must


def test_int8_activations_add_and_pool_are_bit_exact():
    """quantize_static with QInt8 activations: the int8 kernels (same formulas, signed
    codes) for a QLinearAdd of two streams and the pool after it, on all code pairs."""
    rng = np.random.default_rng(6)
    q = np.stack([np.repeat(np.arange(-128, 128), 256),
                  np.tile(np.arange(-128, 128), 256)]).reshape(1, 2, 256, 256)
    i8 = lambda **kw: [numpy_helper.from_array(np.asarray(v, F32 if k.startswith("s") else np.int8), k)
                       for k, v in kw.items()]
    tried = 0
    while tried < 3:
        sa, s_c = F32(np.exp(rng.uniform(-4, -1))), F32(np.exp(rng.uniform(-4, -1)))
        sb = F32(sa * F32(rng.uniform(0.25, 4)))
        za, zc = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
        if F32(F32(sa) * F32(sb / sa) / F32(sb)) != 1:
            continue
        tried += 1
        w = np.array([[0, 1], [1, 0]], np.int8).reshape(2, 2, 1, 1)
        inits = i8(sx=sa, zx=za, sb=sb, zb=za, sc=s_c, zc=zc, sw=F32(sb / sa)) + \
            [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.zeros((), np.int8), "zw")]
        head = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["q"], name="quant"),
                helper.make_node("QLinearConv", ["q", "sx", "zx", "w", "sw", "zw", "sb", "zb"], ["b"],
                                 name="swap", kernel_shape=[1, 1]),
                helper.make_node("QLinearAdd", ["q", "sx", "zx", "b", "sb", "zb", "sc", "zc"], ["a"],
                                 name="qadd", domain=MS)]
        add = _model(head + [_dequant_out("a", "sc", "zc")], inits, [1, 2, 256, 256], [1, 2, 256, 256])
        pool = _model(head + [helper.make_node("QLinearGlobalAveragePool", ["a", "sc", "zc", "sx", "zx"],
                                               ["p"], name="gap", domain=MS),
                              _dequant_out("p", "sx", "zx")], inits, [1, 2, 256, 256], [1, 2, 1, 1])
        x = ((q.astype(F32) - F32(za)) * F32(sa)).astype(F32)
        for m in (add, pool):
            assert np.array_equal(_golden(m, x), _ort(m, x).reshape(1, -1)), tried
