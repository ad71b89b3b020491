"""Make stream fan-out explicit: a stream read by several layers gets a Duplicate layer
(hardware streams have one reader). The golden model does not need it; the backends do."""
from __future__ import annotations

from ..ir import INPUT
from ..layers import Duplicate


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
