"""bnncc: binarized / low-bit ONNX networks to bit-exact FPGA streaming dataflow accelerators."""

__version__ = "0.1.0"


def load(path, input_type: str | None = None, input_scale: float = 1.0):
    """Load and lower an ONNX model: a `bnncc.api.Model`; `.fold(board=...)` gives the
    accelerator to estimate, write, simulate and verify."""
    from .api import load_model
    return load_model(path, input_type, input_scale)
