"""Write the DepthToSpace / overlapping-pool fixtures (tests/fixtures/reorder/): small
super-resolution-like QONNX nets with DepthToSpace (DCR, CRD) or SpaceToDepth between two
convs, and a ResNet-stem-like conv + 3x3 stride-2 padded max pool; each with its inputs and
the qonnx executor's outputs (<name>.refs.npz), listed in tests/fixtures/index.json (family
"reorder") so that every per-fixture hardware test covers them. Needs only onnx and qonnx
(no torch).

    python scripts/make_reorder_fixtures.py [FIXTURES_DIR]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx

from bnncc.testing.netgen.reorder import pool_network, sr_network

FIXTURES = {
    "sr_dcr_w4": lambda: sr_network(0, "DCR", 4),
    "sr_crd_w4": lambda: sr_network(1, "CRD", 4),
    "sr_s2d_w4": lambda: sr_network(2, "S2D", 4),
    "sr_dcr_w1": lambda: sr_network(3, "DCR", 1),
    "stem_pool_w3": lambda: pool_network(0, (3, 2, 1, False), 3, (3, 9, 9), 8),
    "stem_pool_ceil_w1": lambda: pool_network(1, (3, 2, 0, True), 1, (2, 8, 8), 4),
}


def main(fixtures: Path) -> None:
    out = fixtures / "reorder"
    out.mkdir(parents=True, exist_ok=True)
    index_path = fixtures / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else []
    for name, make in FIXTURES.items():
        case = make()
        onnx.save(case.model, str(out / f"{name}.onnx"))
        np.savez_compressed(out / f"{name}.refs.npz", inputs=case.inputs, outputs=case.outputs)
        entry = {"name": name, "model": f"reorder/{name}.onnx", "refs": f"reorder/{name}.refs.npz",
                 "family": "reorder", "output_kind": "logits"}
        index = [e for e in index if e["name"] != name] + [entry]
        print(name, case.inputs.shape, "->", case.outputs.shape)
    index_path.write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else
         Path(__file__).resolve().parent.parent / "tests" / "fixtures")
