"""Checks both generator test modules apply to their networks."""
import numpy as np
import onnx


def assert_deterministic(gen, seed):
    """gen(seed) twice gives the same model, inputs and outputs; the model depends only on
    (seed, family), and inputs extend as n_inputs grows. Returns the first case."""
    a, b = gen(seed), gen(seed)
    assert a.model.SerializeToString() == b.model.SerializeToString()
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.outputs, b.outputs)
    c = gen(seed, family=a.family, n_inputs=3)
    assert c.model.SerializeToString() == a.model.SerializeToString()
    np.testing.assert_array_equal(c.inputs, a.inputs[:3])
    np.testing.assert_array_equal(c.outputs, a.outputs[:3])
    return a


def dims(vi: onnx.ValueInfoProto) -> tuple[int, ...]:
    return tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)


def assert_declared_shapes(cases) -> None:
    """Every declared value_info shape is what shape inference derives without it."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    for c in cases:
        declared = {vi.name: dims(vi) for vi in c.model.graph.value_info}
        stripped = onnx.ModelProto()
        stripped.CopyFrom(c.model)
        del stripped.graph.value_info[:]
        if c.family.startswith("qonnx"):
            inferred_model = ModelWrapper(stripped).transform(InferShapes()).model
        else:
            inferred_model = onnx.shape_inference.infer_shapes(stripped, strict_mode=True)
        inferred = {vi.name: dims(vi) for vi in inferred_model.graph.value_info}
        for name, shape in declared.items():
            assert inferred.get(name) == shape, (c.name, name, shape, inferred.get(name))
