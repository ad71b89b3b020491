"""Lower a validated ONNX graph into the hardware IR in one walk over its nodes.

Every ONNX tensor becomes either a `Const` (weights, shapes, BN parameters; quantizers
on constants give integer weights plus their scale) or an `Act`: an integer stream
produced by a hardware layer (or the raw float input) seen through

  * `pos`: for each element of the ONNX tensor, its position in the producer's stream,
    so layout-only ops (Reshape, Flatten, Transpose, Squeeze, Unsqueeze) cost nothing
    and fully connected weights are permuted to the stream order;
  * `chain`: the elementwise float ops applied since the integer (passes/chain.py),
    starting with the affine map from the integer to its real value.

A quantizer on an Act folds its chain into integer thresholds (passes/thresholds.py),
fused into the producing MVAU when possible; on the raw input it becomes the host input
stage. MatMul/Gemm become an MVAU, Conv a sliding window plus an MVAU. What cannot be
mapped exactly raises UnsupportedError naming the node.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import onnx
from onnx import numpy_helper

from ..datatypes import DataType
from ..errors import BnnccError, UnsupportedError
from ..ir import INPUT, Design, HostStage
from ..layers import (MVAU, AddStreams, Concat, LabelSelect, MaxPool, SlidingWindow, SumPool,
                      Thresholding)
from ..passes.chain import ChainOp, compose_affine, eval_chain, reduce_channels
from ..passes.thresholds import fold_thresholds
from ..passes.widths import mvau_acc_range
from ..quantizers import (ROUNDING_MODES, BipolarQuant, FixedInput, FloatThresholds,
                          IntQuant, LinearQuant, SignQuant, TruncQuant, parse_dtype)


@dataclass
class QConst:
    """Integer representation of a quantized constant: value = scale * (q - zeropt)."""

    q: np.ndarray
    scale: np.ndarray
    zeropt: np.ndarray
    dtype: DataType


@dataclass
class Const:
    value: np.ndarray
    quant: QConst | None = None


@dataclass
class Act:
    shape: tuple                  # ONNX shape including batch 1
    pos: np.ndarray               # int, shape `shape`: position in the producer's stream
    src: str | None               # producing layer, INPUT, or None for the raw float input
    dtype: DataType | None
    chain: list = field(default_factory=list)   # ChainOps, params broadcast to `shape`
    shared: bool = False          # the producer's output also feeds something else


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


def hw_perm(ndim: int) -> tuple:
    """Axes permutation from an ONNX NC... tensor to the channels-last hardware order."""
    return (0,) + tuple(range(2, ndim)) + (1,) if ndim > 2 else tuple(range(ndim))


def canonical_pos(shape: tuple) -> np.ndarray:
    """Stream positions of a freshly produced tensor (channels last)."""
    perm = hw_perm(len(shape))
    hw_shape = tuple(shape[p] for p in perm)
    return np.transpose(np.arange(int(np.prod(shape))).reshape(hw_shape), np.argsort(perm))


class Lowering:
    def __init__(self, model: onnx.ModelProto, path: str, input_type: str | None = None,
                 input_scale: float = 1.0):
        self.model, self.path = model, path
        self.input_type, self.input_scale = input_type, float(input_scale)
        self.g = nx.DiGraph()
        self.vals: dict[str, Const | Act] = {}
        self.counts: dict[str, int] = {}
        self.input_stage: HostStage | None = None
        self.notes: list[str] = []
        self.consumers: dict[str, int] = {}
        for n in model.graph.node:
            for i in n.input:
                self.consumers[i] = self.consumers.get(i, 0) + 1
        for o in model.graph.output:
            self.consumers[o.name] = self.consumers.get(o.name, 0) + 1

    # -- helpers ------------------------------------------------------------------------
    def err(self, why: str, node=None) -> UnsupportedError:
        return UnsupportedError(why, file=self.path,
                                node=(node.name or node.output[0]) if node is not None else None,
                                op=node.op_type if node is not None else None)

    def new_name(self, prefix: str) -> str:
        i = self.counts.get(prefix, 0)
        self.counts[prefix] = i + 1
        return f"{prefix}_{i}"

    def add_layer(self, layer, pred: str | None):
        self.g.add_node(layer.name, layer=layer)
        if pred is not None and pred != INPUT:
            self.g.add_edge(pred, layer.name)
        return layer

    def src_layer(self, act: Act):
        return None if act.src in (None, INPUT) else self.g.nodes[act.src]["layer"]

    def src_shape(self, act: Act) -> tuple:
        layer = self.src_layer(act)
        return tuple(layer.out_shape) if layer is not None else tuple(self.input_stage.hw_shape)

    def const(self, name: str, node) -> np.ndarray:
        v = self.vals.get(name)
        if not isinstance(v, Const):
            raise self.err(f"input '{name}' must be a constant", node)
        return v.value

    def get(self, name: str, node):
        if name not in self.vals:
            raise self.err(f"input '{name}' is not produced by any node", node)
        return self.vals[name]

    def declared_input_type(self):
        """The input's integer type: --input-type, else the model's finn_datatype annotation."""
        name = self.input_type
        if name is None:
            for a in self.model.graph.quantization_annotation:
                if a.tensor_name == self.in_name:
                    for kv in a.quant_parameter_tensor_names:
                        if kv.key == "finn_datatype" and not kv.value.upper().startswith("FLOAT"):
                            name = kv.value
        if name is None:
            return None
        try:
            return parse_dtype(name)
        except ValueError as e:
            raise BnnccError(str(e), file=self.path) from None

    def declare_input(self, act: Act, node) -> Act:
        """Make the raw input an integer stream of its declared type (no quantizer in the
        model before this node): the host only checks and encodes the values."""
        dtype = self.declared_input_type()
        if dtype is None:
            raise self.err("the model input reaches this node without a quantizer; declare "
                           "the input's integer type with --input-type (e.g. UINT8, INT8, "
                           "BIPOLAR) and --input-scale", node)
        shape = self.in_shape
        perm = hw_perm(len(shape))
        scale = np.full(shape, self.input_scale)
        self.input_stage = HostStage(shape=shape, gather=np.arange(int(np.prod(shape))),
                                     chain=[], quant=FixedInput(dtype, scale, np.zeros(shape)),
                                     hw_order=perm, hw_shape=tuple(shape[p] for p in perm)[1:])
        self.notes.append(f"input declared as {dtype} x {self.input_scale:g}; the host checks "
                          "every value is representable")
        pos = canonical_pos(shape).reshape(-1)[act.pos]
        first = ChainOp("affine", (self.full(self.input_scale, act.shape),
                                   self.full(0.0, act.shape)), "input")
        return Act(act.shape, pos, INPUT, dtype, [first] + act.chain, act.shared)

    def integer(self, act: Act, node) -> Act:
        return self.declare_input(act, node) if act.src is None else act

    def int_input(self, act: Act, node) -> tuple[float, np.ndarray, np.ndarray]:
        """An integer-valued Act as real = s * r * q + b: a scalar scale s, per-element
        integer factors r >= 1 (per-channel scales that are integer multiples of the
        smallest one, folded into the weights) and per-element offsets b."""
        if act.src is None:
            raise self.err("input is the raw float model input; a quantizer must come first", node)
        affine = compose_affine(act.chain)
        if affine is None:
            ops = ", ".join(op.op for op in act.chain) or "none"
            raise self.err(f"input is not a quantized integer tensor: float ops ({ops}) "
                           "between quantizers cannot be absorbed", node)
        mul, add = (np.broadcast_to(v, act.shape) for v in affine)
        s = float(np.min(np.abs(mul)))
        if s == 0 or np.any(mul <= 0):
            raise self.err("input scale must be positive", node)
        ratio = mul / s
        r = np.round(ratio)
        if not np.array_equal(ratio, r) or r.max() > 1 << 16:
            raise self.err("input has per-channel scales that are not integer multiples of "
                           "the smallest one; they cannot be absorbed into integer weights", node)
        return s, r.astype(np.int64), add

    def weights(self, c: Const, node, axis: int) -> tuple[np.ndarray, np.ndarray, DataType]:
        """Integer weights and their per-output-channel scale (`axis` = output axis)."""
        if c.quant is None:
            v = c.value
            if not np.all(np.isfinite(v)) or not np.array_equal(v, np.round(v)):
                raise self.err("weights are not quantized (no Quant/BipolarQuant/Sign on them "
                               "and not integer-valued)", node)
            q = v.astype(np.int64)
            return q, np.ones(v.shape[axis]), DataType.for_values(q)
        qc = c.quant
        if np.any(qc.zeropt != 0):
            raise self.err("weights with a non-zero zero-point are not supported", node)
        scale = np.broadcast_to(qc.scale, qc.q.shape)
        moved = np.moveaxis(scale, axis, 0).reshape(scale.shape[axis], -1)
        if not np.all(moved == moved[:, :1]):
            raise self.err("weight scale varies within an output channel", node)
        if np.any(moved[:, 0] <= 0):
            raise self.err("weight scale must be positive", node)
        return qc.q.astype(np.int64), moved[:, 0].astype(np.float64), qc.dtype

    def full(self, p, shape) -> np.ndarray:
        return np.broadcast_to(np.asarray(p, np.float64), shape).copy()

    # -- walk ---------------------------------------------------------------------------
    def run(self) -> Design:
        g = self.model.graph
        inits = {i.name for i in g.initializer}
        for t in g.initializer:
            try:
                arr = numpy_helper.to_array(t)
            except Exception as e:
                raise BnnccError(f"initializer '{t.name}' cannot be read: {e}", file=self.path) from None
            self.vals[t.name] = Const(np.array(arr))
        real_inputs = [i for i in g.input if i.name not in inits]
        if len(real_inputs) != 1:
            raise BnnccError(f"the model must have exactly one non-constant input, "
                             f"it has {len(real_inputs)}", file=self.path)
        inp = real_inputs[0]
        tt = inp.type.tensor_type
        if tt.elem_type != onnx.TensorProto.FLOAT:
            raise UnsupportedError(f"input '{inp.name}' must be float32", file=self.path)
        if not tt.HasField("shape"):
            raise UnsupportedError(f"input '{inp.name}' has no static shape", file=self.path)
        dims = []
        for d in tt.shape.dim:
            if not d.HasField("dim_value"):
                raise UnsupportedError(f"input '{inp.name}' has a dynamic dimension "
                                       f"'{d.dim_param or '?'}'; bnncc needs static shapes",
                                       file=self.path)
            dims.append(d.dim_value)
        if any(d <= 0 for d in dims):
            raise BnnccError(f"input '{inp.name}' has a zero-size dimension {dims}", file=self.path)
        if not dims or dims[0] != 1:
            raise UnsupportedError(f"input '{inp.name}' must have batch dimension 1 "
                                   f"(bnncc streams one frame at a time), got {dims}",
                                   file=self.path)
        self.in_name, self.in_shape = inp.name, tuple(dims)
        self.vals[inp.name] = Act(tuple(dims), np.arange(int(np.prod(dims))).reshape(dims),
                                  None, None)
        if self.input_type is not None:   # declared explicitly: the hardware takes it as is
            self.vals[inp.name] = self.declare_input(self.vals[inp.name], None)
        for node in g.node:
            handler = getattr(self, f"op_{node.op_type}", None)
            if handler is None:
                raise self.err(f"operator '{node.op_type}' is not supported", node)
            try:
                ins = [self.get(i, node) if i else None for i in node.input]
                outs = handler(node, ins, _attrs(node))
            except BnnccError as e:
                raise e.at(file=self.path, node=node.name or node.output[0], op=node.op_type)
            except (ValueError, IndexError, KeyError, TypeError) as e:
                raise UnsupportedError(f"cannot lower: {e}", file=self.path,
                                       node=node.name or node.output[0], op=node.op_type) from None
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            for name, v in zip(node.output, outs):
                if name:
                    self.vals[name] = v
        return self.finish()

    def finish(self) -> Design:
        g = self.model.graph
        if len(g.output) != 1:
            raise UnsupportedError(f"the model must have exactly one output, it has {len(g.output)}",
                                   file=self.path)
        out = self.vals.get(g.output[0].name)
        head = getattr(out, "head", None)
        if not isinstance(out, Act) or out.src in (None, INPUT):
            raise UnsupportedError("the model output does not depend on any hardware layer",
                                   file=self.path)
        ostage = HostStage(shape=out.shape, gather=out.pos.reshape(-1), chain=out.chain,
                           head=head, out_dtype=getattr(out, "out_dtype", "float32"))
        shape = getattr(out, "out_shape", out.shape)
        return Design(self.path, self.g, self.in_name, self.in_shape, g.output[0].name,
                      tuple(shape), self.input_stage, ostage, self.notes)

    # -- constants and layout -------------------------------------------------------------
    def fold_standard(self, node, ins):
        """Constant-fold a standard op whose inputs are all constants. Transpose and Pow (the
        ones exporters leave on weights) are done here: onnx's reference evaluator costs
        0.1 s to import, a tenth of the `bnncc estimate` budget."""
        vals = [np.asarray(c.value) for c in ins]
        if node.op_type == "Transpose" and len(vals) == 1:
            perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
            return [Const(np.transpose(vals[0], perm))]
        if node.op_type == "Pow" and len(vals) == 2:
            return [Const(np.power(vals[0], vals[1]).astype(vals[0].dtype))]
        from onnx.reference import ReferenceEvaluator
        names = [f"i{k}" for k in range(len(ins))]
        inputs = [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None)
                  for n in names]
        outs = [onnx.helper.make_tensor_value_info(f"o{k}", onnx.TensorProto.UNDEFINED, None)
                for k in range(len(node.output))]
        n2 = onnx.helper.make_node(node.op_type, names, [o.name for o in outs],
                                   domain=node.domain)
        n2.attribute.extend(node.attribute)
        opset = [o for o in self.model.opset_import if o.domain in ("", "ai.onnx")]
        m = onnx.helper.make_model(onnx.helper.make_graph([n2], "fold", inputs, outs),
                                   opset_imports=opset or [onnx.helper.make_opsetid("", 13)])
        res = ReferenceEvaluator(m).run(None, {n: c.value for n, c in zip(names, ins)})
        return [Const(np.asarray(r)) for r in res]

    def layout(self, node, ins, attrs, fn):
        """Apply a layout-only op `fn(array)` to pos and every chain param of an Act."""
        x = ins[0]
        pos = fn(x.pos)
        chain = [op.map_params(lambda p: fn(np.broadcast_to(p, x.shape))) if op.params else op
                 for op in x.chain]
        y = Act(tuple(pos.shape), pos, x.src, x.dtype, chain, x.shared)
        for k in ("head", "out_dtype", "out_shape"):
            if hasattr(x, k):
                raise self.err("layout change after the output head is not supported", node)
        return y

    def generic(self, node, ins, attrs):
        if all(isinstance(v, Const) for v in ins if v is not None):
            return self.fold_standard(node, [v for v in ins if v is not None])
        return None

    def op_Constant(self, node, ins, attrs):
        for k in ("value", "value_float", "value_int", "value_floats", "value_ints"):
            if k in attrs:
                v = attrs[k]
                return Const(numpy_helper.to_array(v) if hasattr(v, "dims") else np.array(v))
        raise self.err("unsupported Constant form", node)

    def op_Identity(self, node, ins, attrs):
        return ins[0]

    op_Dropout = op_Identity

    def op_Shape(self, node, ins, attrs):
        x = ins[0]
        shape = np.array(x.shape if isinstance(x, Act) else x.value.shape, np.int64)
        return Const(shape[attrs.get("start", 0):attrs.get("end", len(shape))])

    def _layout_or_fold(self, node, ins, attrs, fn):
        folded = self.generic(node, ins, attrs)
        if folded is not None:
            return self._fold_quant_const(node, ins, folded, fn)
        if not isinstance(ins[0], Act) or any(isinstance(v, Act) for v in ins[1:] if v):
            raise self.err("only the data input may be non-constant", node)
        return self.layout(node, ins, attrs, fn)

    def _fold_quant_const(self, node, ins, folded, fn):
        """Layout ops on a quantized constant keep its integer representation."""
        c = ins[0]
        if isinstance(c, Const) and c.quant is not None and len(folded) == 1:
            qc = c.quant
            q = fn(qc.q)
            full = lambda a: fn(np.broadcast_to(a, qc.q.shape))
            folded[0].quant = QConst(q, full(qc.scale), full(qc.zeropt), qc.dtype)
        return folded

    def op_Reshape(self, node, ins, attrs):
        def fn(a, shape=None):
            target = [int(v) for v in self.const(node.input[1], node)]
            src = a.shape
            if not attrs.get("allowzero", 0):
                target = [src[i] if v == 0 else v for i, v in enumerate(target)]
            return a.reshape(target)
        return self._layout_or_fold(node, ins, attrs, fn)

    def op_Flatten(self, node, ins, attrs):
        axis = attrs.get("axis", 1)
        def fn(a):
            ax = axis % a.ndim if a.ndim else 0
            return a.reshape(int(np.prod(a.shape[:ax])), -1)
        return self._layout_or_fold(node, ins, attrs, fn)

    def op_Transpose(self, node, ins, attrs):
        perm = attrs.get("perm")
        return self._layout_or_fold(node, ins, attrs,
                                    lambda a: np.transpose(a, perm))

    def _axes(self, node, attrs):
        if "axes" in attrs:
            return [int(a) for a in attrs["axes"]]
        if len(node.input) > 1 and node.input[1]:
            return [int(a) for a in self.const(node.input[1], node)]
        return None

    def op_Squeeze(self, node, ins, attrs):
        axes = self._axes(node, attrs)
        def fn(a):
            ax = tuple(x % a.ndim for x in axes) if axes is not None else \
                tuple(i for i, d in enumerate(a.shape) if d == 1)
            return np.squeeze(a, axis=ax)
        return self._layout_or_fold(node, ins, attrs, fn)

    def op_Unsqueeze(self, node, ins, attrs):
        axes = self._axes(node, attrs)
        def fn(a):
            out = a
            nd = a.ndim + len(axes)
            for ax in sorted(x % nd for x in axes):
                out = np.expand_dims(out, ax)
            return out
        return self._layout_or_fold(node, ins, attrs, fn)

    def _const_only(self, node, ins, attrs):
        folded = self.generic(node, ins, attrs)
        if folded is None:
            raise self.err(f"{node.op_type} on a non-constant tensor is not supported", node)
        return folded

    op_Gather = op_Cast = op_Pow = op_Sqrt = op_Neg = op_Range = _const_only
    op_ConstantOfShape = op_Expand = op_Slice = op_Floor = op_Ceil = op_Exp = op_Log = _const_only
    op_Reciprocal = _const_only

    # -- elementwise float ops -----------------------------------------------------------
    def _binary(self, node, ins, attrs, op, rop):
        folded = self.generic(node, ins, attrs)
        if folded is not None:
            return folded
        a, b = ins
        if isinstance(a, Act) and isinstance(b, Act):
            if node.op_type in ("Add", "Sub"):
                return self.add_streams(node, a, b, 1 if node.op_type == "Add" else -1)
            raise self.err(f"{node.op_type} of two non-constant tensors is not supported", node)
        x, c, name = (a, b.value, op) if isinstance(a, Act) else (b, a.value, rop)
        if name is None:
            raise self.err(f"{node.op_type} with the constant as first operand is not supported",
                           node)
        if hasattr(x, "head"):
            raise self.err("float op after the output head is not supported", node)
        if np.broadcast_shapes(np.shape(c), x.shape) != tuple(x.shape):
            raise self.err(f"constant of shape {list(np.shape(c))} would broadcast the "
                           f"tensor of shape {list(x.shape)}", node)
        p = np.broadcast_to(np.asarray(c, np.float32), x.shape).copy()
        return Act(x.shape, x.pos, x.src, x.dtype, x.chain + [ChainOp(name, (p,), node.name)],
                   x.shared or self.consumers.get(node.input[0], 1) > 1)

    def op_Mul(self, node, ins, attrs):
        return self._binary(node, ins, attrs, "mul", "mul")

    def op_Add(self, node, ins, attrs):
        return self._binary(node, ins, attrs, "add", "add")

    def op_Sub(self, node, ins, attrs):
        return self._binary(node, ins, attrs, "sub", "rsub")

    def op_Div(self, node, ins, attrs):
        return self._binary(node, ins, attrs, "div", None)

    def op_BatchNormalization(self, node, ins, attrs):
        x = ins[0]
        if not isinstance(x, Act):
            return self._const_only(node, ins, attrs)
        if attrs.get("training_mode", 0) or len([o for o in node.output if o]) > 1:
            raise self.err("BatchNormalization in training mode is not supported", node)
        shp = (1, x.shape[1]) + (1,) * (len(x.shape) - 2)
        params = tuple(np.broadcast_to(self.const(n, node).reshape(shp), x.shape).copy()
                       for n in node.input[1:5])
        eps = np.float32(attrs.get("epsilon", 1e-5))
        return Act(x.shape, x.pos, x.src, x.dtype,
                   x.chain + [ChainOp("bn", params + (eps,), node.name)], x.shared)

    def op_Relu(self, node, ins, attrs):
        x = ins[0]
        if isinstance(x, Const):
            return self._const_only(node, ins, attrs)
        return Act(x.shape, x.pos, x.src, x.dtype, x.chain + [ChainOp("relu", (), node.name)],
                   x.shared)

    def op_Clip(self, node, ins, attrs):
        x = ins[0]
        if isinstance(x, Const):
            return self._const_only(node, ins, attrs)
        lo = self.const(node.input[1], node) if len(node.input) > 1 and node.input[1] else \
            attrs.get("min", -np.inf)
        hi = self.const(node.input[2], node) if len(node.input) > 2 and node.input[2] else \
            attrs.get("max", np.inf)
        p = (np.broadcast_to(np.float32(lo), x.shape).copy(),
             np.broadcast_to(np.float32(hi), x.shape).copy())
        return Act(x.shape, x.pos, x.src, x.dtype, x.chain + [ChainOp("clip", p, node.name)],
                   x.shared)

    # -- quantizers ----------------------------------------------------------------------
    def _qparam(self, node, i, shape):
        v = self.get(node.input[i], node)
        if not isinstance(v, Const):
            raise self.err(f"quantizer parameter '{node.input[i]}' is not constant", node)
        val = np.asarray(v.value, np.float64)
        try:
            return np.broadcast_to(val, shape).copy()
        except ValueError:
            raise self.err(f"quantizer parameter of shape {list(val.shape)} does not "
                           f"broadcast to {list(shape)}", node) from None

    def op_Quant(self, node, ins, attrs):
        x = ins[0]
        shape = x.value.shape if isinstance(x, Const) else x.shape
        scale = self._qparam(node, 1, shape)
        zeropt = self._qparam(node, 2, shape)
        bits_arr = np.asarray(self.const(node.input[3], node))
        if bits_arr.size != 1 or bits_arr.ravel()[0] != np.round(bits_arr.ravel()[0]) or \
                not 1 <= bits_arr.ravel()[0] <= 32:
            raise self.err(f"bit width must be one integer in 1..32, got {bits_arr.ravel()[:4]}",
                           node)
        bits = int(bits_arr.ravel()[0])
        signed, narrow = bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0))
        rounding = _s(attrs.get("rounding_mode", "ROUND")).upper()
        if rounding not in ROUNDING_MODES:
            raise self.err(f"unknown rounding mode {rounding}", node)
        if bits == 1 and signed:
            dtype = DataType.bipolar()
        elif signed:
            dtype = DataType.int(bits, narrow)
        else:
            dtype = DataType.uint(bits, narrow)
        if np.any(scale <= 0):
            raise self.err("quantizer scale must be positive", node)
        quant = IntQuant(dtype, scale, zeropt, rounding)
        return self.quantize(node, x, quant)

    def op_BipolarQuant(self, node, ins, attrs):
        x = ins[0]
        shape = x.value.shape if isinstance(x, Const) else x.shape
        scale = self._qparam(node, 1, shape)
        if np.any(scale <= 0):
            raise self.err("quantizer scale must be positive", node)
        return self.quantize(node, x, BipolarQuant(DataType.bipolar(), scale, np.zeros(shape)))

    def op_Sign(self, node, ins, attrs):
        x = ins[0]
        shape = x.value.shape if isinstance(x, Const) else x.shape
        return self.quantize(node, x, SignQuant(DataType.int(2, narrow=True), np.ones(shape),
                                                np.zeros(shape)))

    def op_Trunc(self, node, ins, attrs):
        x = ins[0]
        if isinstance(x, Const):
            return self._const_only(node, ins, attrs)
        shape = x.shape
        scale, zeropt = self._qparam(node, 1, shape), self._qparam(node, 2, shape)
        in_bits = int(np.asarray(self.const(node.input[3], node)).ravel()[0])
        rounding = _s(attrs.get("rounding_mode", "FLOOR")).upper()
        opset = {o.domain: o.version for o in self.model.opset_import}.get(node.domain, 2)
        if len(node.input) >= 6 and opset < 2:
            raise self.err("6-input Trunc in a domain declared at opset 1 (where Trunc has "
                           "5 inputs); declare the domain at opset 2", node)
        if len(node.input) >= 6:   # v2: x, scale, zeropt, in_bits, out_scale, out_bits
            out_scale = self._qparam(node, 4, shape)
            out_bits = int(np.asarray(self.const(node.input[5], node)).ravel()[0])
            tscale = 2.0 ** np.round(np.log2(out_scale / scale))
            signed, narrow = bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0))
            dtype = DataType.int(out_bits, narrow) if signed else DataType.uint(out_bits, narrow)
            quant = TruncQuant(dtype, out_scale, zeropt / tscale, scale, zeropt, tscale,
                               rounding, True)
        else:                      # v1: x, scale, zeropt, in_bits, out_bits
            out_bits = int(np.asarray(self.const(node.input[4], node)).ravel()[0])
            tscale = np.full(shape, 2.0 ** (in_bits - out_bits))
            signed = x.dtype is None or x.dtype.signed
            dtype = DataType.int(out_bits) if signed else DataType.uint(out_bits)
            quant = TruncQuant(dtype, scale, zeropt, scale, zeropt, tscale, rounding, False)
        return self.quantize(node, x, quant)

    def op_MultiThreshold(self, node, ins, attrs):
        x = ins[0]
        if isinstance(x, Const):
            raise self.err("MultiThreshold on a constant is not supported", node)
        t = np.asarray(self.const(node.input[1], node), np.float64)
        if t.ndim != 2:
            raise self.err("thresholds must be a 2-D (channels, steps) tensor", node)
        layout = _s(attrs.get("data_layout", "NCHW"))
        cax = len(x.shape) - 1 if layout == "NHWC" else 1
        nch = x.shape[cax]
        if t.shape[0] not in (1, nch):
            raise self.err(f"threshold rows {t.shape[0]} do not match {nch} channels", node)
        t = np.sort(t, axis=1)
        bshape = [1] * len(x.shape)
        bshape[cax] = t.shape[0]
        tfull = np.broadcast_to(t.reshape(bshape + [t.shape[1]]), tuple(x.shape) + (t.shape[1],))
        out_scale = float(attrs.get("out_scale", 1.0))
        out_bias = float(attrs.get("out_bias", 0.0))
        odt_name = _s(attrs.get("out_dtype", ""))
        nt = t.shape[1]
        if odt_name == "BIPOLAR":
            if nt != 1:
                raise self.err("a BIPOLAR MultiThreshold must have exactly one threshold", node)
            dtype = DataType.bipolar()
            # level L -> q = 2L - 1; real = out_scale * L + out_bias
            scale, zeropt = out_scale / 2, -(out_scale / 2 + out_bias) / (out_scale / 2)
        elif out_scale != 0 and float(out_bias / out_scale).is_integer():
            b = int(out_bias / out_scale)
            dtype = DataType.for_range(b, b + nt)
            scale, zeropt = out_scale, 0.0
        else:
            dtype = DataType.for_range(0, nt)
            scale, zeropt = out_scale, -out_bias / out_scale
        if scale <= 0:
            raise self.err("MultiThreshold out_scale must be positive", node)
        quant = FloatThresholds(dtype, np.full(x.shape, scale), np.full(x.shape, zeropt), tfull)
        return self.quantize(node, x, quant)

    def quantize(self, node, x, quant):
        if isinstance(x, Const):
            return self.quantize_const(node, x, quant)
        if x.src is None:
            return self.quantize_input(node, x, quant)
        return self.fold(node, x, quant)

    def quantize_const(self, node, c: Const, quant):
        q = quant.values(quant.levels(np.asarray(c.value, np.float32)))
        value = ((q - quant.zeropt) * quant.scale).astype(np.float32)
        dtype = quant.dtype
        if isinstance(quant, SignQuant):
            dtype = DataType.bipolar() if not np.any(q == 0) else dtype
        return Const(value, QConst(q, quant.scale, quant.zeropt, dtype))

    def quantize_input(self, node, x: Act, quant):
        if self.input_stage is not None:
            raise self.err("a second quantizer on the raw float input is not supported", node)
        shape = x.shape
        perm = hw_perm(len(shape))
        hw_shape = tuple(shape[p] for p in perm)[1:]
        dtype = quant.dtype
        if isinstance(quant, SignQuant):
            self.notes.append("input Sign can produce 0, so the first layer takes INT2 "
                              "values {-1, 0, 1}")
        self.input_stage = HostStage(shape=shape, gather=x.pos.reshape(-1), chain=x.chain,
                                     quant=quant, hw_order=perm,
                                     hw_shape=hw_shape)
        return self._quant_act(shape, canonical_pos(shape), INPUT, dtype, quant, node)

    def _quant_act(self, shape, pos, src, dtype, quant, node):
        """The Act a quantizer outputs: real = scale * (q - zeropt)."""
        scale = np.broadcast_to(quant.scale, shape).astype(np.float64)
        zp = np.broadcast_to(quant.zeropt, shape).astype(np.float64)
        return Act(tuple(shape), pos, src, dtype,
                   [ChainOp("affine", (scale, -scale * zp), node.name)])

    def fold(self, node, x: Act, quant) -> Act:
        """Quantizer on a hardware stream: integer thresholds, fused into an MVAU if possible."""
        src = self.src_layer(x)
        src_shape = self.src_shape(x)
        nch = src_shape[-1]
        channel_of = (x.pos.reshape(-1) % nch)
        if x.pos.size != int(np.prod(src_shape)):
            raise self.err("quantizer on a tensor that is a subset of its producer's output", node)
        chain = []
        for op in x.chain:
            params = []
            for p in op.params:
                r = reduce_channels(p, channel_of, nch) if np.ndim(p) else p
                if r is None:
                    raise self.err("a scale or bias varies within a channel; only "
                                   "per-channel or per-tensor parameters can be folded", node)
                params.append(r)
            chain.append(ChainOp(op.op, tuple(params), op.node))
        qparams = {}
        for k in ("scale", "zeropt", "in_scale", "in_zeropt", "trunc_scale"):
            v = getattr(quant, k, None)
            if v is not None:
                r = reduce_channels(np.broadcast_to(v, x.shape), channel_of, nch)
                if r is None:
                    raise self.err("quantizer parameters vary within a channel", node)
                qparams[k] = r
        if isinstance(quant, FloatThresholds):
            tt = quant.thresholds.reshape(-1, quant.thresholds.shape[-1])
            tch = np.empty((nch, tt.shape[1]))
            tch[channel_of] = tt
            if not np.array_equal(tch[channel_of], tt):
                raise self.err("thresholds vary within a channel", node)
            qparams["thresholds"] = tch
        cq = type(quant)(**{**quant.__dict__, **qparams})
        fuse = isinstance(src, MVAU) and src.thresholds is None and not x.shared and \
            self.consumers.get(node.input[0], 1) == 1 and \
            self._unused_downstream(src.name)
        if fuse:
            lo, hi = mvau_acc_range(src.weights, src.idt, src.binary)
            reflect = src.mw if src.binary else 0
        else:
            lo = np.full(nch, x.dtype.min if not x.dtype.is_bipolar else -1, np.int64)
            hi = np.full(nch, x.dtype.max, np.int64)
            reflect = 0
        f = fold_thresholds(lo, hi, chain, cq, reflect)
        if fuse:
            w = src.weights.copy()
            w[f.negate] *= -1
            src.weights = w
            src.thresholds, src.odt, src.tdt = f.thresholds, f.odt, f.tdt
            src.wdt = DataType.for_values(w) if not src.binary else src.wdt
            src.const_channels = int(f.constant.sum())
            src.negated = f.negate
            src.src.append(node.name)
            name = src.name
        else:
            layer = Thresholding(self.new_name("thr"), x.dtype, f.odt, src_shape, src_shape,
                                 [node.name], thresholds=f.thresholds, tdt=f.tdt,
                                 negate=f.negate if f.negate.any() else None)
            self.add_layer(layer, x.src)
            name = layer.name
        return self._quant_act(x.shape, x.pos, name, f.odt, quant, node)

    def _unused_downstream(self, name: str) -> bool:
        return self.g.out_degree(name) == 0

    # -- joining streams -------------------------------------------------------------------
    def _stream_operand(self, x: Act, node):
        """An integer stream in its producer's order, as (Act, scalar scale, offsets)."""
        x = self.integer(x, node)
        hw = tuple(x.shape[p] for p in hw_perm(len(x.shape)))[1:]
        if not np.array_equal(x.pos, canonical_pos(x.shape)) or tuple(self.src_shape(x)) != hw:
            raise self.err("operand is not its producer's stream in order (a layout change "
                           "before a residual add / concat is not supported)", node)
        affine = compose_affine(x.chain)
        if affine is None:
            raise self.err("operand has a non-affine float op (e.g. Relu) that is not followed "
                           "by a quantizer", node)
        mul, add = (np.broadcast_to(v, x.shape) for v in affine)
        s = np.unique(mul)
        if s.size != 1 or s[0] == 0:
            raise self.err("operand has per-channel scales; only per-tensor scales can be "
                           "added exactly", node)
        return x, float(s[0]), add, hw

    def add_streams(self, node, a: Act, b: Act, sign: int) -> Act:
        """Residual add: ka * qa + kb * qb with ka / kb the exact ratio of the real scales."""
        from fractions import Fraction
        if tuple(a.shape) != tuple(b.shape):
            raise self.err(f"operands of shapes {list(a.shape)} and {list(b.shape)}; "
                           "broadcasting adds are not supported", node)
        a, sa, adda, hw = self._stream_operand(a, node)
        b, sb, addb, _ = self._stream_operand(b, node)
        ratio = Fraction(sa) / Fraction(sb)
        ka, kb = ratio.numerator, sign * ratio.denominator
        if max(abs(ka), abs(kb)) > 1 << 32:
            raise self.err(f"the operands' scales {sa:g} and {sb:g} have no integer ratio "
                           "below 2^32, so the sum cannot be formed exactly in integers", node)
        ends = [ka * va + kb * vb for va in (a.dtype.min, a.dtype.max)
                for vb in (b.dtype.min, b.dtype.max)]
        odt = DataType.for_range(min(ends), max(ends))
        layer = AddStreams(self.new_name("add"), a.dtype, odt, hw, hw, [node.name],
                           idt_b=b.dtype, ka=ka, kb=kb, inputs=[a.src, b.src])
        self.add_layer(layer, a.src)
        if b.src != INPUT:
            self.g.add_edge(b.src, layer.name)
        mul = sb / abs(kb)
        chain = [ChainOp("affine", (self.full(mul, a.shape), adda + sign * addb), node.name)]
        return Act(a.shape, canonical_pos(a.shape), layer.name, odt, chain)

    def op_Concat(self, node, ins, attrs):
        if all(isinstance(v, Const) for v in ins):
            return self.fold_standard(node, ins)
        if not all(isinstance(v, Act) for v in ins):
            raise self.err("Concat of a constant and a non-constant tensor is not supported", node)
        nd = len(ins[0].shape)
        if attrs.get("axis", 1) % nd != 1:
            raise self.err("Concat is supported along the channel axis only", node)
        ops = [self._stream_operand(x, node) for x in ins]
        scales = {s for _, s, _, _ in ops}
        if len(scales) != 1:
            raise self.err(f"Concat operands have different scales {sorted(scales)}; "
                           "requantize them to one scale first", node)
        lo = min(x.dtype.min for x, *_ in ops)
        hi = max(x.dtype.max for x, *_ in ops)
        odt = DataType.bipolar() if all(x.dtype.is_bipolar for x, *_ in ops) else \
            DataType.for_range(lo if lo != -1 or hi != 1 else -1, hi)
        chans = tuple(x.shape[1] for x, *_ in ops)
        shape = (1, sum(chans)) + tuple(ins[0].shape[2:])
        hw_out = tuple(shape[p] for p in hw_perm(nd))[1:]
        layer = Concat(self.new_name("concat"), ops[0][0].dtype, odt, ops[0][3], hw_out,
                       [node.name], idts=tuple(x.dtype for x, *_ in ops), channels=chans,
                       inputs=[x.src for x, *_ in ops])
        self.add_layer(layer, ops[0][0].src)
        for x, *_ in ops[1:]:
            if x.src != INPUT:
                self.g.add_edge(x.src, layer.name)
        add = np.concatenate([a for *_, a, _ in ops], axis=1)
        chain = [ChainOp("affine", (self.full(scales.pop(), shape), add), node.name)]
        return Act(shape, canonical_pos(shape), layer.name, odt, chain)

    # -- QDQ (onnxruntime static quantization) ------------------------------------------
    def _qdq_params(self, node, shape, axis):
        scale = np.asarray(self.const(node.input[1], node), np.float64)
        zp_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
        zp_raw = self.const(zp_name, node) if zp_name else np.zeros((), np.uint8)
        zp = np.asarray(zp_raw, np.float64)
        if scale.ndim == 1 and scale.size > 1:   # per-axis
            bshape = [1] * len(shape)
            bshape[axis % len(shape)] = scale.size
            scale, zp = scale.reshape(bshape), (zp.reshape(bshape) if zp.ndim else zp)
        return (np.broadcast_to(scale, shape).copy(), np.broadcast_to(zp, shape).copy(),
                np.asarray(zp_raw).dtype)

    def op_QuantizeLinear(self, node, ins, attrs):
        x = ins[0]
        shape = x.value.shape if isinstance(x, Const) else x.shape
        scale, zp, zdt = self._qdq_params(node, shape, attrs.get("axis", 1))
        if attrs.get("block_size", 0):
            raise self.err("blocked QuantizeLinear is not supported", node)
        out_dt = attrs.get("output_dtype", 0)
        np_dt = onnx.helper.tensor_dtype_to_np_dtype(out_dt) if out_dt else zdt
        if not np.issubdtype(np_dt, np.integer):
            raise self.err(f"QuantizeLinear to {np_dt} is not supported (integer types only)", node)
        info = np.iinfo(np_dt)
        dtype = DataType.for_range(int(info.min), int(info.max))
        if np.any(scale <= 0):
            raise self.err("QuantizeLinear scale must be positive", node)
        y = self.quantize(node, x, LinearQuant(dtype, scale, zp))
        if isinstance(y, Act):   # the ONNX value of QuantizeLinear is the integer itself
            y.chain = [ChainOp("affine", (self.full(1.0, y.shape), self.full(0.0, y.shape)),
                               node.name)]
        else:
            y = Const(y.quant.q.astype(np_dt), QConst(y.quant.q, np.ones(shape), np.zeros(shape),
                                                      dtype))
        return y

    def op_DequantizeLinear(self, node, ins, attrs):
        x = ins[0]
        shape = x.value.shape if isinstance(x, Const) else x.shape
        scale, zp, _ = self._qdq_params(node, shape, attrs.get("axis", 1))
        if isinstance(x, Const):
            q = np.asarray(x.value).astype(np.int64)
            value = ((q - zp) * scale).astype(np.float32)
            dtype = DataType.for_values(q) if q.size else DataType.int(8)
            return Const(value, QConst(q, scale.astype(np.float32), zp, dtype))
        p = np.float32
        chain = x.chain + [ChainOp("sub", (zp.astype(p),), node.name),
                           ChainOp("mul", (scale.astype(p),), node.name)]
        return Act(x.shape, x.pos, x.src, x.dtype, chain, x.shared)

    # -- compute layers ------------------------------------------------------------------
    def _mvau(self, node, x: Act, wq: np.ndarray, ws: np.ndarray, wdt: DataType,
              k_offset: np.ndarray, in_shape: tuple, out_shape: tuple, pred: str) -> MVAU:
        """Build an MVAU from integer weights wq (MH, MW) in stream column order."""
        binary = x.dtype.is_bipolar and wdt.is_bipolar
        lo, hi = mvau_acc_range(wq, x.dtype, binary)
        accdt = DataType.for_range(int(lo.min()), int(hi.max()))
        layer = MVAU(self.new_name("mvau"), x.dtype, accdt, in_shape, out_shape, [node.name],
                     weights=wq, wdt=wdt, binary=binary, accdt=accdt)
        self.add_layer(layer, pred)
        return layer

    def _acc_affine(self, layer: MVAU, s: float, ws: np.ndarray, offset: np.ndarray):
        """Per-channel (mul, add) with real = mul * hw_acc + add."""
        mul = s * ws
        if layer.binary:   # dot = 2 * popcount - MW
            return 2 * mul, offset - layer.mw * mul
        return mul, offset

    def op_MatMul(self, node, ins, attrs):
        folded = self.generic(node, ins, attrs)
        if folded is not None:
            return folded
        x, w = ins
        if not isinstance(x, Act) or not isinstance(w, Const):
            raise self.err("MatMul must be activation x constant weights", node)
        return self.dense(node, x, w, transpose=False)

    def op_Gemm(self, node, ins, attrs):
        x, w = ins[0], ins[1]
        if not isinstance(x, Act) or not isinstance(w, Const):
            raise self.err("Gemm must be activation x constant weights", node)
        if attrs.get("transA", 0):
            raise self.err("Gemm with transA=1 is not supported", node)
        y = self.dense(node, x, w, transpose=bool(attrs.get("transB", 0)))
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        if alpha != 1.0:
            y.chain.append(ChainOp("mul", (self.full(np.float32(alpha), y.shape),), node.name))
        if len(ins) > 2 and ins[2] is not None:
            c = np.asarray(self.const(node.input[2], node), np.float32) * np.float32(beta)
            y.chain.append(ChainOp("add", (self.full(c, y.shape).astype(np.float32),), node.name))
        return y

    def dense(self, node, x: Act, w: Const, transpose: bool) -> Act:
        x = self.integer(x, node)
        if len(x.shape) != 2 or x.shape[0] != 1:
            raise self.err(f"fully connected input must be (1, K), got {list(x.shape)}", node)
        s, r, add = self.int_input(x, node)
        wq, ws, wdt = self.weights(w, node, axis=0 if transpose else 1)
        if transpose:
            wq = wq.T
        w_real = wq * ws[None, :]
        if np.any(r != 1):   # per-feature input scales become integer weight factors
            wq = wq * r.reshape(-1, 1)
            wdt = DataType.for_values(wq)
        k = x.shape[1]
        if wq.ndim != 2 or wq.shape[0] != k:
            raise self.err(f"weight shape {list(wq.shape)} does not match input {k}", node)
        src_shape = self.src_shape(x)
        if int(np.prod(src_shape)) != k:
            raise self.err("fully connected input is a subset of its producer's output", node)
        order = np.argsort(x.pos.reshape(-1))      # ONNX feature index at each stream position
        w_hw = wq[order, :].T.copy()               # (MH, MW) in stream order
        m = wq.shape[1]
        offset = add.reshape(-1).astype(np.float64) @ w_real.astype(np.float64)
        pred = x.src
        if len(src_shape) > 1:
            self.notes.append(f"{node.name}: flattened feature map; weights permuted to "
                              "channels-last stream order")
        layer = self._mvau(node, x, w_hw, ws, wdt, offset, (k,), (m,), pred)
        mul, addv = layer.real_of_acc = self._acc_affine(layer, s, ws, offset)
        shape = (1, m)
        return Act(shape, np.arange(m).reshape(shape), layer.name, layer.accdt,
                   [ChainOp("affine", (self.full(mul, shape), self.full(addv, shape)), node.name)])

    def _spatial(self, node, x: Act):
        if len(x.shape) != 4:
            raise self.err(f"expected an NCHW tensor, got shape {list(x.shape)}", node)
        if not np.array_equal(x.pos, canonical_pos(x.shape)) or \
                tuple(self.src_shape(x)) != (x.shape[2], x.shape[3], x.shape[1]):
            raise self.err("the input's layout is not the channels-last stream of its "
                           "producer (a Transpose that moves channels is not supported here)", node)

    def op_Conv(self, node, ins, attrs):
        x, w = ins[0], ins[1]
        if not isinstance(x, Act) or not isinstance(w, Const):
            raise self.err("Conv must be activation x constant weights", node)
        x = self.integer(x, node)
        self._spatial(node, x)
        if attrs.get("group", 1) != 1:
            raise self.err("grouped / depthwise convolution is not supported", node)
        if any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise self.err("dilated convolution is not supported", node)
        if _s(attrs.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
            raise self.err("auto_pad SAME_* is not supported; export explicit pads", node)
        s, r, add = self.int_input(x, node)
        wq, ws, wdt = self.weights(w, node, axis=0)
        w_real = wq * ws[:, None, None, None]
        r_c = reduce_channels(r, x.pos.reshape(-1) % x.shape[1], x.shape[1])
        if r_c is None:
            raise self.err("input scale varies within a channel", node)
        if np.any(r_c != 1):   # per-channel input scales become integer weight factors
            wq = wq * r_c.reshape(1, -1, 1, 1)
            wdt = DataType.for_values(wq)
        oc, ic, kh, kw = wq.shape
        _, c, h, wd = x.shape
        if ic != c:
            raise self.err(f"weights expect {ic} input channels, tensor has {c}", node)
        sh, sw = attrs.get("strides", [1, 1])
        pt, pl, pb, pr = attrs.get("pads", [0, 0, 0, 0])
        oh, ow = (h + pt + pb - kh) // sh + 1, (wd + pl + pr - kw) // sw + 1
        if oh <= 0 or ow <= 0:
            raise self.err("kernel larger than the padded input", node)
        add_c = reduce_channels(add, x.pos.reshape(-1) % c, c)
        if add_c is None:
            raise self.err("input offset varies within a channel", node)
        pad_value = 0
        if pt or pl or pb or pr:
            q0 = -add_c / (s * r_c)
            if x.dtype.is_bipolar or not np.all(q0 == q0[0]) or q0[0] != np.round(q0[0]) or \
                    not x.dtype.min <= q0[0] <= x.dtype.max:
                raise self.err("zero padding needs an input datatype that can represent 0 "
                               f"({x.dtype} cannot)", node)
            pad_value = int(q0[0])
        swg = SlidingWindow(self.new_name("swg"), x.dtype, x.dtype, (h, wd, c),
                            (oh, ow, kh * kw * c), [node.name], kernel=(kh, kw), stride=(sh, sw),
                            pads=(pt, pl, pb, pr), pad_value=pad_value)
        self.add_layer(swg, x.src)
        w_hw = wq.transpose(0, 2, 3, 1).reshape(oc, -1).copy()
        offset = (add_c[None, :] * w_real.sum((2, 3))).sum(1)
        layer = self._mvau(node, x, w_hw, ws, wdt, offset, (oh, ow, kh * kw * c), (oh, ow, oc),
                           swg.name)
        mul, addv = layer.real_of_acc = self._acc_affine(layer, s, ws, offset)
        shape = (1, oc, oh, ow)
        cb = lambda v: self.full(np.asarray(v).reshape(1, oc, 1, 1), shape)
        chain = [ChainOp("affine", (cb(mul), cb(addv)), node.name)]
        if len(ins) > 2 and ins[2] is not None:
            bias = np.asarray(self.const(node.input[2], node), np.float32)
            chain.append(ChainOp("add", (cb(bias).astype(np.float32),), node.name))
        return Act(shape, canonical_pos(shape), layer.name, layer.accdt, chain)

    def op_MaxPool(self, node, ins, attrs):
        x = ins[0]
        if not isinstance(x, Act):
            return self._const_only(node, ins, attrs)
        x = self.integer(x, node)
        self._spatial(node, x)
        if len([o for o in node.output if o]) > 1:
            raise self.err("MaxPool with an indices output is not supported", node)
        if any(attrs.get("pads", [0, 0, 0, 0])) or any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise self.err("padded or dilated MaxPool is not supported", node)
        affine = compose_affine(x.chain)
        if affine is None or np.any(np.asarray(affine[0]) <= 0):
            raise self.err("MaxPool must follow a quantizer (max commutes only with an "
                           "increasing affine map from integers)", node)
        affine = tuple(np.broadcast_to(v, x.shape) for v in affine)
        kh, kw = attrs["kernel_shape"]
        sh, sw = attrs.get("strides", [1, 1])
        _, c, h, w = x.shape
        ceil = attrs.get("ceil_mode", 0)
        oh = (h - kh + (sh - 1 if ceil else 0)) // sh + 1
        ow = (w - kw + (sw - 1 if ceil else 0)) // sw + 1
        if ceil and ((oh - 1) * sh + kh > h or (ow - 1) * sw + kw > w):
            raise self.err("ceil_mode MaxPool with a partial window is not supported", node)
        layer = MaxPool(self.new_name("pool"), x.dtype, x.dtype, (h, w, c), (oh, ow, c),
                        [node.name], kernel=(kh, kw), stride=(sh, sw))
        self.add_layer(layer, x.src)
        shape = (1, c, oh, ow)
        chan = x.pos.reshape(-1) % c
        per_c = [reduce_channels(p, chan, c) for p in affine]
        if any(p is None for p in per_c):
            raise self.err("MaxPool input scale varies within a channel", node)
        params = tuple(self.full(p.reshape(1, c, 1, 1), shape) for p in per_c)
        return Act(shape, canonical_pos(shape), layer.name, x.dtype,
                   [ChainOp("affine", params, node.name)])

    def _sum_pool(self, node, x: Act, kh, kw, sh, sw) -> Act:
        x = self.integer(x, node)
        self._spatial(node, x)
        affine = compose_affine(x.chain)
        if affine is None:
            raise self.err("average pooling must follow a quantizer (a non-affine float op "
                           "comes before it)", node)
        _, c, h, w = x.shape
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        chan = x.pos.reshape(-1) % c
        mul, add = (reduce_channels(np.broadcast_to(v, x.shape), chan, c) for v in affine)
        if mul is None or add is None:
            raise self.err("average pooling input scale varies within a channel", node)
        k = kh * kw
        lo, hi = k * x.dtype.min, k * x.dtype.max
        odt = DataType.for_range(lo, hi)
        layer = SumPool(self.new_name("sumpool"), x.dtype, odt, (h, w, c), (oh, ow, c),
                        [node.name], kernel=(kh, kw), stride=(sh, sw))
        self.add_layer(layer, x.src)
        shape = (1, c, oh, ow)
        cb = lambda v: self.full(np.asarray(v).reshape(1, c, 1, 1), shape)
        # the sum of the window's real values, then the float division AveragePool does
        chain = [ChainOp("affine", (cb(mul), cb(k * add)), node.name),
                 ChainOp("div", (self.full(np.float32(k), shape).astype(np.float32),), node.name)]
        return Act(shape, canonical_pos(shape), layer.name, odt, chain)

    def op_AveragePool(self, node, ins, attrs):
        x = ins[0]
        if not isinstance(x, Act):
            return self._const_only(node, ins, attrs)
        if any(attrs.get("pads", [0, 0, 0, 0])) or attrs.get("ceil_mode", 0) or \
                _s(attrs.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID") or \
                any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise self.err("padded, ceil-mode or dilated AveragePool is not supported", node)
        kh, kw = attrs["kernel_shape"]
        sh, sw = attrs.get("strides", [1, 1])
        return self._sum_pool(node, x, kh, kw, sh, sw)

    def op_GlobalAveragePool(self, node, ins, attrs):
        x = ins[0]
        if not isinstance(x, Act) or len(x.shape) != 4:
            raise self.err("GlobalAveragePool needs an NCHW feature map", node)
        return self._sum_pool(node, x, x.shape[2], x.shape[3], 1, 1)

    # -- output heads --------------------------------------------------------------------
    def _head(self, node, x: Act, k: int, axis: int, keepdims: bool, want_values: bool):
        if len(x.shape) != 2 or axis % 2 != 1:
            raise self.err("top-k / argmax is supported over the features of a (1, C) tensor", node)
        if k > x.shape[1]:
            raise self.err(f"k={k} is larger than the {x.shape[1]} features", node)
        src = self.src_layer(x)
        nch = x.shape[1]
        hw_ok = (not want_values and src is not None and not x.shared and
                 np.array_equal(x.pos.reshape(-1), np.arange(nch)) and
                 self._strictly_increasing_uniform(x, src))
        out_shape = (1, k) if keepdims or k > 1 else (1,)
        if hw_ok:
            layer = LabelSelect(self.new_name("topk"), x.dtype, DataType.for_range(0, nch - 1),
                                (nch,), (k,), [node.name], k=k)
            self.add_layer(layer, x.src)
            y = Act((1, k), np.arange(k).reshape(1, k), layer.name, layer.odt, [])
            y.out_dtype, y.out_shape = "int64", out_shape
            return y
        def head(t, k=k):
            return np.argsort(-t, axis=-1, kind="stable")[..., :k].astype(np.int64)
        head.label = f"top-{k}"
        y = Act(x.shape, x.pos, x.src, x.dtype, x.chain, x.shared)
        y.head, y.out_dtype, y.out_shape = head, "int64", out_shape
        self.notes.append(f"{node.name}: top-k computed on the host (the scores are not a "
                          "strictly increasing, channel-uniform map of the accumulators)")
        return y

    def _strictly_increasing_uniform(self, x: Act, src) -> bool:
        """Can hardware rank raw integers instead of the float scores? Checked on every
        reachable integer value, so ties and order are exactly those of the float model."""
        if isinstance(src, MVAU) and src.thresholds is None:
            lo, hi = mvau_acc_range(src.weights, src.idt, src.binary)
            lo, hi = int(lo.min()), int(hi.max())
        else:
            lo, hi = x.dtype.min, x.dtype.max
        if hi - lo > 1 << 22:
            return False
        vals = np.arange(lo, hi + 1, dtype=np.int64)[:, None]
        y = eval_chain(x.chain, np.broadcast_to(vals, (vals.shape[0], x.shape[1])))
        return bool(np.all(y == y[:, :1]) and np.all(np.diff(y[:, 0]) > 0))

    def op_TopK(self, node, ins, attrs):
        x = ins[0]
        k = int(np.asarray(self.const(node.input[1], node)).ravel()[0])
        if not attrs.get("largest", 1) or not attrs.get("sorted", 1):
            raise self.err("only largest=1, sorted=1 TopK is supported", node)
        want_values = self.consumers.get(node.output[0], 0) > 0
        if want_values:
            raise self.err("TopK values output is used; only the indices are supported", node)
        return [None, self._head(node, x, k, attrs.get("axis", -1), True, False)]

    def op_Softmax(self, node, ins, attrs):
        """A final Softmax stays on the host; the hardware returns the logits."""
        x = ins[0]
        if not isinstance(x, Act) or hasattr(x, "head") or len(x.shape) != 2 or \
                attrs.get("axis", -1) % 2 != 1:
            raise self.err("only a final Softmax over the features of a (1, C) tensor is "
                           "supported (it runs on the host)", node)
        if self.consumers.get(node.output[0], 0) != 1 or \
                node.output[0] != self.model.graph.output[0].name:
            raise self.err("Softmax must be the model's last op (it runs on the host)", node)

        def head(t):
            t = np.asarray(t, np.float32)
            e = np.exp(t - t.max(axis=-1, keepdims=True))
            return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
        head.label = "softmax"
        y = Act(x.shape, x.pos, x.src, x.dtype, x.chain, x.shared)
        y.head, y.out_dtype, y.out_shape = head, "float32", x.shape
        self.notes.append(f"{node.name}: softmax runs on the host; the hardware returns logits")
        return y

    def op_ArgMax(self, node, ins, attrs):
        if attrs.get("select_last_index", 0):
            raise self.err("ArgMax with select_last_index=1 is not supported", node)
        return self._head(node, ins[0], 1, attrs.get("axis", 0), bool(attrs.get("keepdims", 1)),
                          False)


def lower(model: onnx.ModelProto, path: str, input_type: str | None = None,
          input_scale: float = 1.0) -> Design:
    from ..passes.streams import insert_duplicates
    from ..passes.widths import minimize_widths
    return minimize_widths(insert_duplicates(Lowering(model, path, input_type, input_scale).run()))
