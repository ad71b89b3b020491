"""Export forms: the binary families rewritten the way real exporters write them.

``random_export_network(seed, form)`` takes ``random_network`` number ``seed`` and
rewrites its graph, keeping what it computes:

``dynamic-batch``
    the leading axis of the input, output and value infos symbolic (torch
    ``dynamic_axes`` / dynamo / tf2onnx names), and every flatten before a fully
    connected layer written as shape arithmetic on the runtime shape
    (``x.view(x.size(0), -1)``: Shape / Gather / Unsqueeze / Concat, or Shape / Slice /
    Concat, into Reshape).
``where-sign``
    every activation ``Sign`` and ``BipolarQuant`` written as tutorials write sign:
    ``torch.where(x >= 0, 1, -1)`` (GreaterOrEqual + Where, constants or
    ConstantOfShape + Neg as the TorchScript exporter writes them), ``Less`` with the
    outcomes swapped, ``Not(LessOrEqual)``, ``Cast(Greater) * 2 - 1``, and the
    straight-through ``h + (where(h >= 0, 1, -1) - h).detach()`` after a Hardtanh.  Where the
    rewrite changes sign(0) (ONNX Sign(0) = 0, x >= 0 gives +1) the reference is the
    rewritten graph's own.
``bn-folded``
    (plain families) every ``Sign(w)`` -> MatMul / Gemm / Conv -> BatchNormalization
    folded the way the dynamo exporter folds it: float weights s_c * sign(w) with
    s_c = gamma / sqrt(var + eps) in float32, and a bias; MatMul becomes Gemm
    (transB=1).  The generator's "random" BatchNorm keeps a float32 margin for this
    fusion, and "dyadic" BatchNorm folds exactly.

``outputs`` are the reference executors' outputs on the rewritten model;
``meta["base_outputs"]`` the original network's (equal unless sign(0) changed).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .binary import FAMILIES, random_network
from .common import NetCase
from .reference import reference_outputs

EXPORT_FORMS = ("dynamic-batch", "where-sign", "bn-folded")
_BATCH_NAMES = ("batch", "N", "batch_size", "unk__41", "s0")


class _Edit:
    """Rebuild a graph's node list with replacements, fresh names and new initializers."""

    def __init__(self, model: onnx.ModelProto, tag: str):
        self.model, self.tag, self.k = model, tag, 0
        self.inits = {t.name: t for t in model.graph.initializer}

    def name(self, base: str) -> str:
        self.k += 1
        return f"{self.tag}{self.k}_{base}"

    def const(self, base: str, arr) -> str:
        n = self.name(base)
        self.model.graph.initializer.append(numpy_helper.from_array(np.asarray(arr), n))
        return n

    def node(self, op, ins, outs=None, **attrs):
        outs = outs or [self.name(op.lower())]
        return helper.make_node(op, list(ins), list(outs), name=self.name(op), **attrs)

    def array(self, name: str):
        return numpy_helper.to_array(self.inits[name]) if name in self.inits else None


def _replace_nodes(model, fn) -> int:
    """fn(node) -> list of nodes replacing it, or None to keep it. Returns the count."""
    out, n = [], 0
    for node in list(model.graph.node):
        r = fn(node)
        if r is None:
            out.append(node)
        else:
            out.extend(r)
            n += 1
    del model.graph.node[:]
    model.graph.node.extend(out)
    return n


def _dynamic_batch(model, rng) -> int:
    g = model.graph
    e = _Edit(model, "dyn")
    batch = str(rng.choice(_BATCH_NAMES))
    live = {g.input[0].name}     # tensors computed from the input carry the batch axis
    for node in g.node:
        if any(i in live for i in node.input):
            live.update(node.output)
    for vi in list(g.input[:1]) + list(g.output) + list(g.value_info):
        dims = vi.type.tensor_type.shape.dim
        if len(dims) and vi.name in live:
            dims[0].Clear()
            dims[0].dim_param = batch

    def flatten(node):
        if node.op_type not in ("Reshape", "Flatten"):
            return None
        if node.op_type == "Reshape":
            target = e.array(node.input[1])
            if target is None or len(target) != 2:
                return None
        x = node.input[0]
        shp = e.node("Shape", [x])
        if rng.random() < 0.6:    # TorchScript: x.size(0) -> Gather + Unsqueeze
            g0 = e.node("Gather", [shp.output[0], e.const("idx", np.array(0, np.int64))], axis=0)
            lead = e.node("Unsqueeze", [g0.output[0], e.const("axes", np.array([0], np.int64))])
            pre = [shp, g0, lead]
        else:                     # dynamo style slice of the shape
            lead = e.node("Slice", [shp.output[0], e.const("st", np.array([0], np.int64)),
                                    e.const("en", np.array([1], np.int64))])
            pre = [shp, lead]
        cat = e.node("Concat", [lead.output[0], e.const("rest", np.array([-1], np.int64))],
                     axis=0)
        return pre + [cat, e.node("Reshape", [x, cat.output[0]], list(node.output))]

    n = _replace_nodes(model, flatten)
    _prune(model)
    return n + 1     # the input's batch axis itself


def _where_sign(model, rng) -> int:
    e = _Edit(model, "ws")
    f32 = np.float32

    def rewrite(node):
        x = node.input[0] if node.input else ""
        if x in e.inits or node.op_type not in ("Sign", "BipolarQuant"):
            return None
        y = list(node.output)
        if node.op_type == "BipolarQuant":
            s = e.array(node.input[1])
            ge = e.node("GreaterOrEqual", [x, e.const("zero", f32(0))])
            return [ge, e.node("Where", [ge.output[0], e.const("s", s.astype(f32)),
                                         e.const("ms", (-s).astype(f32))], y)]
        form = int(rng.integers(0, 6))
        if form == 5:    # straight-through: h = hardtanh(x); h + (where(h >= 0, 1, -1) - h)
            h = e.node("Clip", [x, e.const("lo", f32(-1)), e.const("hi", f32(1))])
            ge = e.node("GreaterOrEqual", [h.output[0], e.const("zero", f32(0))])
            w = e.node("Where", [ge.output[0], e.const("one", f32(1)), e.const("mone", f32(-1))])
            d = e.node("Sub", [w.output[0], h.output[0]])
            return [h, ge, w, d, e.node("Add", [h.output[0], d.output[0]], y)]
        if form == 0:    # torch.where(x >= 0, 1., -1.)
            ge = e.node("GreaterOrEqual", [x, e.const("zero", f32(0))])
            return [ge, e.node("Where", [ge.output[0], e.const("one", f32(1)),
                                         e.const("mone", f32(-1))], y)]
        if form == 1:    # TorchScript: ones_like / -ones_like through the runtime shape
            ge = e.node("GreaterOrEqual", [x, e.const("zero", f32(0))])
            shp = e.node("Shape", [x])
            ones = e.node("ConstantOfShape", [shp.output[0]],
                          value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]))
            neg = e.node("Neg", [ones.output[0]])
            return [ge, shp, ones, neg, e.node("Where", [ge.output[0], ones.output[0],
                                                         neg.output[0]], y)]
        if form == 2:    # torch.where(x < 0, -1., 1.)
            lt = e.node("Less", [x, e.const("zero", f32(0))])
            return [lt, e.node("Where", [lt.output[0], e.const("mone", f32(-1)),
                                         e.const("one", f32(1))], y)]
        if form == 3:    # ~(x <= 0): sign(0) = -1
            le = e.node("LessOrEqual", [x, e.const("zero", f32(0))])
            nt = e.node("Not", [le.output[0]])
            return [le, nt, e.node("Where", [nt.output[0], e.const("one", f32(1)),
                                             e.const("mone", f32(-1))], y)]
        gt = e.node("Greater", [x, e.const("zero", f32(0))])   # (x > 0).float() * 2 - 1
        c = e.node("Cast", [gt.output[0]], to=TensorProto.FLOAT)
        m = e.node("Mul", [c.output[0], e.const("two", f32(2))])
        return [gt, c, m, e.node("Sub", [m.output[0], e.const("one", f32(1))], y)]

    return _replace_nodes(model, rewrite)


def _bn_folded(model, rng) -> int:
    e = _Edit(model, "bnf")
    g = model.graph
    prod = {o: n for n in g.node for o in n.output}
    dead: set[str] = set()
    f32 = np.float32

    def sign_weights(name):
        """sign(w) as stored behind Sign [-> Transpose], or None."""
        n = prod.get(name)
        if n is None:
            return None
        if n.op_type == "Transpose":
            inner = sign_weights(n.input[0])
            perm = next(a.ints for a in n.attribute if a.name == "perm")
            return None if inner is None else (np.transpose(inner[0], perm), inner[1] + [n.name])
        if n.op_type == "Sign" and n.input[0] in e.inits:
            return np.sign(e.array(n.input[0])).astype(f32), [n.name]
        return None

    def fold(node):
        if node.op_type != "BatchNormalization":
            return None
        mm, b0 = prod.get(node.input[0]), f32(0)
        if mm is not None and mm.op_type == "Add" and e.array(mm.input[1]) is not None:
            b0, add = e.array(mm.input[1]).astype(f32).reshape(-1), mm    # MatMul + Add(bias)
            mm = prod.get(mm.input[0])
            dead.add(add.name)
        if mm is None or mm.op_type not in ("MatMul", "Gemm", "Conv"):
            return None
        sw = sign_weights(mm.input[1])
        if sw is None:
            return None
        w, used = sw
        gamma, beta, mean, var = (e.array(n).astype(f32) for n in node.input[1:5])
        eps = f32(next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5))
        scale = (gamma / np.sqrt(var + eps)).astype(f32)
        if len(mm.input) > 2 and mm.input[2]:
            b0 = b0 + e.array(mm.input[2]).astype(f32)
        bias = ((b0 - mean) * scale + beta).astype(f32)
        dead.update(used + [mm.name])
        y = list(node.output)
        if mm.op_type == "Conv":
            wf = (w * scale[:, None, None, None]).astype(f32)
            return [e.node("Conv", [mm.input[0], e.const("w", wf), e.const("b", bias)], y,
                           **{a.name: helper.get_attribute_value(a) for a in mm.attribute})]
        trans_b = any(a.name == "transB" and a.i for a in mm.attribute)
        wt = w if trans_b else w.T                      # (M, K) for Gemm transB=1
        wf = (wt * scale[:, None]).astype(f32)
        return [e.node("Gemm", [mm.input[0], e.const("w", wf), e.const("b", bias)], y,
                       transB=1)]

    n = _replace_nodes(model, fold)
    kept = [x for x in g.node if x.name not in dead]
    del g.node[:]
    g.node.extend(kept)
    _prune(model)
    return n


def _prune(model) -> None:
    """Drop initializers and value infos nothing uses any more."""
    g = model.graph
    used = {i for x in g.node for i in x.input}
    inits = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(inits)
    names = {o for x in g.node for o in x.output}
    vis = [v for v in g.value_info if v.name in names]
    del g.value_info[:]
    g.value_info.extend(vis)


_REWRITE = {"dynamic-batch": _dynamic_batch, "where-sign": _where_sign, "bn-folded": _bn_folded}


def random_export_network(seed: int, form: str | None = None, n_inputs: int = 8) -> NetCase:
    """``random_network(seed, family)`` rewritten in export form ``form`` (default:
    EXPORT_FORMS[seed % 3]); the family cycles with seed // 3 (plain only for bn-folded).
    A base network with nothing to rewrite (no activation sign) is replaced by the next
    one of its family (seed + 100000 k)."""
    if form is None:
        form = EXPORT_FORMS[seed % len(EXPORT_FORMS)]
    if form not in EXPORT_FORMS:
        raise ValueError(f"unknown export form {form!r}; expected one of {EXPORT_FORMS}")
    fams = ("plain-fc", "plain-conv") if form == "bn-folded" else FAMILIES
    family = fams[(seed // len(EXPORT_FORMS)) % len(fams)]
    rng = np.random.default_rng([seed, EXPORT_FORMS.index(form), 7])
    for k in range(64):   # the first base network that has something to rewrite
        base = random_network(seed + 100_000 * k, family, n_inputs)
        model = onnx.ModelProto()
        model.CopyFrom(base.model)
        n = _REWRITE[form](model, rng)
        if n:
            break
    onnx.checker.check_model(model)
    meta = dict(base.meta)
    meta.update(form=form, base=base.name, rewrites=n, base_outputs=base.outputs)
    ref = model
    if form == "dynamic-batch" and family.startswith("qonnx"):
        # qonnx's executor feeds inputs of the declared shape: give it batch 1 (the shape
        # arithmetic still runs, on the runtime shape)
        ref = onnx.ModelProto()
        ref.CopyFrom(model)
        for vi in (ref.graph.input[0], ref.graph.output[0]):
            d = vi.type.tensor_type.shape.dim[0]
            d.Clear()
            d.dim_value = 1
        del ref.graph.value_info[:]
    outputs = reference_outputs(ref, base.inputs)
    return NetCase(name=f"{form}-{base.name}", model=model, inputs=base.inputs,
                   outputs=outputs, family=form, meta=meta)


def iter_export_networks(n: int, start: int = 0, form: str | None = None, n_inputs: int = 8):
    for seed in range(start, start + n):
        yield random_export_network(seed, form, n_inputs)
