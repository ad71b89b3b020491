"""ONNX in: QONNX (Brevitas, both exporters), FINN-ONNX, plain sign+BN ONNX -> IR."""
from .load import load_onnx
from .lower import lower


def import_model(path: str):
    """Read an ONNX file and lower it to a `Design` (raises BnnccError on bad input)."""
    model = load_onnx(path)
    return lower(model, path)
