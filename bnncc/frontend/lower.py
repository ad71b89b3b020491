"""Lower a validated ONNX graph into the hardware IR in one walk over its nodes.

Every ONNX tensor becomes either a `Const` (weights, shapes, BN parameters; quantizers
on constants give integer weights plus their scale) or an `Act`: an integer stream
produced by a hardware layer (or the raw float input) seen through

  * `pos`: for each element of the ONNX tensor, its position in the producer's stream,
    so layout-only ops (Reshape, Flatten, Transpose, Squeeze, Unsqueeze) cost nothing
    and fully connected weights are permuted to the stream order;
  * `chain`: the elementwise float ops applied since the integer (passes/chain.py),
    starting with the affine map from the integer to its real value.

This module holds the walk and the helpers every op family shares; the handlers are in
bnncc/frontend/ops/, one module per family (layout, elementwise, quantizers, joins, qdq,
sign, compute, pooling, heads), registered by op type. What cannot be mapped exactly raises
UnsupportedError naming the node.
"""
from __future__ import annotations

import networkx as nx
import numpy as np
import onnx
from onnx import numpy_helper

from ..datatypes import DataType
from ..errors import BnnccError, UnsupportedError
from ..ir import INPUT, Design, HostStage
from ..passes.chain import ChainOp, compose_affine
from ..quantizers import FixedInput, parse_dtype
from .factor import factor_channels
from .ops import OPS
from .ops.compute import ComputeOps
from .ops.elementwise import ElementwiseOps
from .ops.heads import HeadOps
from .ops.joins import JoinOps
from .ops.layout import LayoutOps
from .ops.padding import PadOps
from .ops.pooling import PoolOps
from .ops.qdq import QdqOps
from .ops.qoperator import QOperatorOps
from .ops.quantizers import QuantOps
from .ops.sign import CMP_OPS, SignOps
from .values import Act, Cmp, Const, _attrs, canonical_pos, hw_perm

# re-exported: tests and tools build values and designs through this module
__all__ = ["Act", "Const", "Lowering", "lower"]


class Lowering(LayoutOps, ElementwiseOps, QuantOps, SignOps, JoinOps, QdqOps, QOperatorOps,
               ComputeOps, PoolOps, HeadOps, PadOps):
    """One walk over the sorted nodes; the op handlers live in bnncc/frontend/ops/."""

    def __init__(self, model: onnx.ModelProto, path: str, input_type: str | None = None,
                 input_scale: float = 1.0):
        self.model, self.path = model, path
        self.input_type, self.input_scale = input_type, float(input_scale)
        self.g = nx.DiGraph()
        self.vals: dict[str, Const | Act] = {}
        self.counts: dict[str, int] = {}
        self.input_stage: HostStage | None = None
        self.input_read = False        # some layer reads the input stream
        self.notes: list[str] = []
        self.per_channel_widths = False
        self.consumers: dict[str, int] = {}
        self.producers = {o: n for n in model.graph.node for o in n.output}
        self.users: dict[str, list] = {}
        for n in model.graph.node:
            for i in n.input:
                self.users.setdefault(i, []).append(n)
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
        self.input_read = self.input_read or pred == INPUT
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

    def canonical_input(self, act: Act) -> Act:
        """A view of the input stream in another layout (the NHWC -> NCHW Transpose tf2onnx
        puts before the first Conv) becomes the stream itself: the host reorders the input
        for free. Only while no layer reads the input and no other view of it is used."""
        st = self.input_stage
        if act.src != INPUT or st is None or self.input_read or \
                np.array_equal(act.pos, canonical_pos(act.shape)):
            return act
        if any(self.consumers.get(k, 0) > 1 for k, v in self.vals.items()
               if isinstance(v, Act) and v.src == INPUT):
            return act
        n = int(np.prod(st.shape))
        inv = np.transpose(np.arange(n).reshape(st.shape), st.hw_order).reshape(-1)
        elem = inv[act.pos.reshape(-1)]        # stage element at each new stream position
        shape = tuple(act.shape)

        def remap(a):
            a = np.asarray(a)
            return a.reshape(-1)[elem].reshape(shape) if a.ndim and a.size == n else a
        q = st.quant
        quant = type(q)(**{k: remap(v) if isinstance(v, np.ndarray) else v
                           for k, v in q.__dict__.items()})
        perm = hw_perm(len(shape))
        self.input_stage = HostStage(shape=shape, gather=st.gather[elem],
                                     chain=[op.map_params(remap) for op in st.chain],
                                     quant=quant, hw_order=perm,
                                     hw_shape=tuple(shape[p] for p in perm)[1:])
        self.notes.append("the host reorders the input to the layout of its first layer")
        return Act(shape, canonical_pos(shape), INPUT, act.dtype, act.chain, act.shared)

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
            if np.all(np.isfinite(v)) and np.array_equal(v, np.round(v)):
                if v.size and np.max(np.abs(v)) >= 2.0 ** 32:
                    raise self.err(f"integer-valued weights up to {np.max(np.abs(v)):g} are "
                                   "wider than 32 bits", node)
                q = v.astype(np.int64)
                return q, np.ones(v.shape[axis]), DataType.for_values(q)
            f = factor_channels(v, axis)
            if f is None:
                raise self.err("weights are not quantized (no Quant/BipolarQuant/Sign on "
                               "them) and some output channel's weights do not factor "
                               "exactly into a scale times integers of at most 8 bits", node)
            q, s = f
            if np.any(s != 1):
                self.notes.append(f"{node.name}: float weights factored into per-channel "
                                  "scales times integers (BatchNorm folded into the weights)")
            return q, s, DataType.for_values(q)
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
            handler = OPS.get(node.op_type)
            if handler is None:
                raise self.err(f"operator '{node.op_type}' is not supported", node)
            try:
                ins = [self.get(i, node) if i else None for i in node.input]
                if node.op_type not in ("Conv", "Pad") and \
                        any(isinstance(v, Act) and v.pad is not None for v in ins):
                    raise self.err(f"a Pad node feeding {node.op_type} is not supported (a "
                                   "Pad must come right before a Conv)", node)
                if any(isinstance(v, Cmp) for v in ins) and node.op_type not in CMP_OPS:
                    raise self.err("a comparison result is used by this op; comparisons are "
                                   "supported as signs (Where / Cast / Not)", node)
                outs = handler(self, node, ins, _attrs(node))
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
        if isinstance(out, Act) and out.pad is not None:
            raise UnsupportedError("a Pad node's output is the model output; only a Conv "
                                   "may read a Pad", file=self.path)
        if not isinstance(out, Act) or out.src in (None, INPUT):
            raise UnsupportedError("the model output does not depend on any hardware layer",
                                   file=self.path)
        ostage = HostStage(shape=out.shape, gather=out.pos.reshape(-1), chain=out.chain,
                           head=head, out_dtype=getattr(out, "out_dtype", "float32"))
        shape = getattr(out, "out_shape", out.shape)
        dims = g.output[0].type.tensor_type.shape.dim
        declared = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        if g.output[0].type.tensor_type.HasField("shape") and not (
                len(declared) == len(shape) and
                all(d is None or d == s for d, s in zip(declared, shape))):
            raise BnnccError(f"output '{g.output[0].name}' is declared with shape "
                             f"{[d if d is not None else '?' for d in declared]} but the graph "
                             f"computes {list(shape)}", file=self.path)
        return Design(self.path, self.g, self.in_name, self.in_shape, g.output[0].name,
                      tuple(shape), self.input_stage, ostage, self.notes,
                      per_channel_widths=self.per_channel_widths)

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

    def generic(self, node, ins, attrs):
        if all(isinstance(v, Const) for v in ins if v is not None):
            return self.fold_standard(node, [v for v in ins if v is not None])
        return None


def lower(model: onnx.ModelProto, path: str, input_type: str | None = None,
          input_scale: float = 1.0, prune: str = "auto") -> Design:
    """`prune`: remove constant / unread channels ("auto": in networks with zero-weight
    channels, "on", "off"; bnncc.passes.prune)."""
    from ..passes.prune import prune_channels
    from ..passes.streams import insert_duplicates
    from ..passes.widths import minimize_widths
    design = Lowering(model, path, input_type, input_scale).run()
    return minimize_widths(insert_duplicates(prune_channels(design, prune)))
