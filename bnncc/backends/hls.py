"""HLS C++ backend: renders a folded Design into a Vitis HLS dataflow project.

`emit(design, outdir)` writes outdir/hls/:
  bnncc_common.h   ap_int / stream includes and helpers (AP_INT_MAX_W when needed)
  bnncc_stream.h   bnncc's own minimal hls::stream for C simulation (static file)
  <layer>.hpp      one per layer: its constants (weights, thresholds) and its function
  top.hpp/top.cpp  the dataflow top `bnncc_top` with AXI-Stream ports
  tb.cpp           C testbench (file formats in its header comment)
  tb_input.bin     input frames (random, seeded) for run_hls.tcl's csim and cosim
  tb_expected.bin  the golden model's outputs of them, which the testbench compares
  Makefile         g++ C simulation build
  run_hls.tcl      Vitis HLS: csim (this testbench, checked against tb_expected.bin),
                   csynth, cosim (the same check on the synthesized RTL), export as IP

Every layer kind has one template, templates/hls/<kind>.hpp.j2 (MaxPool and SumPool share
pool.hpp.j2, a parallel sliding window has swg_parallel.hpp.j2); this module only computes
the numbers the templates need. The design may be a DAG: every consumer input gets its own
hls::stream, a layer read by several consumers must be a Duplicate
(bnncc.passes.streams.insert_duplicates), and the stream depths come
from bnncc.passes.fifos. Output is deterministic (no times, no absolute paths).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from .. import resources
from ..layers import Duplicate
from ..passes.fifos import fifo_depths
from ..passes.streams import check_streams
from .hls_layers import CONTEXT_OF, _base, c_name

CXXFLAGS = "-O2 -std=c++14 -Wall -Wno-unknown-pragmas"
FIFO_DEPTH = 2     # the streams no layer reads: host input and output (AXI adapters)

TEMPLATE_OF = {
    "MVAU": "mvau.hpp.j2",
    "VVAU": "vvau.hpp.j2",
    "Thresholding": "thresholding.hpp.j2",
    "SlidingWindow": "swg.hpp.j2",
    "MaxPool": "pool.hpp.j2",
    "SumPool": "pool.hpp.j2",
    "LabelSelect": "labelselect.hpp.j2",
    "WidthConverter": "dwc.hpp.j2",
    "Duplicate": "duplicate.hpp.j2",
    "AddStreams": "addstreams.hpp.j2",
    "Concat": "concat.hpp.j2",
    "DepthToSpace": "depth_to_space.hpp.j2",
    "WindowMax": "window_max.hpp.j2",
}
STATIC_FILES = ("bnncc_stream.h",)


def templates_dir() -> Path:
    return resources.templates_dir() / "hls"


@functools.lru_cache(maxsize=None)
def _env():
    """One Jinja environment per process: templates are parsed once, not per render."""
    import jinja2
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                              undefined=jinja2.StrictUndefined)


# -- the dataflow graph --------------------------------------------------------------------

def layer_names(design) -> dict[str, str]:
    """Layer name -> its C++ function (and file) name, unique, in topological order."""
    names: dict[str, str] = {}
    for l in design.layers():
        name = c_name(l.name)
        while name in names.values():
            name += "_"
        names[l.name] = name
    return names


def endpoints(design) -> tuple:
    """(first, last): the one layer reading the host input stream, the one nobody reads
    (bnncc.passes.streams.check_streams, which also checks every stream)."""
    return check_streams(design)


def dataflow(design) -> tuple[list[dict], list[dict]]:
    """Layer contexts in topological order, and the streams of the dataflow top.

    Every (consumer, input index) edge is one hls::stream, named s_<producer> when the
    producer has one reader and s_<dup>_<k> for output k of a Duplicate; s_in carries the
    host input to the first layer and s_<last> the last layer's output to the host. Each
    stream is {"name" (without s_), "bits", "depth"}; each port of a context gets the
    "stream" it is wired to."""
    first, last = endpoints(design)
    names = layer_names(design)
    depths = fifo_depths(design)
    ctxs = {l.name: CONTEXT_OF[l.kind](l, _base(l, names[l.name])) for l in design.layers()}
    first_in = ctxs[first.name]["ins"][0]
    streams = [{"name": "in", "bits": first_in["bits"], "depth": FIFO_DEPTH}]
    first_in["stream"] = "in"
    taken = {"in"} | set(names.values())      # layer names are the single-reader streams
    reader_map = design.reader_map()
    for l in design.layers():
        c = ctxs[l.name]
        readers = reader_map[l.name]
        if isinstance(l, Duplicate):
            sfx = []
            for k in range(l.n):
                s = f"{c['name']}_{k}"
                while s in taken:                  # a layer may be called <dup>_<k>
                    s += "_"
                taken.add(s)
                sfx.append(s)
        else:
            sfx = [c["name"]]
        for out, s in zip(c["outs"], sfx):
            out["stream"] = s
        if not readers:
            streams.append({"name": sfx[0], "bits": c["out_bits"], "depth": FIFO_DEPTH})
        for k, (v, i) in enumerate(readers):
            streams.append({"name": sfx[k], "bits": c["outs"][k]["bits"],
                            "depth": depths[(v, i)]})
            ctxs[v]["ins"][i]["stream"] = sfx[k]
    return list(ctxs.values()), streams


def layer_contexts(design) -> list[dict]:
    """The template parameters of every layer, in topological order."""
    return dataflow(design)[0]


def _bytes(bits: int) -> int:
    return (bits + 7) // 8


# -- the project ---------------------------------------------------------------------------

def render(design, part: str = "xc7z020clg400-1", clock_mhz: float = 100.0,
           cxxflags: str = CXXFLAGS) -> dict[str, bytes]:
    """File name -> contents of the HLS project (nothing written)."""
    env = _env()
    ctxs, streams = dataflow(design)
    first, last = endpoints(design)
    ctx_of = dict(zip((l.name for l in design.layers()), ctxs))
    c_first, c_last = ctx_of[first.name], ctx_of[last.name]
    design_name = Path(str(design.source)).stem or "bnncc"
    max_w = max(max([p["bits"] for p in c["ports"]]
                    + [c.get("wword_bits", 0), c.get("buf_bits", 0), c.get("sum_bits", 0)])
                for c in ctxs)
    max_w = max(max_w, 8 * _bytes(c_first["in_bits"]), 8 * _bytes(c_last["out_bits"]))
    top = {
        "design_name": design_name, "layers": ctxs, "streams": streams,
        "first": c_first, "last": c_last,
        "in_words": c_first["in_words"], "in_elems": c_first["in_elems"], "in_dt": first.idt,
        "out_words": c_last["out_words"], "out_elems": c_last["out_elems"],
        "out_dt": last.odt,
        "in_axi_bits": 8 * _bytes(c_first["in_bits"]),
        "out_axi_bits": 8 * _bytes(c_last["out_bits"]),
        "max_word_bits": max_w, "ap_int_max_w": max(1024, -(-max_w // 1024) * 1024),
        "part": part, "clock_mhz": f"{clock_mhz:g}", "period_ns": f"{1000.0 / clock_mhz:.3f}",
        "project": f"{c_name(design_name)}_hls", "cxxflags": cxxflags,
        "tb_frames": TB_FRAMES, "csim_cflags": CSIM_TCL_CFLAGS,
    }
    files: dict[str, bytes] = {}
    for c in ctxs:
        tpl = c.get("template") or TEMPLATE_OF[c["kind"]]
        files[c["name"] + ".hpp"] = env.get_template(tpl).render(**c).encode()
    for out, tpl in (("bnncc_common.h", "bnncc_common.h.j2"), ("top.hpp", "top.hpp.j2"),
                     ("top.cpp", "top.cpp.j2"), ("tb.cpp", "tb.cpp.j2"),
                     ("Makefile", "Makefile.j2"), ("run_hls.tcl", "run_hls.tcl.j2")):
        files[out] = env.get_template(tpl).render(**top).encode()
    for name in STATIC_FILES:
        files[name] = (templates_dir() / name).read_bytes()
    files["tb_input.bin"], files["tb_expected.bin"] = golden_frames(design, top)
    return dict(sorted(files.items()))


TB_FRAMES = 4      # frames in tb_input.bin
CSIM_TCL_CFLAGS = "-std=c++14"    # what bnncc.sim.csim compiles with, minus optimization


def golden_frames(design, top: dict) -> tuple[bytes, bytes]:
    """TB_FRAMES random input frames (seeded: the project is deterministic) as AXI words,
    and the golden model's outputs of them: run_hls.tcl's csim and cosim compare with
    these (tb --expect)."""
    from ..streams import words_to_bytes
    first, last = endpoints(design)
    dt = first.idt
    rng = np.random.default_rng(0)
    shape = (TB_FRAMES,) + tuple(first.in_shape)
    q = rng.choice([-1, 1], shape) if dt.is_bipolar else rng.integers(dt.min, dt.max + 1, shape)
    from ..kernels import numpy_only
    from ..layers.bits import unpacked
    with numpy_only():
        y = design.run_layers(q)
    return (words_to_bytes(q, dt, top["in_elems"], top["in_axi_bits"]),
            words_to_bytes(unpacked(y), last.odt, top["out_elems"], top["out_axi_bits"]))


def emit(design, outdir: Path, part: str = "xc7z020clg400-1",
         clock_mhz: float = 100.0) -> list[Path]:
    """Write the HLS project to outdir/hls/; returns the written paths (sorted)."""
    files = render(design, part=part, clock_mhz=clock_mhz)
    hls = Path(outdir) / "hls"
    hls.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files.items():
        p = hls / name
        p.write_bytes(data)
        paths.append(p)
    return paths
