"""DIR/report.json, DIR/report.md (+ DIR/report_layers.png) and DIR/README.md of a
compiled design. The performance / resource figures come from bnncc.estimate."""
from __future__ import annotations

import json
from pathlib import Path

from . import __version__
from .layers import in_elems, out_elems


def layer_rows(design) -> list[dict]:
    rows = []
    for l in design.layers():
        row = {"name": l.name, "kind": l.kind, "in_shape": list(l.in_shape),
               "out_shape": list(l.out_shape), "idt": str(l.idt), "odt": str(l.odt),
               "PE": getattr(l, "pe", None), "SIMD": getattr(l, "simd", None),
               "in_elems": in_elems(l), "out_elems": out_elems(l), "cycles": l.cycles(),
               "src": list(l.src)}
        row.update({k: v for k, v in l.describe().items() if k not in row})
        rows.append(row)
    return rows


def summary(design, board, clock_mhz: float, budget: dict | None = None) -> dict:
    from .compression import with_compression
    from .estimate import estimate
    est = with_compression(estimate(design, board, clock_mhz, budget), design, board,
                           clock_mhz, budget)
    rows = layer_rows(design)
    by_name = {r["name"]: r for r in est["layers"]}
    for r in rows:
        r.update({k: v for k, v in by_name.get(r["name"], {}).items() if k not in r or k in
                  ("PE", "SIMD", "cycles")})
    ii = est["cycles_per_frame"]
    return {
        "tool": f"bnncc {__version__}",
        "board": board.name, "part": board.part, "clock_mhz": clock_mhz,
        "input": {"name": design.input_name, "shape": list(design.input_shape),
                  "stream_dtype": str(design.input_stage.quant.dtype)},
        "output": {"name": design.output_name, "shape": list(design.output_shape)},
        "cycles_per_frame_estimated": ii,
        "fps": est["fps"], "latency_cycles": est["latency_cycles"], "fits": est["fits"],
        "totals": est["totals"], "budget": est["budget"], "capacity": est["capacity"],
        "logic_depth": est["logic_depth"], "ports": est["ports"],
        **({"compression": est["compression"]} if "compression" in est else {}),
        "layers": rows,
        "notes": list(design.notes),
    }


def report_md(design, board, clock_mhz: float, source: str, budget: dict | None = None,
              png_name: str | None = "report_layers.png") -> str:
    from .estimate import estimate, table
    est = estimate(design, board, clock_mhz, budget)
    lines = [f"# {Path(source).stem}: estimate for {board.name}", "",
             f"bnncc {__version__}, `{Path(source).name}`, {board.name} (`{board.part}`) at "
             f"{clock_mhz:g} MHz.", "",
             f"- throughput: **{est['fps']:,.0f} frames/s** ({est['cycles_per_frame']} cycles "
             f"per frame; bottleneck `{est['bottleneck']}`)",
             f"- latency: {est['latency_cycles']} cycles ({est['latency_us']:.1f} us)",
             f"- fits the budget: **{'yes' if est['fits'] else 'NO'}**", "",
             "Resources are estimates of the generated RTL from models calibrated against "
             "Yosys `synth_xilinx` (see bnncc's docs/calibration.md).", "",
             "```", table(est), "```", ""]
    if png_name:
        lines += [f"![per-layer cycles and resources]({png_name})", ""]
    return "\n".join(lines)


README = """# {name}: bnncc design for {board}

Compiled by bnncc {version} from `{source}` for {board} (`{part}`) at {clock} MHz.

- `hls/` — Vitis HLS project: one header per layer, `top.cpp` (dataflow top), `tb.cpp`
  (C testbench reading `tb_input.bin`, writing `tb_output.bin`), `run_hls.tcl`.
  Build the IP: `cd hls && vitis_hls -f run_hls.tcl` (csim, csynth, export as IP
  catalog). C simulation without vendor tools: `bnncc cosim MODEL -i IN.npy --levels golden,csim`.
- `rtl/` — synthesizable Verilog of the same layers and folding, `bnncc_top.v` as top,
  plus a Verilator testbench. Cycle simulation: `bnncc cosim MODEL -i IN.npy --levels golden,rtlsim`.
- `report.json`, `report.md` — layers, folding (PE, SIMD, memory style), cycles per frame,
  estimated resources against the board, fps and latency; `report_layers.png` plots them.

Estimated throughput: {fps:.0f} frames/s ({ii} cycles per frame at {clock} MHz).

The host keeps the float work before the first and after the last hardware layer:
{host}
"""


def report_files(design, board, clock_mhz: float, source: str,
                 budget: dict | None = None) -> dict[str, bytes]:
    from .estimate import estimate
    from .plot import plot_png
    s = summary(design, board, clock_mhz, budget)
    q = design.input_stage.quant
    ops = ", ".join(op.op for op in design.output_stage.chain) or "none"
    host = (f"- input: float ops then a quantizer to {q.dtype} "
            f"(stream shape {list(design.input_stage.hw_shape)})\n"
            f"- output: {ops}" + (f", then {design.output_stage.head.label}"
                                  if design.output_stage.head is not None else ""))
    readme = README.format(name=Path(source).stem, board=board.name, version=__version__,
                           source=Path(source).name, part=board.part, clock=f"{clock_mhz:g}",
                           fps=s["fps"], ii=s["cycles_per_frame_estimated"], host=host)
    return {"report.json": (json.dumps(s, indent=2, sort_keys=True) + "\n").encode(),
            "report.md": report_md(design, board, clock_mhz, source, budget).encode(),
            "report_layers.png": plot_png(estimate(design, board, clock_mhz, budget)),
            "README.md": readme.encode()}
