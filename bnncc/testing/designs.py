"""Helpers the hardware test suites share: small designs built straight from layer
objects, designs of generated networks, random values of a datatype, and the committed
fixture models' inputs."""
from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np

from ..datatypes import DataType
from ..folding import insert_width_converters
from ..ir import INPUT, Design, HostStage

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"


def chain_design(*layers, name: str = "unit") -> Design:
    """A straight chain of layers with width converters where the word sizes differ."""
    g = nx.DiGraph()
    for l in layers:
        g.add_node(l.name, layer=l)
    for a, b in zip(layers, layers[1:]):
        g.add_edge(a.name, b.name)
    stage = HostStage(shape=(1,), gather=np.zeros(1, int), chain=[])
    d = Design(name, g, "x", (1,) + tuple(layers[0].in_shape), "y",
               (1,) + tuple(layers[-1].out_shape), stage, stage)
    return insert_width_converters(d)


def graph_design(*layers, name: str = "unit") -> Design:
    """Layers in topological order; a layer with `inputs` reads those layers (INPUT for
    the host stream), any other reads the layer before it. Fan-out gets Duplicates and
    differing word sizes get width converters, as lowering and folding would."""
    from ..passes.streams import insert_duplicates
    g = nx.DiGraph()
    for k, l in enumerate(layers):
        g.add_node(l.name, layer=l)
        srcs = getattr(l, "inputs", None) or ([layers[k - 1].name] if k else [INPUT])
        for s in srcs:
            if s != INPUT:
                g.add_edge(s, l.name)
    sinks = [l for l in layers if g.out_degree(l.name) == 0]
    stage = HostStage(shape=(1,), gather=np.zeros(1, int), chain=[],
                      hw_shape=tuple(layers[0].in_shape))
    stage.quant = type("Q", (), {"dtype": layers[0].idt})()
    d = Design(name, g, "x", (1,) + tuple(layers[0].in_shape), "y",
               (1,) + tuple(sinks[-1].out_shape), stage, stage)
    return insert_width_converters(insert_duplicates(d))


def generated_design(seed: int, integer: bool = True) -> tuple[Design, np.ndarray]:
    """The lowered design of random network `seed` (bnncc.testing.netgen) with fold_simple
    folding, and its quantized reference inputs."""
    from ..folding import fold_simple
    from ..frontend.lower import lower
    from . import netgen
    case = (netgen.random_int_network if integer else netgen.random_network)(seed)
    d = fold_simple(lower(case.model, case.name))
    return d, d.quantize_input(case.inputs)


def padded_design(seed: int) -> tuple[Design, np.ndarray]:
    """The lowered design of padded binary conv network `seed` (bnncc.testing.netgen.padded)
    with fold_simple folding, and its quantized reference inputs."""
    from ..folding import fold_simple
    from ..frontend.lower import lower
    from .netgen.padded import random_padded_network
    case = random_padded_network(seed)
    d = fold_simple(lower(case.model, case.name))
    return d, d.quantize_input(case.inputs)


def pool_model(mode: str, rounding: str, seed: int):
    """A small QONNX conv net with an average pool ("avg": 2x2 stride 2) or a global
    average pool ("global") between two quantizers, the second with `rounding`."""
    from onnx import TensorProto, helper, numpy_helper
    q = "qonnx.custom_op.general"
    rng = np.random.default_rng(seed)
    feats = 8 * (9 if mode == "avg" else 1)
    c = lambda n, v: numpy_helper.from_array(np.asarray(v, np.float32), n)
    inits = [c("s", 2 ** -4), c("z", 0.0), c("b4", 4.0), c("one", 1.0), c("b3", 3.0),
             c("s2", 2 ** -2), c("w", rng.integers(-2, 2, (8, 3, 3, 3))),
             c("wf", rng.integers(-3, 4, (feats, 5)))]
    quant = lambda i, o, s, b, signed, r="ROUND": helper.make_node(
        "Quant", [i, s, "z", b], [o], domain=q, signed=signed, narrow=0, rounding_mode=r)
    pool = (helper.make_node("AveragePool", ["a"], ["p"], kernel_shape=[2, 2], strides=[2, 2])
            if mode == "avg" else helper.make_node("GlobalAveragePool", ["a"], ["p"]))
    nodes = [quant("x", "xq", "s", "b4", 1), quant("w", "wq", "one", "b3", 1),
             helper.make_node("Conv", ["xq", "wq"], ["cv"], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["cv"], ["r"]), quant("r", "a", "s2", "b4", 0), pool,
             quant("p", "pq", "s2", "b4", 0, rounding), helper.make_node("Flatten", ["pq"], ["f"]),
             quant("wf", "wfq", "one", "b3", 1), helper.make_node("MatMul", ["f", "wfq"], ["y"])]
    g = helper.make_graph(nodes, "pool",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                               helper.make_opsetid(q, 1)])


def rand_values(rng, dt: DataType, shape) -> np.ndarray:
    if dt.is_bipolar:
        return rng.choice([-1, 1], size=shape).astype(np.int64)
    return rng.integers(dt.min, dt.max + 1, size=shape).astype(np.int64)


def fixture_index() -> list[dict]:
    p = FIXTURES / "index.json"
    return json.loads(p.read_text()) if p.is_file() else []


def load_fixture(entry: dict) -> Design:
    """A fixture model's design, with the input type its index entry declares (models
    without an input quantizer, e.g. tutorial exports taking float pixels)."""
    from ..api import load
    return load(str(FIXTURES / entry["model"]), entry.get("input_type"),
                entry.get("input_scale", 1.0))


def model_inputs(entry: dict, n: int) -> np.ndarray:
    """n float inputs for a fixture model: its stored reference inputs, then (when it has
    fewer than n) seeded variations of them (flips, shifts, noise) within their range."""
    x = np.load(FIXTURES / entry["refs"])["inputs"]
    if len(x) >= n:
        return x[:n]
    rng = np.random.default_rng(len(x))
    lo, hi = float(x.min()), float(x.max())
    extra = []
    for i in range(n - len(x)):
        v = x[i % len(x)]
        v = np.flip(v, axis=-1) if i % 2 else np.roll(v, int(rng.integers(-3, 4)), axis=-2)
        extra.append(np.clip(v + rng.normal(0, 0.05 * (hi - lo), v.shape), lo, hi))
    return np.concatenate([x, np.asarray(extra, dtype=x.dtype)])


def flip_threshold(design: Design, layer: str, channel: int = 0) -> Design:
    """A copy of a folded design with one threshold of `layer` moved to the far end of
    its type's range: a deliberately broken design for checking that cosim catches it."""
    import copy
    bad = copy.deepcopy(design)
    t = bad.layer(layer).thresholds
    if t is None:
        raise ValueError(f"layer {layer} has no thresholds")
    tdt = bad.layer(layer).tdt
    t[channel, 0] = tdt.min if t[channel, 0] - tdt.min > tdt.max - t[channel, 0] else tdt.max
    return bad


def fold_fastest(design, boards=("pynq-z2", "zcu104")):
    """--max-fps on the first of `boards` the design fits (a small board first, so most
    fixtures get a mid-size folding; 8-bit requantizing nets need the larger one).
    Returns the board used."""
    from ..boards import get_board
    from ..errors import BnnccError
    from ..folding import fold_max_fps
    for name in boards[:-1]:
        b = get_board(name)
        try:
            fold_max_fps(design, b, b.clock_mhz)
            return b
        except BnnccError:
            pass
    b = get_board(boards[-1])
    fold_max_fps(design, b, b.clock_mhz)
    return b
