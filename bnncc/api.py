"""The same calls the CLI makes, for use from Python."""
from __future__ import annotations

import numpy as np

from .errors import BnnccError
from .frontend import import_model
from .ir import Design


def load(model_path: str, input_type: str | None = None, input_scale: float = 1.0) -> Design:
    """ONNX file -> lowered, width-minimized IR."""
    return import_model(model_path, input_type, input_scale)


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
        return design.run(x)
    from .sim.cosim import run_engine
    out, _, _ = run_engine(design, engine, design.quantize_input(x))
    return design.dequantize_output(out)
