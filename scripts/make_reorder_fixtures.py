"""Write the DepthToSpace / overlapping-pool fixtures (tests/fixtures/reorder/): small
super-resolution-like QONNX nets with DepthToSpace (DCR, CRD) or SpaceToDepth between two
convs, and a ResNet-stem-like conv + 3x3 stride-2 padded max pool; each with its inputs and
the qonnx executor's outputs. Needs only onnx and qonnx (no torch).

    python scripts/make_reorder_fixtures.py [OUTDIR]
"""
from __future__ import annotations

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


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, make in FIXTURES.items():
        case = make()
        onnx.save(case.model, str(out / f"{name}.onnx"))
        np.save(out / f"{name}_in.npy", case.inputs)
        np.save(out / f"{name}_out.npy", case.outputs)
        print(name, case.inputs.shape, "->", case.outputs.shape)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else
         Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "reorder")
