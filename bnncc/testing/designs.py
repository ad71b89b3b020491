"""Helpers the hardware test suites share: small designs built straight from layer
objects, random values of a datatype, and the committed fixture models' inputs."""
from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np

from ..datatypes import DataType
from ..folding import insert_width_converters
from ..ir import Design, HostStage

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


def rand_values(rng, dt: DataType, shape) -> np.ndarray:
    if dt.is_bipolar:
        return rng.choice([-1, 1], size=shape).astype(np.int64)
    return rng.integers(dt.min, dt.max + 1, size=shape).astype(np.int64)


def fixture_index() -> list[dict]:
    p = FIXTURES / "index.json"
    return json.loads(p.read_text()) if p.is_file() else []


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
