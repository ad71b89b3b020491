"""Calibration of the resource models against Yosys `synth_xilinx`.

A sweep of single-layer designs (every layer kind, a range of shapes, datatypes and
PE/SIMD, both weight memory styles) is rendered with the RTL backend exactly as
`bnncc compile` writes it, synthesized by Yosys (`synth_xilinx -flatten -family xc7`),
and the mapped cells are compared with the layer's `resources()` model.

    python -m bnncc.calibrate [-o docs/calibration.md] [-j JOBS]

Results are cached by content hash (RTL text + Yosys version + script) under
$BNNCC_CACHE/yosys (default ~/.cache/bnncc), so only new or changed points are
synthesized. hw_tests/test_calibration.py runs the same sweep and checks the errors.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import resources
from .datatypes import DataType
from .layers import (MVAU, VVAU, AddStreams, Concat, Duplicate, LabelSelect, MaxPool,
                     SlidingWindow, SumPool, Thresholding, WidthConverter)
from .layers.cost import Fifo, count_cells

RES = ("LUT", "FF", "BRAM18", "URAM", "DSP")
SCRIPT_VERSION = "cal-v2"


def dt(name: str) -> DataType:
    if name == "BIPOLAR":
        return DataType.bipolar()
    m = re.fullmatch(r"(U?INT)(\d+)", name)
    bits = int(m.group(2))
    return DataType.int(bits) if m.group(1) == "INT" else DataType.uint(bits)


# ----------------------------------------------------------------------------- the sweep
def _mv(mh, mw, pe, simd, idt="BIPOLAR", wdt="BIPOLAR", nt=1, style="block", odt=None):
    return dict(kind="MVAU", mh=mh, mw=mw, pe=pe, simd=simd, idt=idt, wdt=wdt, nt=nt,
                style=style, odt=odt)


def _vv(c_in, c_out, cin, cout, k, pe, idt, wdt, nt, style="lut"):
    """A VVAU of c_in channels in groups of cin (-> cout outputs each), k x k kernel."""
    return dict(kind="VVAU", c_in=c_in, c_out=c_out, cin=cin, cout=cout, k=k, pe=pe, idt=idt,
                wdt=wdt, nt=nt, style=style)


SWEEP = [
    # XNOR-popcount MVAUs (TFC / CNV shapes), BRAM and LUT weights
    _mv(64, 784, 16, 49),
    _mv(64, 784, 4, 16),
    _mv(64, 64, 16, 16, style="lut"),
    _mv(64, 64, 8, 8, style="lut"),
    _mv(64, 64, 4, 64),
    _mv(10, 64, 10, 16, nt=0, style="lut"),
    _mv(64, 576, 16, 32),
    _mv(64, 576, 8, 64),
    _mv(128, 576, 8, 32),
    _mv(128, 1152, 16, 32),
    _mv(256, 2304, 2, 16),
    _mv(512, 256, 8, 16),
    _mv(512, 512, 4, 8),
    _mv(10, 512, 1, 8, nt=0, style="lut"),
    _mv(32, 96, 32, 96, style="lut"),
    _mv(64, 128, 2, 4, style="lut"),
    _mv(256, 256, 16, 16),
    # multi-bit MVAUs: 8-bit input x bipolar weights (first conv), 2-bit x 2-bit (w2a2)
    _mv(64, 27, 16, 3, idt="INT8", style="lut"),
    _mv(64, 27, 8, 27, idt="INT8", style="lut"),
    _mv(64, 27, 4, 9, idt="INT8", wdt="INT2", nt=2, odt="INT2", style="lut"),
    _mv(64, 576, 16, 16, idt="INT2", wdt="INT2", nt=2, odt="INT2"),
    _mv(128, 576, 4, 32, idt="INT2", wdt="INT2", nt=2, odt="INT2"),
    _mv(64, 64, 8, 8, idt="UINT2", wdt="INT2", nt=3, odt="UINT2", style="lut"),
    _mv(10, 512, 2, 16, idt="INT2", wdt="INT2", nt=0),
    _mv(32, 64, 4, 8, idt="INT4", wdt="INT4", nt=0, style="lut"),
    # standalone thresholding
    dict(kind="Thresholding", c=64, nt=1, pe=8, idt="INT8", odt="BIPOLAR"),
    dict(kind="Thresholding", c=64, nt=3, pe=16, idt="INT10", odt="UINT2"),
    dict(kind="Thresholding", c=128, nt=15, pe=4, idt="INT12", odt="UINT4"),
    dict(kind="Thresholding", c=32, nt=1, pe=32, idt="UINT6", odt="BIPOLAR"),
    # sliding windows: CNV geometries, bipolar / 2-bit / 8-bit
    dict(kind="SlidingWindow", ih=32, iw=32, c=3, k=3, s=1, pad=0, simd=3, idt="INT8"),
    dict(kind="SlidingWindow", ih=30, iw=30, c=64, k=3, s=1, pad=0, simd=32, idt="BIPOLAR"),
    dict(kind="SlidingWindow", ih=30, iw=30, c=64, k=3, s=1, pad=0, simd=4, idt="BIPOLAR"),
    dict(kind="SlidingWindow", ih=14, iw=14, c=64, k=3, s=1, pad=0, simd=16, idt="INT2"),
    dict(kind="SlidingWindow", ih=12, iw=12, c=128, k=3, s=1, pad=1, simd=64, idt="BIPOLAR"),
    dict(kind="SlidingWindow", ih=5, iw=5, c=128, k=3, s=1, pad=0, simd=8, idt="BIPOLAR"),
    dict(kind="SlidingWindow", ih=3, iw=3, c=256, k=3, s=1, pad=0, simd=2, idt="BIPOLAR"),
    dict(kind="SlidingWindow", ih=28, iw=28, c=16, k=2, s=2, pad=0, simd=16, idt="INT4"),
    # parallel windows (a whole window per word): first-layer shapes
    dict(kind="SlidingWindow", ih=32, iw=32, c=3, k=3, s=1, pad=0, simd=3, idt="INT8", par=1),
    dict(kind="SlidingWindow", ih=28, iw=28, c=1, k=5, s=1, pad=2, simd=1, idt="UINT8", par=1),
    dict(kind="SlidingWindow", ih=16, iw=16, c=16, k=3, s=2, pad=1, simd=16, idt="INT2", par=1),
    dict(kind="SlidingWindow", ih=30, iw=30, c=64, k=3, s=1, pad=0, simd=64, idt="BIPOLAR", par=1),
    # max pooling, label select
    dict(kind="MaxPool", ih=28, iw=28, c=64, k=2, pe=16, idt="BIPOLAR"),
    dict(kind="MaxPool", ih=10, iw=10, c=128, k=2, pe=4, idt="BIPOLAR"),
    dict(kind="MaxPool", ih=28, iw=28, c=64, k=2, pe=8, idt="INT2"),
    # sum pooling (average pools), 2x2 and global
    dict(kind="SumPool", ih=28, iw=28, c=64, k=2, pe=8, idt="UINT2"),
    dict(kind="SumPool", ih=8, iw=8, c=32, k=8, pe=4, idt="INT4"),
    dict(kind="SumPool", ih=16, iw=16, c=16, k=2, pe=16, idt="BIPOLAR"),
    dict(kind="SumPool", ih=14, iw=14, c=32, k=2, pe=4, idt="INT3"),
    dict(kind="SumPool", ih=4, iw=4, c=64, k=4, pe=8, idt="UINT4"),
    # joins and splits of residual blocks
    dict(kind="AddStreams", c=64, pe=8, idt="INT4", idt_b="INT4", ka=1, kb=1),
    dict(kind="AddStreams", c=64, pe=16, idt="UINT8", idt_b="INT8", ka=3, kb=1),
    dict(kind="AddStreams", c=32, pe=4, idt="INT2", idt_b="UINT2", ka=1, kb=-4),
    dict(kind="Concat", channels=(64, 64), pe=8, idts=("INT4", "INT4")),
    dict(kind="Concat", channels=(32, 16, 16), pe=16, idts=("UINT2", "INT3", "BIPOLAR")),
    dict(kind="Concat", channels=(8, 24), pe=4, idts=("UINT8", "UINT6")),
    dict(kind="Duplicate", w=64, n=2),
    dict(kind="Duplicate", w=8, n=3),
    dict(kind="Duplicate", w=256, n=2),
    dict(kind="LabelSelect", labels=10, k=1, pe=1, idt="UINT10"),
    dict(kind="LabelSelect", labels=10, k=1, pe=10, idt="UINT10"),
    dict(kind="LabelSelect", labels=100, k=5, pe=4, idt="INT12"),
    # FIFOs and width converters
    dict(kind="Fifo", w=64, depth=2),
    dict(kind="Fifo", w=8, depth=34),
    dict(kind="Fifo", w=32, depth=290),
    dict(kind="Fifo", w=1, depth=2306),
    dict(kind="WidthConverter", eb=1, ie=64, oe=32),
    dict(kind="WidthConverter", eb=1, ie=16, oe=64),
    dict(kind="WidthConverter", eb=2, ie=4, oe=32),
    dict(kind="WidthConverter", eb=10, ie=10, oe=1),
    # VVAUs: depthwise 3x3 (MobileNet shapes, 4-bit), depth multiplier 2, general groups,
    # binary; BRAM and LUT weights
    _vv(32, 32, 1, 1, 3, 4, "UINT4", "INT4", 15),
    _vv(32, 32, 1, 1, 3, 16, "UINT4", "INT4", 15),
    _vv(64, 64, 1, 1, 3, 8, "UINT4", "INT4", 15, style="block"),
    _vv(128, 128, 1, 1, 3, 8, "UINT4", "INT4", 15),
    _vv(256, 256, 1, 1, 3, 2, "UINT4", "INT4", 15, style="block"),
    _vv(16, 32, 1, 2, 3, 8, "INT8", "INT4", 0),
    _vv(32, 32, 4, 4, 3, 2, "UINT2", "INT2", 3),
    _vv(16, 16, 2, 2, 1, 8, "INT4", "INT3", 7),
    _vv(64, 64, 1, 1, 3, 16, "BIPOLAR", "BIPOLAR", 1),
    _vv(64, 64, 4, 4, 3, 4, "BIPOLAR", "BIPOLAR", 1, style="block"),
    _vv(32, 64, 2, 4, 2, 8, "BIPOLAR", "BIPOLAR", 0),
    _vv(48, 48, 1, 1, 5, 6, "UINT4", "INT4", 15),
]


def point_label(p: dict) -> str:
    k = p["kind"]
    if k == "MVAU":
        s = f"MVAU {p['mh']}x{p['mw']} PE{p['pe']} SIMD{p['simd']} {p['idt']}x{p['wdt']}"
        return s + f" nt{p['nt']} {p['style']}"
    if k == "VVAU":
        return (f"VVAU {p['c_in']}->{p['c_out']} G{p['c_in'] // p['cin']} k{p['k']} PE{p['pe']} "
                f"{p['idt']}x{p['wdt']} nt{p['nt']} {p['style']}")
    if k == "Thresholding":
        return f"Thresh C{p['c']} nt{p['nt']} PE{p['pe']} {p['idt']}"
    if k == "SlidingWindow":
        return (f"SWG {p['ih']}x{p['iw']}x{p['c']} k{p['k']} s{p['s']} p{p['pad']} "
                f"{'parallel' if p.get('par') else 'SIMD' + str(p['simd'])} {p['idt']}")
    if k in ("MaxPool", "SumPool"):
        return f"{k} {p['ih']}x{p['iw']}x{p['c']} k{p['k']} PE{p['pe']} {p['idt']}"
    if k == "AddStreams":
        return f"Add C{p['c']} PE{p['pe']} {p['ka']}*{p['idt']}+{p['kb']}*{p['idt_b']}"
    if k == "Concat":
        return f"Concat {'+'.join(map(str, p['channels']))} PE{p['pe']} {'/'.join(p['idts'])}"
    if k == "Duplicate":
        return f"Duplicate W{p['w']} x{p['n']}"
    if k == "LabelSelect":
        return f"LabelSel {p['labels']} k{p['k']} PE{p['pe']} {p['idt']}"
    if k == "Fifo":
        return f"FIFO W{p['w']} D{p['depth']}"
    return f"DWC EB{p['eb']} {p['ie']}->{p['oe']}"


def build_layer(p: dict, name: str, seed: int = 0):
    """The layer object of a sweep point (random weights / sorted random thresholds)."""
    rng = np.random.default_rng(seed)
    k = p["kind"]
    if k == "MVAU":
        idt, wdt = dt(p["idt"]), dt(p["wdt"])
        mh, mw = p["mh"], p["mw"]
        if wdt.is_bipolar:
            w = rng.choice([-1, 1], (mh, mw)).astype(np.int64)
        else:
            w = rng.integers(wdt.min, wdt.max + 1, (mh, mw)).astype(np.int64)
        binary = idt.is_bipolar and wdt.is_bipolar
        if binary:
            lo, hi = 0, mw
        else:
            xl, xh = (-1, 1) if idt.is_bipolar else (idt.min, idt.max)
            lo = int(np.minimum(xl * w, xh * w).sum(1).min())
            hi = int(np.maximum(xl * w, xh * w).sum(1).max())
        acc = DataType.for_range(lo, hi)
        nt = p["nt"]
        thr = None
        odt = acc
        if nt:
            thr = np.sort(rng.integers(lo // 2, hi // 2 + 1, (mh, nt)), axis=1).astype(np.int64)
            odt = dt(p["odt"]) if p.get("odt") else DataType.bipolar()
        return MVAU(name, idt, odt, (mw,), (mh,), weights=w, wdt=wdt, binary=binary, accdt=acc,
                    thresholds=thr, tdt=acc, pe=p["pe"], simd=p["simd"], mem_style=p["style"])
    if k == "VVAU":
        idt, wdt = dt(p["idt"]), dt(p["wdt"])
        g, kk = p["c_in"] // p["cin"], p["k"]
        w = (rng.choice([-1, 1], (p["c_out"], kk * kk * p["cin"])) if wdt.is_bipolar else
             rng.integers(wdt.min, wdt.max + 1, (p["c_out"], kk * kk * p["cin"]))).astype(np.int64)
        binary = idt.is_bipolar and wdt.is_bipolar
        from .passes.widths import mvau_acc_range
        lo_c, hi_c = mvau_acc_range(w, idt, binary)
        lo, hi = int(lo_c.min()), int(hi_c.max())
        acc, thr, odt = DataType.for_range(lo, hi), None, None
        if p["nt"]:
            thr = np.sort(rng.integers(lo // 2, hi // 2 + 1, (p["c_out"], p["nt"])), axis=1)
            odt = DataType.bipolar() if p["nt"] == 1 else DataType.for_range(0, p["nt"])
        return VVAU(name, idt, odt or acc, (8, 8, kk * kk * p["c_in"]), (8, 8, p["c_out"]),
                    weights=w, wdt=wdt, groups=g, kernel=(kk, kk), binary=binary, accdt=acc,
                    thresholds=thr, tdt=acc, pe=p["pe"], mem_style=p["style"])
    if k == "Thresholding":
        idt, odt = dt(p["idt"]), dt(p["odt"])
        c, nt = p["c"], p["nt"]
        t = np.sort(rng.integers(idt.min, idt.max + 1, (c, nt)), axis=1).astype(np.int64)
        return Thresholding(name, idt, odt, (c,), (c,), thresholds=t, tdt=idt,
                            negate=rng.random(c) < 0.3, pe=p["pe"])
    if k == "SlidingWindow":
        idt = dt(p["idt"])
        ih, iw, c, kk, s, pad = p["ih"], p["iw"], p["c"], p["k"], p["s"], p["pad"]
        oh, ow = (ih + 2 * pad - kk) // s + 1, (iw + 2 * pad - kk) // s + 1
        return SlidingWindow(name, idt, idt, (ih, iw, c), (oh, ow, kk * kk * c), kernel=(kk, kk),
                             stride=(s, s), pads=(pad,) * 4,
                             pad_value=1 if idt.is_bipolar else 0, simd=p["simd"],
                             parallel=bool(p.get("par")))
    if k == "MaxPool":
        idt = dt(p["idt"])
        ih, iw, c, kk = p["ih"], p["iw"], p["c"], p["k"]
        return MaxPool(name, idt, idt, (ih, iw, c), (ih // kk, iw // kk, c), kernel=(kk, kk),
                       stride=(kk, kk), pe=p["pe"])
    if k == "SumPool":
        idt = dt(p["idt"])
        ih, iw, c, kk = p["ih"], p["iw"], p["c"], p["k"]
        lo, hi = (-1, 1) if idt.is_bipolar else (idt.min, idt.max)
        return SumPool(name, idt, DataType.for_range(kk * kk * lo, kk * kk * hi), (ih, iw, c),
                       (ih // kk, iw // kk, c), kernel=(kk, kk), stride=(kk, kk), pe=p["pe"])
    if k == "AddStreams":
        a, b = dt(p["idt"]), dt(p["idt_b"])
        ends = [p["ka"] * x + p["kb"] * y for x in (a.min, a.max) for y in (b.min, b.max)]
        return AddStreams(name, a, DataType.for_range(min(ends), max(ends)), (p["c"],),
                          (p["c"],), idt_b=b, ka=p["ka"], kb=p["kb"], pe=p["pe"])
    if k == "Concat":
        ts = [dt(t) for t in p["idts"]]
        lo, hi = min(t.min for t in ts), max(t.max for t in ts)
        return Concat(name, ts[0], DataType.for_range(lo, hi), (p["channels"][0],),
                      (sum(p["channels"]),), idts=tuple(ts), channels=tuple(p["channels"]),
                      pe=p["pe"])
    if k == "Duplicate":
        d = DataType.uint(p["w"])
        return Duplicate(name, d, d, (1,), (1,), n=p["n"])
    if k == "LabelSelect":
        idt = dt(p["idt"])
        n = p["labels"]
        return LabelSelect(name, idt, DataType.uint(max(1, (n - 1).bit_length())), (n,),
                           (p["k"],), k=p["k"], pe=p["pe"])
    if k == "Fifo":
        return Fifo(name, p["w"], p["depth"])
    d = dt("BIPOLAR") if p["eb"] == 1 else DataType.uint(p["eb"])
    n = p["ie"] * p["oe"] * 2
    return WidthConverter(name, d, d, (n,), (n,), [], in_elems=p["ie"], out_elems=p["oe"])


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


def _yosys_version() -> str:
    from .sim.tools import yosys_cmd
    r = subprocess.run([*yosys_cmd(), "-V"], capture_output=True, text=True)
    return r.stdout.strip()


def synth_script(vfiles: list[str], top: str, pre: str, family: str, out: str) -> str:
    return (f"design -reset; read_verilog {' '.join(vfiles)}; {pre}"
            f"synth_xilinx -flatten -noiopad -noclkbuf -family {family} -top {top}; "
            f"tee -q -o {out} stat -json; ")


def synthesize(points: list[dict], family: str = "xc7", jobs: int = 2, log=print) -> list[dict]:
    """Yosys cell counts of every point (cached). Uncached points run in `jobs` Yosys
    processes, each synthesizing its share of points one after the other."""
    from .sim.tools import yosys_cmd
    ver = _yosys_version()
    cdir = cache_dir()
    cdir.mkdir(parents=True, exist_ok=True)
    rendered, keys, todo = [], [], []
    for i, p in enumerate(points):
        name = f"p{i:03d}"
        files, top, pre = render_point(p, name)
        h = hashlib.sha256(f"{ver}|{SCRIPT_VERSION}|{family}|{top}|{pre}".encode())
        for n in sorted(files):
            if n.endswith(".v") or n.startswith("bnncc_" + name):
                h.update(n.encode() + b"\0" + files[n].encode() + b"\0")
        key = h.hexdigest()[:24]
        rendered.append((name, files, top, pre))
        keys.append(key)
        if not (cdir / f"{key}.json").exists():
            todo.append(i)
    if todo:
        log(f"synthesizing {len(todo)} of {len(points)} points with Yosys ({jobs} processes)")

        def run(i):
            name, files, top, pre = rendered[i]
            with tempfile.TemporaryDirectory(prefix="bnncc_cal_") as td:
                for n, t in files.items():
                    (Path(td) / n).write_text(t)
                vf = ["bnncc_fifo.v", "bnncc_dwc.v"] + \
                    [n for n in files if n.endswith(".v") and n.startswith("bnncc_p")]
                t0 = time.time()
                r = subprocess.run([*yosys_cmd(), "-q", "-p",
                                    synth_script(vf, top, pre, family, "stat.json")],
                                   cwd=td, capture_output=True, text=True)
                if r.returncode != 0:
                    raise RuntimeError(f"yosys failed on {point_label(points[i])}:\n"
                                       + (r.stdout + r.stderr)[-3000:])
                stat = json.loads((Path(td) / "stat.json").read_text())
                cells = stat["design"]["num_cells_by_type"]
                (cdir / f"{keys[i]}.json").write_text(json.dumps(cells, sort_keys=True))
                log(f"  {point_label(points[i])}: {time.time() - t0:.0f} s")

        t0 = time.time()
        with ThreadPoolExecutor(jobs) as ex:
            list(ex.map(run, todo))
        log(f"  done in {time.time() - t0:.0f} s")
    return [json.loads((cdir / f"{k}.json").read_text()) for k in keys]


# ----------------------------------------------------------------------------- table
def model_of(p: dict) -> dict:
    layer = build_layer(p, "m")
    return layer.resources(getattr(layer, "mem_style", None))


def err(model: float, meas: float) -> float:
    if meas == 0:
        return 0.0 if model == 0 else 1.0
    return (model - meas) / meas


def sweep(family: str = "xc7", jobs: int = 2, log=print, points=None) -> list[dict]:
    points = SWEEP if points is None else points
    cells = synthesize(points, family, jobs, log)
    rows = []
    for p, c in zip(points, cells):
        meas = count_cells(c)
        mod = model_of(p)
        rows.append(dict(point=point_label(p), spec=p, yosys=meas, model=mod,
                         err={r: err(mod[r], meas[r]) for r in ("LUT", "FF")},
                         bram_exact=mod["BRAM18"] == meas["BRAM18"],
                         dsp_exact=mod["DSP"] == meas["DSP"]))
    return rows


def markdown(rows: list[dict], family: str) -> str:
    lines = [
        "# Resource model calibration",
        "",
        "Generated by `python -m bnncc.calibrate` (also run by `hw_tests/test_calibration.py`).",
        f"Each row is one single-layer design rendered by the RTL backend and synthesized by "
        f"Yosys `synth_xilinx -flatten -family {family}`; *model* is the layer's "
        "`resources()` estimate. LUT counts logic LUTs plus LUTRAM / SRL LUTs (RAM32M and "
        "RAM64M = 4, RAM32X1D / RAM64X1D / RAM128X1S = 2, ...); FF counts all flip-flops; "
        "BRAM18 counts RAMB18 + 2 x RAMB36. Acceptance: LUT and FF within 15 %, BRAM18 exact.",
        "",
        "| point | LUT yosys | LUT model | err | FF yosys | FF model | err | BRAM18 y/m | DSP y/m |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        y, m = r["yosys"], r["model"]
        lines.append(f"| {r['point']} | {y['LUT']} | {m['LUT']} | {100 * r['err']['LUT']:+.1f}% "
                     f"| {y['FF']} | {m['FF']} | {100 * r['err']['FF']:+.1f}% "
                     f"| {y['BRAM18']}/{m['BRAM18']} | {y['DSP']}/{m['DSP']} |")
    le = [abs(r["err"]["LUT"]) for r in rows]
    fe = [abs(r["err"]["FF"]) for r in rows]
    lines += ["",
              f"{len(rows)} points. LUT error: max {100 * max(le):.1f} %, mean "
              f"{100 * sum(le) / len(le):.1f} %. FF error: max {100 * max(fe):.1f} %, mean "
              f"{100 * sum(fe) / len(fe):.1f} %. BRAM18 exact on "
              f"{sum(r['bram_exact'] for r in rows)}/{len(rows)}, DSP exact on "
              f"{sum(r['dsp_exact'] for r in rows)}/{len(rows)}.",
              "",
              "URAM: Yosys maps only zero-initialized memories to URAM, and bnncc's weight "
              "ROMs are initialized, so URAM weight storage (offered by the optimizer on "
              "UltraScale+ boards) is modelled analytically (72-bit x 4096 words per URAM) "
              "and is not part of this sweep.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bnncc.calibrate")
    ap.add_argument("-o", "--output", default="docs/calibration.md")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--family", default="xc7")
    a = ap.parse_args(argv)
    rows = sweep(a.family, a.jobs)
    text = markdown(rows, a.family)
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    Path(a.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
