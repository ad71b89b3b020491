"""ONNX in: QONNX (Brevitas, both exporters), FINN-ONNX, plain sign+BN ONNX -> IR."""
from .load import load_onnx
from .lower import lower
from .shapes import bind_batch


def import_model(path: str, input_type: str | None = None, input_scale: float = 1.0,
                 prune: str = "auto"):
    """Read an ONNX file and lower it to a `Design` (raises BnnccError on bad input).
    `input_type` declares the integer type of the raw input (e.g. "UINT8") with
    real value = input_scale * integer, for models without an input quantizer. `prune`
    says which channels that carry no information are removed (bnncc.passes.prune)."""
    model = bind_batch(load_onnx(path), path)
    return lower(model, path, input_type, input_scale, prune)
