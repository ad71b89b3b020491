"""The graph IR: hardware layers in a networkx DAG, plus the host-side input and output stages.

A `Design` is what every later stage reads. Tensors between layers are integer streams in
hardware order (channels last: a conv feature map is (H, W, C), a vector is (C,)). The
golden model executes the layers with integer NumPy arithmetic; the host stages turn the
user's float input into the first integer stream and the last integer stream back into
what the original ONNX model outputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import networkx as nx
import numpy as np

from .datatypes import DataType

INPUT = "__input__"   # the host's input stream, as a producer name


@dataclass
class Layer:
    """Base of all hardware layers. Subclasses live in bnncc/layers/, one module per kind."""

    name: str
    idt: DataType
    odt: DataType
    in_shape: tuple
    out_shape: tuple
    src: list = field(default_factory=list)  # ONNX node names this layer came from
    kind: ClassVar[str] = "Layer"

    def execute(self, x: np.ndarray) -> np.ndarray:  # (N, *in_shape) -> (N, *out_shape)
        raise NotImplementedError

    def describe(self) -> dict:
        """Fields shown by `bnncc inspect` beyond kind/shapes/datatypes."""
        return {}

    def cycles(self) -> int:
        """Cycles per frame at the layer's current folding (initiation interval)."""
        raise NotImplementedError

    @property
    def in_dtypes(self) -> list:
        """Datatype of each input stream (joins have several)."""
        return [self.idt]

    @property
    def in_shapes(self) -> list:
        """Per-frame shape of each input stream."""
        return [tuple(self.in_shape)] * len(self.in_dtypes)

    def held_words(self) -> int:
        """Input words (of the first input) the layer can take in before it must emit:
        what a parallel path has to buffer while this one fills (bnncc.passes.fifos)."""
        return 2


@dataclass
class HostStage:
    """Float work that stays on the host, before the first or after the last layer.

    `gather` maps between the ONNX tensor (flattened, row-major) and the hardware stream.
    For the input stage it picks, for each element of the quantized tensor, the raw input
    element it comes from; for the output stage it picks, for each element of the ONNX
    output, the hardware stream position holding it.
    """

    shape: tuple               # ONNX shape (with batch 1) of the tensor the chain runs on
    gather: np.ndarray         # int index array, see above
    chain: list                # elementwise float ops (bnncc.passes.chain)
    quant: Any = None          # input stage: the quantizer producing the first int stream
    hw_order: tuple = ()       # input stage: axes permutation (with batch) ONNX -> hardware
    hw_shape: tuple = ()       # input stage: per-frame hardware shape of the first stream
    head: Any = None           # output stage: host top-k / argmax / softmax, or None
    out_dtype: str = "float32"


@dataclass
class Design:
    source: str
    graph: nx.DiGraph
    input_name: str
    input_shape: tuple         # ONNX input shape including batch 1
    output_name: str
    output_shape: tuple        # ONNX output shape including batch 1
    input_stage: HostStage
    output_stage: HostStage
    notes: list = field(default_factory=list)
    per_channel_widths: bool = False   # some quantizer has one bit width per channel

    # -- graph access ---------------------------------------------------------------
    def layers(self) -> list[Layer]:
        return [self.graph.nodes[n]["layer"] for n in nx.topological_sort(self.graph)]

    def layer(self, name: str) -> Layer:
        return self.graph.nodes[name]["layer"]

    def inputs_of(self, name: str) -> list[str]:
        """Producers of a layer's inputs in argument order (INPUT for the host stream)."""
        layer = self.graph.nodes[name]["layer"]
        if getattr(layer, "inputs", None):
            return list(layer.inputs)
        preds = list(self.graph.predecessors(name))
        return preds or [INPUT]

    def reader_map(self) -> dict[str, list[tuple[str, int]]]:
        """Producer (INPUT for the host stream) -> (consumer, input index) of every read of
        its output stream, in topological order: a Duplicate's output k feeds entry k."""
        out: dict[str, list[tuple[str, int]]] = {n: [] for n in self.graph.nodes}
        out[INPUT] = []
        for v in nx.topological_sort(self.graph):
            for i, p in enumerate(self.inputs_of(v)):
                out[p].append((v, i))
        return out

    def readers(self, name: str) -> list[tuple[str, int]]:
        return self.reader_map()[name]

    def first(self) -> Layer:
        return self.layers()[0]

    def last(self) -> Layer:
        return self.layers()[-1]

    # -- golden execution ----------------------------------------------------------------
    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        from .errors import BnnccError
        from .passes.chain import host_input
        try:
            return host_input(self.input_stage, x)
        except ValueError as e:   # a declared input type the values do not fit
            raise BnnccError(str(e)) from None

    def run_layers(self, q: np.ndarray, trace: dict | None = None) -> np.ndarray:
        """Integer execution of the hardware layers; `trace` collects every layer's output."""
        from .layers.bits import unpacked
        outs: dict[str, np.ndarray] = {INPUT: q}
        for name in nx.topological_sort(self.graph):
            layer = self.graph.nodes[name]["layer"]
            args = [outs[p] for p in self.inputs_of(name)]
            n = args[0].shape[0]
            shapes = layer.in_shapes
            y = layer.execute(*[a.reshape((n,) + tuple(s)) for a, s in zip(args, shapes)])
            outs[name] = y
            if trace is not None:
                trace[name] = unpacked(y)
        sinks = [n for n in self.graph.nodes if self.graph.out_degree(n) == 0]
        return unpacked(outs[sinks[0]]) if sinks else q

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        from .passes.chain import host_output
        return host_output(self.output_stage, y)

    def run(self, x: np.ndarray, chunk: int = 32) -> np.ndarray:
        """Golden model: float inputs (N, *input shape without batch) -> model outputs.
        Frames go through in chunks so memory stays bounded for large batches."""
        outs = [self.dequantize_output(self.run_layers(self.quantize_input(x[i:i + chunk])))
                for i in range(0, len(x), chunk)]
        return np.concatenate(outs) if outs else np.zeros((0,) + self.output_shape[1:])
