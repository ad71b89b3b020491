"""Calibration of the resource models against Yosys `synth_xilinx`.

Single-layer designs are rendered with the RTL backend exactly as `bnncc compile` writes
them and synthesized by Yosys (`synth_xilinx -flatten -family xc7`). The coefficients of
every layer kind's model (bnncc/layers/coefficients.json) are fitted, non-negative, on the
training sweep (bnncc/cal_points.TRAIN) only; the held-out set (cal_points.heldout(), random
layers from a seeded generator) judges them.

    python -m bnncc.calibrate [--fit] [--save-cells] [-o docs/calibration.md] [-j JOBS]

Yosys cell counts are keyed by a hash of the RTL text, the Yosys version and the script.
They are looked up in the committed table bnncc/cal_cells.json, then in the local cache
$BNNCC_CACHE/yosys; only points whose RTL changed are synthesized (`--save-cells` writes
them into the committed table). hw_tests/test_calibration.py checks the errors and
re-synthesizes a small random sample to check the committed table is still true.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import resources
from .cal_points import TRAIN, build_layer, heldout, point_label
from .layers import Thresholding
from .layers.cost import count_cells

RES = ("LUT", "FF", "BRAM18", "URAM", "DSP")
SCRIPT_VERSION = "cal-v2"
DATA = Path(__file__).resolve().parent / "cal_cells.json"


def render_point(p: dict, name: str) -> tuple[dict, str, str]:
    """({file: text}, top module, extra yosys commands before synth)."""
    from .backends import rtl
    env = rtl._env()
    files = {"bnncc_fifo.v": env.get_template("fifo.v.j2").render(),
             "bnncc_dwc.v": env.get_template("dwc.v.j2").render()}
    layer = build_layer(p, name)
    if p["kind"] == "Fifo":
        return files, "bnncc_fifo", f"chparam -set W {p['w']} -set DEPTH {p['depth']} bnncc_fifo; "
    if p["kind"] == "WidthConverter":
        return files, "bnncc_dwc", (f"chparam -set EB {p['eb']} -set IN_E {p['ie']} "
                                    f"-set OUT_E {p['oe']} bnncc_dwc; ")
    mod = "bnncc_" + name
    text = rtl.render_layer(layer, mod, files)
    if isinstance(layer, Thresholding):
        # templates/rtl/thresholding.v.j2 marks its ROMs rom_style "distributed", which
        # Yosys cannot map (it prunes ROMs from LUT RAM): synthesize them as logic
        text = text.replace('rom_style = "distributed"', 'rom_style = "logic"')
    files[f"{mod}.v"] = text
    return files, mod, ""


# ----------------------------------------------------------------------------- yosys
def cache_dir() -> Path:
    return resources.cache_dir("yosys")


@functools.lru_cache(maxsize=None)
def _yosys_version() -> str:
    from .sim.tools import yosys_cmd
    r = subprocess.run([*yosys_cmd(), "-V"], capture_output=True, text=True)
    return r.stdout.strip()


def synth_script(vfiles: list[str], top: str, pre: str, family: str, out: str) -> str:
    return (f"design -reset; read_verilog {' '.join(vfiles)}; {pre}"
            f"synth_xilinx -flatten -noiopad -noclkbuf -family {family} -top {top}; "
            f"tee -q -o {out} stat -json; ")


def point_name(p: dict) -> str:
    """Module name of a point: from its spec, so a point's RTL (and key) is the same in
    whatever list it stands."""
    return "p" + hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest()[:10]


def point_key(p: dict, family: str, ver: str) -> tuple[str, tuple]:
    name = point_name(p)
    files, top, pre = render_point(p, name)
    h = hashlib.sha256(f"{ver}|{SCRIPT_VERSION}|{family}|{top}|{pre}".encode())
    for n in sorted(files):
        h.update(n.encode() + b"\0" + files[n].encode() + b"\0")
    return h.hexdigest()[:24], (name, files, top, pre)


def committed() -> dict:
    return json.loads(DATA.read_text()) if DATA.exists() else {}


def yosys_cells(rendered: tuple, family: str) -> dict:
    """Run Yosys on one rendered point: num_cells_by_type."""
    from .sim.tools import run_limited, yosys_cmd
    name, files, top, pre = rendered
    with tempfile.TemporaryDirectory(prefix="bnncc_cal_") as td:
        for n, t in files.items():
            (Path(td) / n).write_text(t)
        vf = ["bnncc_fifo.v", "bnncc_dwc.v"] + \
            [n for n in sorted(files) if n.endswith(".v") and n.startswith("bnncc_p")]
        r = run_limited([*yosys_cmd(), "-q", "-p",
                         synth_script(vf, top, pre, family, "stat.json")],
                        cwd=td, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"yosys failed on {name}:\n" + (r.stdout + r.stderr)[-3000:])
        stat = json.loads((Path(td) / "stat.json").read_text())
        return stat["design"]["num_cells_by_type"]


def synthesize(points: list[dict], family: str = "xc7", jobs: int = 2, log=print,
               save: bool = False, cached_only: bool = False) -> list[dict | None]:
    """Yosys cell counts of every point: from the committed table, the local cache, or a
    Yosys run (`jobs` processes) for points whose RTL is new. `save` adds the new ones to
    the committed table; `cached_only` runs no Yosys and gives None for uncached points."""
    ver = _yosys_version()
    cdir = cache_dir()
    data = committed()
    keys, rendered, todo = [], [], []
    for p in points:
        key, r = point_key(p, family, ver)
        keys.append(key)
        rendered.append(r)
        if key not in data and not (cdir / f"{key}.json").exists():
            todo.append(len(keys) - 1)
    if todo and not cached_only:
        log(f"synthesizing {len(todo)} of {len(points)} points with Yosys ({jobs} processes)")

        def run(i):
            t0 = time.time()
            cells = yosys_cells(rendered[i], family)
            (cdir / f"{keys[i]}.json").write_text(json.dumps(cells, sort_keys=True))
            log(f"  {point_label(points[i])}: {time.time() - t0:.0f} s")

        t0 = time.time()
        with ThreadPoolExecutor(jobs) as ex:
            list(ex.map(run, todo))
        log(f"  done in {time.time() - t0:.0f} s")
    out = [data[k] if k in data else (json.loads((cdir / f"{k}.json").read_text())
                                      if (cdir / f"{k}.json").exists() else None) for k in keys]
    if save:
        new = dict(data)
        new.update((k, c) for k, c in zip(keys, out) if c is not None)
        DATA.write_text(json.dumps(new, sort_keys=True, indent=0) + "\n")
    return out


def prune(points: list[dict], family: str = "xc7") -> None:
    """Drop committed cells of RTL no current point renders (older templates)."""
    ver = _yosys_version()
    keep = {point_key(p, family, ver)[0] for p in points}
    data = committed()
    DATA.write_text(json.dumps({k: v for k, v in data.items() if k in keep}, sort_keys=True,
                               indent=0) + "\n")


def recheck(points: list[dict], n: int, seed: int, family: str = "xc7") -> list[tuple]:
    """Re-synthesize `n` points drawn with `seed` ignoring every cache: (label, committed
    cells, fresh cells) of each, to show the committed table still describes the RTL."""
    import random
    ver = _yosys_version()
    data = committed()
    keyed = [(p, *point_key(p, family, ver)) for p in points]
    keyed = [k for k in keyed if k[1] in data]
    out = []
    for p, key, r in random.Random(seed).sample(keyed, min(n, len(keyed))):
        out.append((point_label(p), data[key], yosys_cells(r, family)))
    return out


# ----------------------------------------------------------------------------- models
# Features whose coefficient is structure, not a fit: LUT RAM counted as Yosys maps it.
PINNED = {"SWG": {"LUT": {3: 1.0}}, "SWGP": {"LUT": {0: 1.0, 1: 1.0}},
          "SUMPOOL": {"LUT": {4: 1.0}}, "ADD": {"LUT": {1: 1.0, 3: 1.0}, "FF": {2: 1.0}},
          "CONCAT": {"LUT": {4: 1.0}, "FF": {2: 1.0}}, "POOL": {"LUT": {2: 1.0}},
          "FIFO": {"LUT": {0: 1.0}, "FF": {2: 1.0}},
          # MVAU FF feature 6: adder-tree pipeline registers and registered compares
          "MVAU_BIN": {"FF": {6: 1.0}}, "MVAU_INT": {"FF": {6: 1.0}}}
# Coefficients one model shares with another because the RTL is the same code: the weight
# ROM in logic deeper than 64 words (LUT feature 9) of an integer MVAU is the binary one's
# wrom; the integer sweep has too few deep LUT ROMs to fit it (the fit gave 0.0).
TIED = {("MVAU_INT", "LUT", 9): ("MVAU_BIN", "LUT", 9)}


def model_features(layer) -> tuple[str, list, list]:
    """(coefficient key, LUT features, FF features) of a layer at its folding and style."""
    from .layers.cost import coef_key
    key = coef_key(layer)
    if key.startswith("MVAU"):
        fl, ff = layer.features(layer.mem_style or layer.default_mem_style())[:2]
    else:
        fl, ff = layer.features()[:2]
    return key, [float(x) for x in fl], [float(x) for x in ff]


def model_of(p: dict) -> dict:
    layer = build_layer(p, "m")
    return layer.resources(getattr(layer, "mem_style", None))


def err(model: float, meas: float) -> float:
    if meas == 0:
        return 0.0 if model == 0 else 1.0
    return (model - meas) / meas


def rows_of(points: list[dict], family: str = "xc7", jobs: int = 2, log=print,
            save: bool = False, cached_only: bool = False) -> list[dict]:
    cells = synthesize(points, family, jobs, log, save, cached_only)
    rows = []
    for p, c in zip(points, cells):
        if c is None:
            continue
        meas = count_cells(c)
        mod = model_of(p)
        rows.append(dict(point=point_label(p), spec=p, yosys=meas, model=mod,
                         err={r: err(mod[r], meas[r]) for r in ("LUT", "FF")},
                         bram_exact=mod["BRAM18"] == meas["BRAM18"],
                         dsp_exact=mod["DSP"] == meas["DSP"]))
    return rows


def sweep(family: str = "xc7", jobs: int = 2, log=print, points=None, save=False,
          cached_only: bool = False) -> list[dict]:
    """Rows of the training sweep (or of `points`)."""
    return rows_of(TRAIN if points is None else points, family, jobs, log, save, cached_only)


def fit(points: list[dict], cells: list[dict]) -> dict:
    """Non-negative least squares of every model's coefficients on the training points,
    each row weighted by 1 / measured count (relative error), pinned features fixed."""
    from scipy.optimize import nnls
    groups: dict[str, list] = {}
    for p, c in zip(points, cells):
        key, fl, ff = model_features(build_layer(p, "m"))
        groups.setdefault(key, []).append((fl, ff, count_cells(c)))
    out = {}
    for key, rows in sorted(groups.items()):
        out[key] = {}
        for i, r in enumerate(("LUT", "FF")):
            A = np.array([row[i] for row in rows], float)
            y = np.array([row[2][r] for row in rows], float)
            pins = PINNED.get(key, {}).get(r, {})
            free = [j for j in range(A.shape[1]) if j not in pins]
            for j, v in pins.items():
                y = y - v * A[:, j]
            w = 1.0 / np.maximum(np.array([row[2][r] for row in rows], float), 8.0)
            x, _ = nnls(A[:, free] * w[:, None], y * w)
            c = [0.0] * A.shape[1]
            for j, v in pins.items():
                c[j] = v
            for j, v in zip(free, x):
                c[j] = round(float(v), 4)
            out[key][r] = c
    for (k, r, j), (k2, r2, j2) in TIED.items():
        if k in out and k2 in out:
            out[k][r][j] = out[k2][r2][j2]
    return out


# ----------------------------------------------------------------------------- table
def _summary(rows: list[dict]) -> dict:
    le = [abs(r["err"]["LUT"]) for r in rows]
    fe = [abs(r["err"]["FF"]) for r in rows]
    n = len(rows)
    return dict(n=n, lut15=sum(e <= 0.15 for e in le), lut30=sum(e <= 0.30 for e in le),
                ff15=sum(e <= 0.15 for e in fe), ff30=sum(e <= 0.30 for e in fe),
                lut_max=max(le), lut_mean=sum(le) / n, ff_max=max(fe), ff_mean=sum(fe) / n,
                bram=sum(r["bram_exact"] for r in rows), dsp=sum(r["dsp_exact"] for r in rows))


def _table(rows: list[dict], of: int | None = None) -> list[str]:
    if not rows:
        return [f"None of the {of} points is synthesized yet.", ""]
    lines = ["| point | LUT yosys | LUT model | err | FF yosys | FF model | err | BRAM18 y/m "
             "| DSP y/m |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        y, m = r["yosys"], r["model"]
        lines.append(f"| {r['point']} | {y['LUT']} | {m['LUT']} | {100 * r['err']['LUT']:+.1f}% "
                     f"| {y['FF']} | {m['FF']} | {100 * r['err']['FF']:+.1f}% "
                     f"| {y['BRAM18']}/{m['BRAM18']} | {y['DSP']}/{m['DSP']} |")
    s = _summary(rows)
    missing = f" ({of - s['n']} of the {of} points not yet synthesized)" if of and of > s["n"] else ""
    lines += ["", f"{s['n']} points{missing}. LUT within 15 %: {s['lut15']}/{s['n']}, within 30 %: "
              f"{s['lut30']}/{s['n']} (max {100 * s['lut_max']:.1f} %, mean "
              f"{100 * s['lut_mean']:.1f} %). FF within 15 %: {s['ff15']}/{s['n']}, within "
              f"30 %: {s['ff30']}/{s['n']} (max {100 * s['ff_max']:.1f} %, mean "
              f"{100 * s['ff_mean']:.1f} %). BRAM18 exact on {s['bram']}/{s['n']}, DSP exact "
              f"on {s['dsp']}/{s['n']}.", ""]
    return lines


def markdown(train: list[dict], held: list[dict], family: str) -> str:
    lines = [
        "# Resource model calibration",
        "",
        "Generated by `python -m bnncc.calibrate` (checked by `hw_tests/test_calibration.py`).",
        "Each row is one single-layer design rendered by the RTL backend and synthesized by "
        f"Yosys `synth_xilinx -flatten -family {family}`; *model* is the layer's "
        "`resources()` estimate. LUT counts logic LUTs plus LUTRAM / SRL LUTs (RAM32M and "
        "RAM64M = 4, RAM32X1D / RAM64X1D / RAM128X1S = 2, ...); FF counts all flip-flops; "
        "BRAM18 counts RAMB18 + 2 x RAMB36.",
        "",
        "## Method",
        "",
        "Every layer kind's model is a sum of structural features of its RTL template (lanes, "
        "adder-tree bits, ROM bits per 64 words, comparators, counters, LUT RAM as Yosys maps "
        "it) times coefficients in `bnncc/layers/coefficients.json`. The coefficients are "
        "fitted by non-negative least squares on relative error (`calibrate.fit`) on the "
        "**training sweep** only (`bnncc/cal_points.TRAIN`: hand-picked shapes, plus random "
        "layers drawn from the held-out generator's distribution with another seed, "
        "`TRAIN_SEED`, a draw equal to a held-out point dropped); LUT RAM "
        "features keep coefficient 1 (the mapping is exact); the integer MVAU's deep LUT-ROM "
        "term shares the binary MVAU's coefficient (`TIED`: the same RTL ROM). No layer's LUT estimate is "
        "below its physical floor (`lut_floor()`: a ROM in logic of D words x W bits needs "
        "W x ceil(D / 64) LUT6, LUT RAM its mapped cells). The **held-out set** "
        "(`cal_points.heldout()`, seed `HELDOUT_SEED`) is random layers of every kind "
        "(shapes, datatypes, foldings, memory styles, 1 to 64k words) that the fit never "
        "sees; it is the evidence that the model generalizes.",
        "",
        "Yosys results are committed in `bnncc/cal_cells.json`, keyed by a hash of the RTL "
        "text, the Yosys version and the script: a cold run synthesizes only points whose "
        "RTL changed (and the test re-synthesizes a few random points to check the table).",
        "",
        "Adding a layer kind (for example VVAU, or border-class thresholds): give the layer "
        "`features()` (LUT and FF feature lists) and `resources()` reading its key from "
        "`coefficients.json` (`cost.coef`), map the class to that key in "
        "`cost.coef_key`, add its spec to `cal_points.build_layer` / `point_label`, a "
        "handful of TRAIN points and a branch of `heldout_point`, then run "
        "`python -m bnncc.calibrate --fit --save-cells`.",
        "",
        "Structural terms (counted from the templates, not fitted away): a ROM in logic "
        "deeper than 64 words is a LUT6 per bit per 64 words plus the mux tree selecting "
        "among them (`cost.mux_luts`: a tree of 4:1 LUT6 muxes), the same for width-"
        "converter slices and Concat inputs; the binary MVAU's carry-save popcount counts "
        "its full adders (`popcount.full_adders`) and the DW-bit final add per PE; the "
        "adder-tree / carry-save pipeline registers are stages x width (`MVAU.pipeline_ff`, "
        "coefficient 1); a 2-word FIFO of at most 12 bits is stored in flip-flops, wider in "
        "RAM32M, as Yosys maps them (`cost.fifo_storage`); pools' row buffers go to block "
        "RAM where Yosys finds that cheaper; per-channel residual adds put their factor "
        "multiplies on DSP48s when the sum is 9 bits or wider.",
        "",
        "URAM: Yosys maps only zero-initialized memories to URAM and the RTL keeps URAM-style "
        "weights in block RAM, so URAM counts are analytic (72 bits x 4096 words per URAM); "
        "URAM-style held-out points are compared on LUT and FF, and on BRAM18 against the "
        "block-RAM realization the RTL has.",
        "",
        "## Held-out set (never fitted)",
        "",
    ]
    lines += _table(held, len(heldout()))
    lines += ["## Training sweep (fitted)", ""]
    lines += _table(train, len(TRAIN))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bnncc.calibrate")
    ap.add_argument("-o", "--output", default="docs/calibration.md")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--family", default="xc7")
    ap.add_argument("--fit", action="store_true",
                    help="refit the coefficients on the training sweep and write them")
    ap.add_argument("--save-cells", action="store_true",
                    help="write the Yosys results into the committed table")
    ap.add_argument("--only", choices=("train", "heldout"), help="synthesize one set only")
    ap.add_argument("--cached-only", action="store_true",
                    help="run no Yosys: tables of the points already synthesized")
    a = ap.parse_args(argv)
    if a.only:
        synthesize(TRAIN if a.only == "train" else heldout(), a.family, a.jobs, save=a.save_cells)
        return 0
    cells = synthesize(TRAIN, a.family, a.jobs, save=a.save_cells, cached_only=a.cached_only)
    if a.fit:
        from .layers import cost
        if any(c is None for c in cells):
            raise SystemExit("--fit needs every training point synthesized")
        cost.write_coefficients(fit(TRAIN, cells))
    train = sweep(a.family, a.jobs, save=a.save_cells, cached_only=a.cached_only)
    held = rows_of(heldout(), a.family, a.jobs, save=a.save_cells, cached_only=a.cached_only)
    if a.save_cells:
        prune(TRAIN + heldout(), a.family)
    text = markdown(train, held, a.family)
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    Path(a.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
