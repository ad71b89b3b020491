"""Self-compressing networks: what removing zero-bit channels saves in hardware.

usage: python bench/scn.py [--board pynq-z2]

For each trained fixture in tests/fixtures/scn, the same network compiled with channel
removal (bnncc's default for such networks) and without (`prune="off"`, every channel
kept, as FINN and hls4ml build it), both folded with --max-fps on the board: weight
bits, LUT, BRAM18 and frames/s side by side; then the kept network folded for the pruned
one's frames/s (bnncc.compression, what `estimate` reports): folding a constant into a
residual add narrows the add's PE choices, so there the fair comparison is at equal rate.
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
    from bnncc.compression import compression_summary
    comp = compression_summary(d, e, b, b.clock_mhz, None)
    return {"weight_bits": int(bits), "LUT": e["totals"]["LUT"],
            "BRAM18": e["totals"]["BRAM18"], "fps": e["fps"], "fits": e["fits"],
            "same_rate": comp and {"weight_bits": comp["weight_bits"]["kept"],
                                   "LUT": comp["kept_totals"]["LUT"],
                                   "BRAM18": comp["kept_totals"]["BRAM18"],
                                   "fps": comp["kept_fps"], "fits": comp["kept_fits"]}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--board", default="pynq-z2")
    a = ap.parse_args()
    names = [f["name"] for f in json.loads((SCN / "index.json").read_text())]
    print(f"board {a.board}, --max-fps; 'kept' = every channel kept (prune off)")
    print(f"{'network':<12} {'':<9} {'weight bits':>11} {'LUT':>8} {'BRAM18':>7} {'frames/s':>12}")
    for n in names:
        path = str(SCN / f"{n}_tensor.onnx")
        for label, mode in (("kept", "off"), ("removed", "auto")):
            p = point(path, mode, a.board)
            rows = [(label, p)] + ([("kept@rate", p["same_rate"])] if p.get("same_rate") else [])
            for lab, q in rows:
                print(f"{n:<12} {lab:<9} {q['weight_bits']:>11,} {q['LUT']:>8,} "
                      f"{q['BRAM18']:>7} {q['fps']:>12,.0f}{'' if q['fits'] else '  (does not fit)'}")


if __name__ == "__main__":
    main()
