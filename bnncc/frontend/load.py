"""Read and validate an ONNX file before anything else looks at it.

Every problem with the file itself becomes a BnnccError naming the file (and node/op
when there is one): missing file, corrupt or truncated protobuf, external data outside
the model's folder or with malformed fields, graph cycles, unknown domains; then the
attribute and shape checks of validate.py. Nodes that do not reach the output are dropped.
"""
from __future__ import annotations

import os
import re

import networkx as nx
import onnx
from onnx import external_data_helper

from ..errors import BnnccError, UnsupportedError
from .validate import validate

CUSTOM_DOMAINS = {"qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general",
                  "finn", "qonnx", "com.microsoft"}   # com.microsoft: onnxruntime's QGemm
STANDARD_DOMAINS = {"", "ai.onnx"}


_DIGITS = re.compile(r"[0-9]{1,18}")


def _check_external_data(model: onnx.ModelProto, path: str) -> None:
    base = os.path.dirname(os.path.abspath(path))
    real_base = os.path.realpath(base)
    for t in external_data_helper._get_all_tensors(model):
        if not external_data_helper.uses_external_data(t):
            continue
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        where = f"external data of tensor '{t.name}'"
        if not loc or "\0" in loc:
            raise BnnccError(f"{where} has an empty or invalid location {loc!r}", file=path)
        for key in ("offset", "length"):
            if key in info and not _DIGITS.fullmatch(info[key]):
                raise BnnccError(f"{where} has a {key} that is not a non-negative integer "
                                 f"({info[key]!r})", file=path)
        target = os.path.realpath(os.path.join(base, loc))
        if os.path.isabs(loc) or os.path.commonpath([real_base, target]) != real_base:
            raise BnnccError(f"{where} points outside the model's folder ({loc!r})", file=path)
        if not os.path.isfile(target):
            raise BnnccError(f"external data file {loc!r} of tensor '{t.name}' is missing",
                             file=path)
        size = os.path.getsize(target)
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else size - offset
        if offset + length > size or length < 0:
            raise BnnccError(f"{where} is truncated ({loc!r} has {size} bytes, needs "
                             f"{offset + max(length, 0)})", file=path)
        want = _expected_bytes(t)
        if want is not None and want != length:
            raise BnnccError(f"{where} has {length} bytes, its shape {list(t.dims)} needs "
                             f"{want}", file=path)


_UNSIZED = {getattr(onnx.TensorProto, n, -1) for n in
            ("STRING", "INT4", "UINT4", "FLOAT4E2M1", "UNDEFINED")}


def _expected_bytes(t) -> int | None:
    """Bytes a tensor's shape needs, where one element is a whole number of bytes."""
    if t.data_type in _UNSIZED:
        return None
    try:
        item = onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    except Exception:
        return None
    n = 1
    for d in t.dims:
        n *= d
    return n * item


def _prune(model: onnx.ModelProto) -> None:
    """Drop nodes nothing downstream of them reaches the graph outputs with: they cannot
    change the result, and every command then sees the same graph."""
    g = model.graph
    needed = {o.name for o in g.output}
    keep = []
    for n in reversed(g.node):
        if any(o in needed for o in n.output if o):
            keep.append(n)
            needed.update(i for i in n.input if i)
    if len(keep) != len(g.node):
        keep.reverse()
        del g.node[:]
        g.node.extend(keep)


def _toposort(model: onnx.ModelProto, path: str) -> None:
    """Sort nodes topologically in place; a cycle is an error."""
    g = model.graph
    producers = {}
    for i, n in enumerate(g.node):
        for o in n.output:
            if o:
                producers[o] = i
    dg = nx.DiGraph()
    dg.add_nodes_from(range(len(g.node)))
    for i, n in enumerate(g.node):
        for inp in n.input:
            if inp in producers:
                dg.add_edge(producers[inp], i)
    try:
        order = list(nx.lexicographical_topological_sort(dg))
    except nx.NetworkXUnfeasible:
        cyc = nx.find_cycle(dg)
        n = g.node[cyc[0][0]]
        raise BnnccError("the graph has a cycle", file=path, node=n.name or n.output[0],
                         op=n.op_type) from None
    nodes = [g.node[i] for i in order]
    del g.node[:]
    g.node.extend(nodes)


def load_onnx(path: str) -> onnx.ModelProto:
    if not os.path.exists(path):
        raise BnnccError("no such file", file=path)
    if not os.path.isfile(path):
        raise BnnccError("not a file", file=path)
    try:
        with open(path, "rb") as f:
            data = f.read()
        model = onnx.ModelProto()
        model.ParseFromString(data)
    except Exception as e:  # protobuf raises DecodeError and friends
        raise BnnccError(f"not a valid ONNX model (corrupt or truncated protobuf: "
                         f"{type(e).__name__})", file=path) from None
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise BnnccError("not a valid ONNX model (no graph or empty graph)", file=path)
    _check_external_data(model, path)
    try:
        external_data_helper.load_external_data_for_model(model, os.path.dirname(os.path.abspath(path)))
    except Exception as e:
        why = " ".join(str(e).split())[:200]
        raise BnnccError(f"cannot read external data: {why}", file=path) from None
    for n in model.graph.node:
        if n.domain not in STANDARD_DOMAINS | CUSTOM_DOMAINS:
            raise UnsupportedError(f"operator domain '{n.domain}' is not supported",
                                   file=path, node=n.name or n.output[0], op=n.op_type)
    _toposort(model, path)
    _prune(model)
    validate(model, path)
    return model
