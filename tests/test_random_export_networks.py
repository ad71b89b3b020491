"""Golden model == reference on 100 random networks of each export form
(bnncc.testing.netgen.exports): dynamic batch with shape arithmetic, tutorial
Where / Cast / Not signs, BatchNorm folded into float weights (dynamo style)."""
import numpy as np
import pytest

from bnncc.frontend.lower import lower
from bnncc.frontend.shapes import bind_batch
from bnncc.testing.netgen.exports import EXPORT_FORMS, random_export_network

N_PER_FORM = 100
GROUPS = 4


@pytest.mark.parametrize("group", range(GROUPS))
@pytest.mark.parametrize("form", EXPORT_FORMS)
def test_golden_equals_reference_exactly(form, group):
    per = N_PER_FORM // GROUPS
    for seed in range(group * per, (group + 1) * per):
        case = random_export_network(seed, form)
        assert case.meta["rewrites"] > 0, case.name
        y = np.asarray(lower(bind_batch(case.model, case.name), case.name).run(case.inputs))
        ref = case.outputs
        assert np.array_equal(y.reshape(ref.shape).astype(ref.dtype), ref), case.name
        # the rewrite keeps what the network computes (sign(0) aside)
        if not (form == "where-sign" and case.meta.get("sign_zero_inputs")):
            assert np.array_equal(ref, case.meta["base_outputs"]), case.name


def test_forms_write_what_exporters_write():
    ops = {f: set() for f in EXPORT_FORMS}
    for seed in range(90):
        c = random_export_network(seed)
        ops[c.family] |= {n.op_type for n in c.model.graph.node}
        if c.family == "dynamic-batch":
            assert c.model.graph.input[0].type.tensor_type.shape.dim[0].dim_param
    assert {"Shape", "Gather", "Unsqueeze", "Concat", "Slice"} <= ops["dynamic-batch"]
    assert {"GreaterOrEqual", "Where", "Less", "Not", "Cast", "ConstantOfShape", "Neg",
            "Clip"} <= ops["where-sign"]
    assert "BatchNormalization" not in ops["bn-folded"] and "Sign" in ops["bn-folded"]
