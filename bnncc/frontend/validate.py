"""Refuse an invalid model before anything is computed from it.

The lowering trusts what it reads: a stride of 0 would divide by zero, a `signed` of
"0" (a string, so truthy) would quietly pick the wrong integer type. So every attribute
of every op bnncc lowers is checked here for its type and range; standard ops also go
through onnx's own node checker (attribute types against the op's schema) and strict
shape inference (which catches e.g. a `kernel_shape` that contradicts the weights when
shapes are known). Each problem is one BnnccError naming file, node, op and the value.
"""
from __future__ import annotations

import math
import re

import onnx
from onnx import AttributeProto as A
from onnx import checker, shape_inference

from ..errors import BnnccError, UnsupportedError
from ..quantizers import ROUNDING_MODES

INT, INTS, FLOAT, STRING = A.INT, A.INTS, A.FLOAT, A.STRING
MAX_OPSET = onnx.defs.onnx_opset_version()


# (type, check) per attribute; a check returns an error text or None
def _bool(v):
    return None if v in (0, 1) else "must be 0 or 1"


def _pos(v):
    return None if all(int(x) >= 1 for x in v) else "must be positive"


def _nonneg(v):
    return None if all(int(x) >= 0 for x in v) else "must not be negative"


def _finite(v):
    return None if math.isfinite(v) else "must be finite"


def _choice(*names):
    def check(v):
        return None if _text(v).upper() in names else f"must be one of {', '.join(names)}"
    return check


def _len(n, inner=None):
    def check(v):
        if len(v) != n:
            return f"must have {n} values"
        return inner(v) if inner else None
    return check


def _all(*checks):
    def check(v):
        return next((r for r in (c(v) for c in checks) if r), None)
    return check


AUTO_PAD = _choice("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")
_ROUND = _choice(*ROUNDING_MODES)
_QUANT = {"signed": (INT, _bool), "narrow": (INT, _bool), "rounding_mode": (STRING, _ROUND)}
_WINDOW = {"kernel_shape": (INTS, _pos), "strides": (INTS, _pos), "pads": (INTS, _nonneg),
           "dilations": (INTS, _pos), "auto_pad": (STRING, AUTO_PAD), "ceil_mode": (INT, _bool)}
ATTRS: dict[str, dict] = {
    "Quant": _QUANT,
    "Trunc": _QUANT,
    "BipolarQuant": {},
    "MultiThreshold": {"out_scale": (FLOAT, _all(_finite, lambda v: None if v != 0 else
                                                  "must not be 0")),
                       "out_bias": (FLOAT, _finite), "out_dtype": (STRING, None),
                       "data_layout": (STRING, _choice("NCHW", "NHWC", "NC", "NCW", "NWC"))},
    "Conv": {**_WINDOW, "group": (INT, lambda v: None if v >= 1 else "must be positive")},
    "MaxPool": {**_WINDOW, "storage_order": (INT, _bool)},
    "AveragePool": {**_WINDOW, "count_include_pad": (INT, _bool)},
    "Gemm": {"alpha": (FLOAT, _finite), "beta": (FLOAT, _finite), "transA": (INT, _bool),
             "transB": (INT, _bool)},
    "BatchNormalization": {"epsilon": (FLOAT, _all(_finite, lambda v: None if v >= 0 else
                                                   "must not be negative")),
                           "momentum": (FLOAT, _finite), "training_mode": (INT, _bool),
                           "spatial": (INT, _bool)},
    "Clip": {"min": (FLOAT, lambda v: None if not math.isnan(v) else "must not be NaN"),
             "max": (FLOAT, lambda v: None if not math.isnan(v) else "must not be NaN")},
    "Reshape": {"allowzero": (INT, _bool)},
    "Flatten": {"axis": (INT, None)},
    "Transpose": {"perm": (INTS, lambda v: None if sorted(v) == list(range(len(v))) else
                           "must be a permutation of 0..n-1")},
    "Squeeze": {"axes": (INTS, None)},
    "Unsqueeze": {"axes": (INTS, None)},
    "Concat": {"axis": (INT, None)},
    "Softmax": {"axis": (INT, None)},
    "LogSoftmax": {"axis": (INT, None)},
    "ArgMax": {"axis": (INT, None), "keepdims": (INT, _bool), "select_last_index": (INT, _bool)},
    "TopK": {"axis": (INT, None), "largest": (INT, _bool), "sorted": (INT, _bool)},
    "QuantizeLinear": {"axis": (INT, None), "saturate": (INT, _bool),
                       "block_size": (INT, lambda v: None if v >= 0 else "must not be negative"),
                       "output_dtype": (INT, None)},
    "DequantizeLinear": {"axis": (INT, None), "block_size": (INT, None)},
}
_KNOWN_WINDOW_LEN = {"kernel_shape": 2, "strides": 2, "dilations": 2, "pads": 4}


def _text(v) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def _where(node):
    return dict(node=node.name or (node.output[0] if node.output else "?"), op=node.op_type)


def _show(a: onnx.AttributeProto) -> str:
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        v = _text(v)
    text = repr(v) if not isinstance(v, (list, tuple)) else repr(list(v))
    return text if len(text) <= 60 else text[:57] + "..."


def check_attributes(node, path: str) -> None:
    """Type and range of every attribute bnncc reads from `node`."""
    spec = ATTRS.get(node.op_type)
    if spec is None:
        return
    seen = set()
    for a in node.attribute:
        if a.name in seen:
            raise BnnccError(f"attribute '{a.name}' is given twice", file=path, **_where(node))
        seen.add(a.name)
        if a.name not in spec:
            continue
        want, check = spec[a.name]
        tname = A.AttributeType.Name(a.type).lower()
        if a.type != want:
            raise BnnccError(f"attribute '{a.name}' must be {A.AttributeType.Name(want).lower()}"
                             f", got {tname} {_show(a)}", file=path, **_where(node))
        v = onnx.helper.get_attribute_value(a)
        why = check(list(v) if want == INTS else v) if check else None
        if why is None and want == INTS and node.op_type in ("Conv", "MaxPool", "AveragePool") \
                and a.name in _KNOWN_WINDOW_LEN and len(v) != _KNOWN_WINDOW_LEN[a.name]:
            why = f"must have {_KNOWN_WINDOW_LEN[a.name]} values (2-D windows only)"
        if why:
            raise BnnccError(f"attribute '{a.name}' {why}, got {_show(a)}", file=path,
                             **_where(node))
    if node.op_type in ("MaxPool", "AveragePool") and "kernel_shape" not in seen:
        raise BnnccError("attribute 'kernel_shape' is required", file=path, **_where(node))


def check_opsets(model: onnx.ModelProto, path: str) -> None:
    seen = {}
    for o in model.opset_import:
        d = o.domain or ""
        if d in seen and seen[d] != o.version:
            raise BnnccError(f"domain '{d}' is imported twice (opsets {seen[d]} and {o.version})",
                             file=path)
        seen[d] = o.version
        if d in ("", "ai.onnx") and not 1 <= o.version <= MAX_OPSET:
            raise UnsupportedError(f"default-domain opset {o.version} is not a known ONNX "
                                   f"opset (1..{MAX_OPSET})", file=path)
        if d not in ("", "ai.onnx") and not 1 <= o.version <= 100:
            raise UnsupportedError(f"opset {o.version} of domain '{d}' is not supported",
                                   file=path)


def check_nodes_with_onnx(model: onnx.ModelProto, path: str) -> None:
    """onnx's own node checker on the standard ops (attribute types and names)."""
    ctx = checker.C.CheckerContext()
    ctx.ir_version = model.ir_version or 8
    ctx.opset_imports = {(o.domain or ""): o.version for o in model.opset_import
                         if (o.domain or "") in ("", "ai.onnx")} or {"": 13}
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        try:
            checker.check_node(node, ctx)
        except checker.ValidationError as e:
            why = str(e).strip().splitlines()[0] if str(e).strip() else "invalid node"
            raise BnnccError(f"invalid node: {why}", file=path, **_where(node)) from None


_SI_WHERE = re.compile(r"\(op_type:(\w+)(?:, node name: ([^)]*))?\)")


def check_shapes(model: onnx.ModelProto, path: str) -> None:
    """Strict shape inference: contradictions between shapes, weights and attributes."""
    declared = {o.domain for o in model.opset_import}
    extra = [onnx.helper.make_opsetid(d, 1) for d in
             sorted({n.domain for n in model.graph.node} - declared - {""})]
    model.opset_import.extend(extra)
    try:
        shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (shape_inference.InferenceError, onnx.checker.ValidationError) as e:
        text = " ".join(str(e).split())
        m = _SI_WHERE.search(text)
        why = text.rsplit("] ", 1)[-1] if "] " in text else text
        kw = {}
        if m:
            nodes = [n for n in model.graph.node if n.op_type == m.group(1) and
                     (not m.group(2) or n.name == m.group(2))]
            kw = _where(nodes[0]) if nodes else {"op": m.group(1)}
        raise BnnccError(f"inconsistent model (shape inference): {why[:200]}", file=path,
                         **kw) from None
    except RecursionError:
        raise BnnccError("the graph is too deeply nested to check", file=path) from None
    finally:
        for _ in extra:
            del model.opset_import[-1]


MAX_FRAME_ELEMS = 1 << 26   # one streamed frame; far beyond any FPGA design's input


def check_inputs(model: onnx.ModelProto, path: str) -> None:
    """A declared input too large to hold (2^40 elements) is refused, not allocated."""
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits or not inp.type.tensor_type.HasField("shape"):
            continue
        n = 1
        for d in inp.type.tensor_type.shape.dim:
            if d.HasField("dim_value"):
                n *= max(d.dim_value, 0)
        if n > MAX_FRAME_ELEMS:
            raise UnsupportedError(f"input '{inp.name}' has {n} elements per frame; bnncc "
                                   f"takes at most {MAX_FRAME_ELEMS}", file=path)


def check_names(model: onnx.ModelProto, path: str) -> None:
    """Every tensor name is defined once: by one initializer, input or node output."""
    g = model.graph
    seen: set[str] = set()
    for t in g.initializer:
        if t.name in seen:
            raise BnnccError(f"initializer '{t.name}' is defined twice", file=path)
        seen.add(t.name)
    inputs = set()
    for i in g.input:
        if i.name in inputs:
            raise BnnccError(f"graph input '{i.name}' is declared twice", file=path)
        inputs.add(i.name)
    seen |= inputs
    for n in g.node:
        for o in n.output:
            if o and o in seen:
                raise BnnccError(f"tensor '{o}' is defined more than once", file=path,
                                 **_where(n))
            seen.add(o)


def validate(model: onnx.ModelProto, path: str) -> None:
    check_opsets(model, path)
    check_inputs(model, path)
    check_names(model, path)
    for node in model.graph.node:
        check_attributes(node, path)
    check_nodes_with_onnx(model, path)
    check_shapes(model, path)
