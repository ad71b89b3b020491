"""Make stream fan-out explicit: a stream read by several layers gets a Duplicate layer
(hardware streams have one reader). The golden model does not need it; the backends do,
and `check_streams` is what both of them require of a design."""
from __future__ import annotations

from ..errors import BnnccError
from ..ir import INPUT
from ..layers import Duplicate


def check_streams(design) -> tuple:
    """(first, last) layers of a design the backends can build: the host stream feeds one
    layer once, one layer is read by nobody, every stream has one reader (a Duplicate of
    n outputs has n), and each producer and consumer agree on word size and element
    width. Raises BnnccError naming the layer otherwise."""
    from ..layers import in_elems, out_elems
    layers = design.layers()
    if not layers:
        raise BnnccError("the design has no hardware layers")
    readers = design.reader_map()
    host = [design.layer(v) for v, _ in readers[INPUT]]
    if len(host) != 1 or design.inputs_of(host[0].name) != [INPUT]:
        raise BnnccError("the host input stream must feed exactly one layer, once "
                         f"(it feeds {sorted(l.name for l in host)}): run "
                         "bnncc.passes.streams.insert_duplicates first")
    sinks = [l for l in layers if not readers[l.name]]
    if len(sinks) != 1:
        raise BnnccError(f"the design must have exactly one output layer (it has "
                         f"{sorted(l.name for l in sinks)})")
    for l in layers:
        rs = readers[l.name]
        if isinstance(l, Duplicate) and len(rs) != l.n:
            raise BnnccError(f"{l.name}: a duplicate of {l.n} outputs has {len(rs)} readers")
        if not isinstance(l, Duplicate) and len(rs) > 1:
            raise BnnccError(f"{l.name} feeds {len(rs)} inputs: a stream has one reader, "
                             "run bnncc.passes.streams.insert_duplicates first")
        for v, i in rs:
            b = design.layer(v)
            if out_elems(l) != in_elems(b):
                raise BnnccError(f"{l.name} writes words of {out_elems(l)} elements but "
                                 f"{b.name} reads words of {in_elems(b)}: run "
                                 "bnncc.folding.fold_simple or insert_width_converters first")
            if l.odt.bits != b.in_dtypes[i].bits:
                raise BnnccError(f"{l.name} outputs {l.odt} but {b.name} reads "
                                 f"{b.in_dtypes[i]}" + (f" (input {i})" if len(b.in_dtypes) > 1 else ""))
    return host[0], sinks[0]


def insert_duplicates(design):
    g = design.graph
    readers: dict[str, list[str]] = {}
    for name in list(g.nodes):
        for src in design.inputs_of(name):
            readers.setdefault(src, []).append(name)
    for src, users in sorted(readers.items()):
        if len(users) < 2:
            continue
        shape = tuple(design.input_stage.hw_shape) if src == INPUT else \
            tuple(g.nodes[src]["layer"].out_shape)
        dt = design.input_stage.quant.dtype if src == INPUT else g.nodes[src]["layer"].odt
        dup = Duplicate(f"dup_{src.strip('_')}", dt, dt, shape, shape, [], n=len(users))
        g.add_node(dup.name, layer=dup)
        if src != INPUT:
            g.add_edge(src, dup.name)
        for u in dict.fromkeys(users):
            if g.has_edge(src, u):
                g.remove_edge(src, u)
            g.add_edge(dup.name, u)
            layer = g.nodes[u]["layer"]
            if getattr(layer, "inputs", None):
                layer.inputs = [dup.name if i == src else i for i in layer.inputs]
    return design
