"""Depth of the FIFO on every stream edge of a design, shared by both backends and the
estimate.

Every edge gets at least FIFO_MIN_DEPTH words; an MVAU with several neuron folds reads its
input only during fold 0, so a FIFO of one input vector lets its producer run on.

Where streams split and join again (a residual add, a concat), the short path must buffer
what the long path holds in flight, or the split blocks on the full short path while the
join waits for the long one: a deadlock. Each layer reports the input words it can hold
(`held_words`); along every path from the input the held amounts are summed as fractions
of a frame, and a join's input FIFO gets the difference between its longest and its own
shortest path, converted to its words, plus two words per pixel of margin. A whole frame
always suffices (every layer emits frame f having read at most frame f), so that is the
cap."""
from __future__ import annotations

from math import ceil

import networkx as nx
import numpy as np

from ..ir import INPUT
from ..layers import MVAU, in_elems, out_elems

FIFO_MIN_DEPTH = 32     # LUT RAM holds 32 words for the cost of 2: decouples bursty neighbours


def base_depth(consumer) -> int:
    if isinstance(consumer, MVAU) and consumer.mh // consumer.pe > 1:
        return max(FIFO_MIN_DEPTH, consumer.mw // consumer.simd + 2)
    return FIFO_MIN_DEPTH


def frame_words(layer) -> int:
    """Words per frame on a layer's output stream."""
    return max(1, int(np.prod(layer.out_shape)) // out_elems(layer))


def fifo_depths(design) -> dict[tuple[str, int], int]:
    """(consumer, input index) -> FIFO depth in words, for every input fed by a layer (the
    top-level input stream has no FIFO)."""
    g = design.graph
    depths: dict[tuple[str, int], int] = {}
    most: dict[str, float] = {}      # frames in flight from the input: longest path
    least: dict[str, float] = {}     # shortest path
    for v in nx.topological_sort(g):
        layer = g.nodes[v]["layer"]
        held = layer.held_words() * in_elems(layer) / max(1, int(np.prod(layer.in_shapes[0])))
        ins = [(i, p) for i, p in enumerate(design.inputs_of(v)) if p != INPUT]
        base = base_depth(layer)
        for i, _ in ins:
            depths[(v, i)] = base
        if len(ins) > 1:
            top = max(most[p] + base / frame_words(g.nodes[p]["layer"]) for _, p in ins)
            for i, p in ins:
                prod = g.nodes[p]["layer"]
                fw = frame_words(prod)
                pixels = max(1, int(np.prod(prod.out_shape[:-1])))
                need = ceil((top - least[p]) * fw) + 2 * ceil(fw / pixels)
                depths[(v, i)] = max(base, min(fw + 2, need))
        if ins:
            path = [(p, depths[(v, i)] / frame_words(g.nodes[p]["layer"])) for i, p in ins]
            most[v] = max(most[p] + f for p, f in path) + held
            least[v] = min(least[p] + f for p, f in path) + held
        else:
            most[v] = least[v] = held
    return depths
