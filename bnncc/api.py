"""The pipeline, for Python and for the CLI (which only parses arguments and prints):

    m = bnncc.load("tfc.onnx")                 # load and lower: a Model
    acc = m.fold(board="pynq-z2", fps=None)    # fold for a board: an Accelerator
    acc.estimate()                             # == bnncc estimate --json
    acc.write("out/tfc")                       # == bnncc compile -o out/tfc
    acc.predict(x, engine="csim")              # == bnncc run --engine csim
    acc.cosim(x, levels=["onnx", "golden", "csim"], labels=y)   # == bnncc cosim --json

`load(path)` (this module) returns the bare IR (`Design`) that passes and tests work on.
"""
from __future__ import annotations

import copy

import numpy as np

from . import progress
from .errors import BnnccError
from .frontend import import_model
from .ir import Design


def load(model_path: str, input_type: str | None = None, input_scale: float = 1.0,
         prune: str = "auto", exact: bool = False) -> Design:
    """ONNX file -> lowered, width-minimized IR. `exact`: fold the float ops into
    thresholds in real (float64) arithmetic rather than as onnxruntime's float32 does
    (bnncc.arith: for models with arbitrary float scales, where float32 references
    disagree with each other near rounding ties)."""
    if exact:
        from .arith import exact as exact_arith
        with exact_arith():
            return import_model(model_path, input_type, input_scale, prune)
    return import_model(model_path, input_type, input_scale, prune)


def load_model(path: str, input_type: str | None = None, input_scale: float = 1.0,
               prune: str = "auto", exact: bool = False) -> "Model":
    """ONNX file -> Model (`bnncc.load`). `prune`: "auto" removes the channels that
    carry no information in self-compressing networks, "on" in every network, "off"
    never (bnncc.passes.prune). `exact`: as for `load`."""
    if prune not in ("auto", "on", "off"):
        raise BnnccError(f"prune must be auto, on or off, got {prune!r}")
    with progress.task("loading and lowering the model"):
        return Model(str(path), load(str(path), input_type, input_scale, prune, exact))


class Model:
    """A loaded, lowered model, not yet folded for any board."""

    def __init__(self, path: str, design: Design):
        self.path, self.design = path, design

    def inspect(self) -> list[str]:
        return inspect_lines(self.design)

    def inspect_dict(self) -> dict:
        return inspect_dict(self.design)

    def run(self, x) -> np.ndarray:
        """Golden model outputs (folding does not change them)."""
        return self.design.run(input_array(self.design, x))

    def reference(self, x) -> np.ndarray:
        """Outputs of the original model (onnxruntime, or qonnx's executor)."""
        from .sim.reference import run_original
        return run_original(self.path, input_array(self.design, x))

    def fold(self, board: str = "pynq-z2", fps: float | None = None,
             clock_mhz: float | None = None, budget: dict | None = None,
             config=None) -> "Accelerator":
        """Fold a copy of the design for `board`: the cheapest design reaching `fps`
        frames/s, or (fps None) the fastest within `budget` ({"LUT": 0.7, "BRAM18": 0.8}
        fractions of the board by default). `config`: per-layer pins, a dict or a JSON
        file. The Model itself stays unfolded, so it can be folded again."""
        from .boards import get_board
        from .folding import fold
        b = get_board(board or "pynq-z2")
        clock = clock_mhz or b.clock_mhz
        if clock <= 0:
            raise BnnccError(f"clock must be positive, got {clock} MHz")
        if fps is not None and fps <= 0:
            raise BnnccError(f"--fps must be positive, got {fps}")
        for k, v in (budget or {}).items():
            if not 0 < v <= 1:
                raise BnnccError(f"the {k} budget must be in (0, 1], got {v}")
        d = copy.deepcopy(self.design)
        with progress.task("folding search"):
            fold(d, b, clock, fps=fps, budget=budget or None, config=config)
        return Accelerator(self, d, b, float(clock), dict(budget) if budget else None)


class Accelerator:
    """A folded design for one board and clock: what `compile` writes, what `estimate`
    reports and what the simulations run."""

    def __init__(self, model: Model, design: Design, board, clock_mhz: float,
                 budget: dict | None):
        self.model, self.design, self.board = model, design, board
        self.clock_mhz, self.budget = clock_mhz, budget
        self.hardware: Design | None = None   # what csim / rtlsim build, if not `design`

    def estimate(self) -> dict:
        from .compression import with_compression
        from .estimate import estimate
        est = estimate(self.design, self.board, self.clock_mhz, budget=self.budget)
        return with_compression(est, self.design, self.board, self.clock_mhz, self.budget)

    def table(self) -> str:
        from .estimate import table
        return table(self.estimate())

    def files(self) -> dict[str, bytes]:
        """Every file of the compiled project, relative path -> contents."""
        from .project import render_project
        return render_project(self.design, self.board, self.clock_mhz, self.model.path)

    def write(self, outdir, force: bool = False, keep_others: bool = False):
        """Write the project to outdir (a directory bnncc did not create is refused
        unless force; keep_others keeps files bnncc did not write); returns its path."""
        from .project import write_project
        with progress.task("generating the project"):
            files = self.files()
        return write_project(files, str(outdir), force=force, keep_others=keep_others,
                             model=self.model.path)

    def predict(self, x, engine: str = "golden") -> np.ndarray:
        """Model outputs for a float batch through golden, csim or rtlsim."""
        if engine not in ("golden", "csim", "rtlsim"):
            raise BnnccError(f"unknown engine {engine!r} (golden, csim, rtlsim)")
        return run(self.design, input_array(self.design, x), engine)

    def cosim(self, x, levels=("golden", "csim"), labels=None, expect=None,
              backpressure: float = 0.0, seed: int = 0, hardware: Design | None = None
              ) -> dict:
        """The verification report (`bnncc cosim --json`); see bnncc.sim.cosim.
        `hardware` (or the attribute of that name) replaces the design the csim / rtlsim
        levels build: tests use it to check that a broken design is caught."""
        from .sim.cosim import cosim
        from .sim.reference import run_original
        levels = check_cosim(levels, backpressure, labels is not None or expect is not None)
        x = input_array(self.design, x)
        n = len(x)
        if labels is not None:
            labels = np.asarray(labels)
            if labels.size != n or not np.issubdtype(labels.dtype, np.number):
                raise BnnccError(f"labels must be one number per frame: {n} frames, got "
                                 f"shape {list(labels.shape)}", file="labels")
        if expect is not None:
            expect = np.asarray(expect)
            if len(expect) != n or not np.issubdtype(expect.dtype, np.number):
                raise BnnccError(f"expected outputs must have one row per frame: {n} "
                                 f"frames, got shape {list(expect.shape)}", file="expect")
            want = int(np.prod(self.design.output_shape[1:]))
            if expect[0].size != want:
                raise BnnccError(f"expected outputs have {expect[0].size} values per frame, "
                                 f"the model outputs {want}", file="expect")
        return cosim(self.design, x, levels, backpressure=backpressure, seed=seed,
                     labels=labels, expect=expect,
                     original=lambda v: run_original(self.model.path, v),
                     hardware=hardware or self.hardware)


def check_cosim(levels, backpressure: float = 0.0, references: bool = False) -> list[str]:
    """The cosim options, checked before anything runs; returns the levels."""
    from .sim.cosim import LEVELS
    levels = [str(lv) for lv in levels]
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad or not levels or len(set(levels)) != len(levels):
        raise BnnccError(f"levels must be distinct names among {','.join(LEVELS)} "
                         f"(got {','.join(levels)})")
    if len(levels) < 2 and not references:
        raise BnnccError("cosim needs two or more levels, or one level with "
                         "labels or expected outputs")
    if not 0.0 <= backpressure < 1.0:
        raise BnnccError(f"--backpressure must be in [0, 1), got {backpressure}")
    return levels


def inspect_lines(design: Design) -> list[str]:
    """One line per layer: kind, shapes, datatypes, accumulator width, thresholds."""
    lines = [f"# {design.source}: input {design.input_name} {list(design.input_shape)} -> "
             f"output {design.output_name} {list(design.output_shape)}"]
    q = design.input_stage.quant
    lines.append(f"host-in   quantize to {q.dtype} stream {list(design.input_stage.hw_shape)}")
    for layer in design.layers():
        d = layer.describe()
        extra = " ".join(f"{k}={v}" for k, v in d.items())
        lines.append(f"{layer.name:<9} {layer.kind:<13} in={list(layer.in_shape)} "
                     f"out={list(layer.out_shape)} idt={layer.idt} odt={layer.odt} {extra}")
    st = design.output_stage
    ops = ", ".join(op.op for op in st.chain) or "none"
    head = f" + {st.head.label}" if st.head is not None else ""
    lines.append(f"host-out  float ops: {ops}{head}")
    lines += [f"note: {n}" for n in design.notes]
    return lines


def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (tuple, list)):
        return [_plain(e) for e in v]
    if isinstance(v, dict):
        return {str(k): _plain(e) for k, e in v.items()}
    if isinstance(v, (int, float, bool, str)) or v is None:
        return v
    return str(v)


def inspect_dict(design: Design) -> dict:
    """What `inspect` prints, as data (`bnncc inspect --json`)."""
    st = design.output_stage
    return {
        "source": design.source,
        "input": {"name": design.input_name, "shape": list(design.input_shape),
                  "stream_dtype": str(design.input_stage.quant.dtype),
                  "stream_shape": list(design.input_stage.hw_shape)},
        "output": {"name": design.output_name, "shape": list(design.output_shape),
                   "host_ops": [op.op for op in st.chain],
                   "head": st.head.label if st.head is not None else None},
        "layers": [{"name": l.name, "kind": l.kind, "in_shape": list(l.in_shape),
                    "out_shape": list(l.out_shape), "idt": str(l.idt), "odt": str(l.odt),
                    "inputs": [str(p) for p in design.inputs_of(l.name)],
                    **{k: _plain(v) for k, v in l.describe().items()}}
                   for l in design.layers()],
        "notes": list(design.notes),
    }


def input_array(design: Design, x: np.ndarray, path: str = "input") -> np.ndarray:
    """Check a batch against the model's input shape (leading batch axis) and refuse what
    would silently change its meaning: complex or non-numeric values, NaN / Inf, values
    float32 cannot hold, and an empty batch."""
    want = tuple(design.input_shape[1:])
    x = np.asarray(x)
    if x.dtype.kind not in "iuf":
        what = {"c": "complex values (the imaginary part would be lost)",
                "O": "Python objects"}.get(x.dtype.kind, f"dtype {x.dtype}")
        raise BnnccError(f"input batch holds {what}; expected float32", file=path)
    if x.ndim == len(want) and tuple(x.shape) == want:
        x = x[None]
    if tuple(x.shape[1:]) != want:
        raise BnnccError(f"input batch has shape {list(x.shape)}, the model needs "
                         f"(N, {', '.join(map(str, want))})", file=path)
    if x.shape[0] == 0:
        raise BnnccError("input batch is empty (0 frames)", file=path)
    bad = ~np.isfinite(x) if x.dtype.kind == "f" else np.zeros(x.shape, bool)
    with np.errstate(over="ignore", invalid="ignore"):
        y = x.astype(np.float32)
    if not bad.any():
        bad = ~np.isfinite(y)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise BnnccError(f"input batch has a non-finite or out-of-float32-range value "
                         f"{x[idx]!r} at {list(idx)}", file=path)
    for i in range(0, len(y), 256):   # values a declared input type cannot represent
        try:
            design.quantize_input(y[i:i + 256])
        except BnnccError as e:
            raise e.at(file=path) from None
    return y


def run(design: Design, x: np.ndarray, engine: str = "golden") -> np.ndarray:
    """Model outputs for a float batch through one engine: golden, csim or rtlsim."""
    if engine == "golden":
        with progress.task("golden model", len(x)):
            return design.run(x)
    from .sim.cosim import run_engine
    out, _, _ = run_engine(design, engine, design.quantize_input(x))
    return design.dequantize_output(out)
