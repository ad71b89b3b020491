"""Checks both generator test modules apply to their networks."""
import onnx


def _dims(vi: onnx.ValueInfoProto) -> tuple[int, ...]:
    return tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)


def assert_declared_shapes(cases) -> None:
    """Every declared value_info shape is what shape inference derives without it."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    for c in cases:
        declared = {vi.name: _dims(vi) for vi in c.model.graph.value_info}
        stripped = onnx.ModelProto()
        stripped.CopyFrom(c.model)
        del stripped.graph.value_info[:]
        if c.family.startswith("qonnx"):
            inferred_model = ModelWrapper(stripped).transform(InferShapes()).model
        else:
            inferred_model = onnx.shape_inference.infer_shapes(stripped, strict_mode=True)
        inferred = {vi.name: _dims(vi) for vi in inferred_model.graph.value_info}
        for name, dims in declared.items():
            assert inferred.get(name) == dims, (c.name, name, dims, inferred.get(name))
