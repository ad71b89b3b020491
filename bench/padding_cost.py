"""What the border corrections cost (bnncc/layers/border.py): Yosys synth_xilinx cells of
the same padded-conv MVAU with and without its border (the -1 pad is then uncorrected),
next to the model's structural estimate of the difference (MVAU.border_cost).

    python bench/padding_cost.py [--family xc7]

Prints one row per shape: LUT / FF measured without and with the border, the measured
difference and the modelled one. Yosys results are not cached here; about a minute.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from bnncc.backends import rtl
from bnncc.calibrate import synth_script
from bnncc.datatypes import DataType
from bnncc.layers import MVAU
from bnncc.layers.border import Border
from bnncc.layers.cost import count_cells
from bnncc.sim.tools import yosys_cmd

# (H=W, C, OC, PE, SIMD, binary, thresholds)
SHAPES = [(8, 16, 16, 4, 16, True, 1), (8, 64, 64, 8, 32, True, 1),
          (16, 32, 32, 32, 32, True, 0), (6, 3, 8, 8, 27, False, 1)]


def layer(h, c, oc, pe, simd, binary, nt, border: bool) -> MVAU:
    rng = np.random.default_rng(0)
    mw = 9 * c
    w = rng.choice([-1, 1], (oc, mw)).astype(np.int64)
    idt = DataType.bipolar()
    lo, hi = (0, mw) if binary else (-mw, mw)
    acc = DataType.for_range(lo, hi)
    thr = np.sort(rng.integers(lo // 2, hi // 2 + 1, (oc, nt)), 1) if nt else None
    b = Border((h, h), (h, h), (3, 3), (1, 1), (1, 1, 1, 1), c) if border else None
    return MVAU("m", idt, DataType.bipolar() if nt else acc, (h, h, mw), (h, h, oc),
                weights=w, wdt=DataType.bipolar(), binary=binary, accdt=acc, thresholds=thr,
                tdt=acc, pe=pe, simd=simd, mem_style="lut", border=b)


def synth(l: MVAU, family: str) -> dict:
    env = rtl._env()
    files = {"bnncc_fifo.v": env.get_template("fifo.v.j2").render()}
    files["bnncc_m.v"] = rtl.render_layer(l, "bnncc_m", files)
    with tempfile.TemporaryDirectory(prefix="bnncc_pad_") as td:
        for n, t in files.items():
            (Path(td) / n).write_text(t)
        subprocess.run([*yosys_cmd(), "-q", "-p",
                        synth_script(["bnncc_fifo.v", "bnncc_m.v"], "bnncc_m", "", family,
                                     "stat.json")], cwd=td, check=True, capture_output=True)
        stat = json.loads((Path(td) / "stat.json").read_text())
    return count_cells(stat["design"]["num_cells_by_type"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="xc7")
    args = ap.parse_args()
    print(f"{'shape':34} {'LUT off':>8} {'LUT on':>7} {'dLUT':>6} {'model':>6}"
          f" {'FF off':>7} {'FF on':>6} {'dFF':>5} {'model':>6}")
    for s in SHAPES:
        off, on = (synth(layer(*s, border=b), args.family) for b in (False, True))
        ml, mf = layer(*s, border=True).border_cost()
        h, c, oc, pe, simd, binary, nt = s
        name = f"{h}x{h}x{c}->{oc} PE{pe} SIMD{simd} {'xnor' if binary else 'add/sub'} nt{nt}"
        print(f"{name:34} {off['LUT']:8.0f} {on['LUT']:7.0f} {on['LUT'] - off['LUT']:6.0f} "
              f"{ml:6.0f} {off['FF']:7.0f} {on['FF']:6.0f} {on['FF'] - off['FF']:5.0f} {mf:6.0f}")


if __name__ == "__main__":
    main()
