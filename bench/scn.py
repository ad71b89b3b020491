"""Self-compressing networks: what removing zero-bit channels saves in hardware.

usage: python bench/scn.py [--board pynq-z2]

For each trained fixture in tests/fixtures/scn, the same network compiled with channel
removal (bnncc's default for such networks) and without (`prune="off"`, every channel
kept, as FINN and hls4ml build it), both folded with --max-fps on the board: weight
bits, LUT, BRAM18 and frames/s side by side.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCN = REPO / "tests" / "fixtures" / "scn"


def point(path: str, prune: str, board: str) -> dict:
    from bnncc import frontend
    from bnncc.boards import get_board
    from bnncc.estimate import estimate
    from bnncc.folding import fold_max_fps
    from bnncc.layers import MVAU
    b = get_board(board)
    d = frontend.import_model(path, prune=prune)
    bits = sum(l.weights.size * (1 if l.binary else l.wdt.bits)
               for l in d.layers() if isinstance(l, MVAU))
    fold_max_fps(d, b, b.clock_mhz)
    e = estimate(d, b, b.clock_mhz)
    return {"weight_bits": int(bits), "LUT": e["totals"]["LUT"],
            "BRAM18": e["totals"]["BRAM18"], "fps": e["fps"], "fits": e["fits"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--board", default="pynq-z2")
    a = ap.parse_args()
    names = [f["name"] for f in json.loads((SCN / "index.json").read_text())]
    print(f"board {a.board}, --max-fps; 'kept' = every channel kept (prune off)")
    print(f"{'network':<12} {'':<8} {'weight bits':>12} {'LUT':>8} {'BRAM18':>7} {'frames/s':>12}")
    for n in names:
        path = str(SCN / f"{n}_tensor.onnx")
        for label, mode in (("kept", "off"), ("removed", "auto")):
            p = point(path, mode, a.board)
            print(f"{n:<12} {label:<8} {p['weight_bits']:>12,} {p['LUT']:>8,} "
                  f"{p['BRAM18']:>7} {p['fps']:>12,.0f}{'' if p['fits'] else '  (does not fit)'}")


if __name__ == "__main__":
    main()
