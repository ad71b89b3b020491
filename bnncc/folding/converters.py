"""Width converters: put one on every edge whose word sizes differ, or take them all
out so that a design can be folded again."""
from __future__ import annotations

from ..layers import DepthToSpace, WidthConverter, in_elems, out_elems


def strip_width_converters(design):
    """Remove WidthConverters (so a design can be folded again)."""
    g = design.graph
    for name in [n for n in g.nodes if isinstance(g.nodes[n]["layer"], WidthConverter)]:
        preds, succs = list(g.predecessors(name)), list(g.successors(name))
        g.remove_node(name)
        for u in preds:
            for v in succs:
                g.add_edge(u, v)
                layer = g.nodes[v]["layer"]
                if getattr(layer, "inputs", None):
                    layer.inputs = [u if i == name else i for i in layer.inputs]
    return design


def insert_width_converters(design):
    """Put a WidthConverter on every edge whose word sizes differ (idempotent)."""
    g = design.graph
    for u, v in list(g.edges):
        a, b = g.nodes[u]["layer"], g.nodes[v]["layer"]
        if isinstance(a, WidthConverter) or isinstance(b, WidthConverter):
            continue
        if out_elems(a) != in_elems(b):
            name = f"dwc_{u}_{v}"
            shape = tuple(a.out_shape)
            dwc = WidthConverter(name, a.odt, a.odt, shape, shape, [],
                                 in_elems=out_elems(a), out_elems=in_elems(b))
            g.remove_edge(u, v)
            g.add_node(name, layer=dwc)
            g.add_edge(u, name)
            g.add_edge(name, v)
            if getattr(b, "inputs", None):
                b.inputs = [name if i == u else i for i in b.inputs]
    return design


def follow_neighbours(design, fixed=()) -> None:
    """A DepthToSpace block's word takes its producer's (else its consumer's) element
    count where that is legal and no slower, so no width converter sits beside it: its
    buffer holds the same bits at any PE. Layers in `fixed` (pinned) keep their PE."""
    g = design.graph
    for name in g.nodes:
        d = g.nodes[name]["layer"]
        if not isinstance(d, DepthToSpace) or name in fixed:
            continue
        near = [out_elems(g.nodes[p]["layer"]) for p in g.predecessors(name)] + \
               [in_elems(g.nodes[c]["layer"]) for c in g.successors(name)]
        for e in near:
            if e >= d.pe and d.pe_channels() % e == 0:
                d.pe = e
                break
