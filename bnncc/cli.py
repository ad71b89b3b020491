"""Command line: bnncc inspect | run | compile | cosim | estimate | boards | cache.

Every command is a thin layer over bnncc.api (the same calls a Python user makes).

Exit codes: 0 success, 2 bad or unsupported input (one line on stderr naming file, node
and op), 1 verification mismatch. No traceback ever reaches the user for bad input.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from . import __version__
from .errors import BnnccError


def _load_npy(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise BnnccError("no such input file", file=path)
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:
        raise BnnccError(f"not a readable .npy array ({type(e).__name__})", file=path) from None


def _save_npy(path: str, arr: np.ndarray) -> None:
    tmp = path + ".tmp.npy"
    try:
        np.save(tmp, arr)
        os.replace(tmp, path)
    except OSError as e:
        raise BnnccError(f"cannot write output: {e.strerror}", file=path) from None


def _scale(text: str) -> float:
    """1.5, 1/255 or 2^-7."""
    t = text.replace(" ", "")
    try:
        if "^" in t:
            b, e = t.split("^")
            v = float(b) ** float(e)
        elif "/" in t:
            n, d = t.split("/")
            v = float(n) / float(d)
        else:
            v = float(t)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a scale: {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"scale must be positive: {text!r}")
    return v


def _model(a):
    from . import api          # imported once progress reporting runs (onnx is slow to import)
    return api.load_model(a.model, a.input_type, a.input_scale)


def _budget(a) -> dict | None:
    b = {}
    for key, attr in (("LUT", "lut_budget"), ("BRAM18", "bram_budget")):
        v = getattr(a, attr, None)
        if v is not None:
            if not 0 < v <= 1:
                raise BnnccError(f"--{attr.replace('_', '-')} must be in (0, 1], got {v}")
            b[key] = v
    return b or None


def _fold(a):
    """Load and fold for the target: every command that builds hardware goes through
    here, so what is simulated is what is compiled."""
    return _model(a).fold(board=a.board, fps=a.fps, clock_mhz=a.clock_mhz,
                          budget=_budget(a), config=a.config)


def _json(obj) -> str:
    import json
    return json.dumps(obj, sort_keys=True)


def cmd_inspect(a) -> int:
    m = _model(a)
    print(_json(m.inspect_dict()) if a.json else "\n".join(m.inspect()))
    return 0


def cmd_run(a) -> int:
    acc = _fold(a)
    y = acc.predict(_input(acc, a.input), a.engine)
    _save_npy(a.output, y)
    return 0


def _input(acc, path: str) -> np.ndarray:
    from . import api
    return api.input_array(acc.design, _load_npy(path), path)


def cmd_estimate(a) -> int:
    acc = _fold(a)
    est = acc.estimate()
    if a.json:
        print(_json(est))
    else:
        from .estimate import table
        print(table(est))
    return 0


def cmd_compile(a) -> int:
    acc = _fold(a)
    out = acc.write(a.output, force=a.force)
    print(f"wrote {out}/: hls/, rtl/, report.json, report.md, README.md")
    return 0


def cmd_cosim(a) -> int:
    from .sim.cosim import summary
    levels = [lv.strip() for lv in a.levels.split(",") if lv.strip()]
    acc = _fold(a)
    x = _input(acc, a.input)
    labels = _load_npy(a.labels) if a.labels else None
    expect = _load_npy(a.expect) if a.expect else None
    rep = acc.cosim(x, levels, labels=labels, expect=expect, backpressure=a.backpressure,
                    seed=a.seed)
    print(_json(rep) if a.json else summary(rep))
    if not rep["exact"]:
        m = rep["first_mismatch"]
        print(f"bnncc: mismatch: {m['levels'][1]} differs from {m['levels'][0]} at layer "
              f"{m['layer']}, frame {m['frame']}, element {m['index']}: "
              f"{m['values'][1]} != {m['values'][0]}", file=sys.stderr)
    elif rep.get("agrees") is False:
        worst = min(rep["agreement"], key=rep["agreement"].get)
        print(f"bnncc: mismatch: top-1 of {worst} agrees with {rep['reference']} on "
              f"{rep['agreement'][worst]:.4f} of the frames", file=sys.stderr)
    return 0 if rep["exact"] and rep.get("agrees", True) else 1


def cmd_boards(a) -> int:
    from .boards import RESOURCES, list_boards
    boards = list_boards()
    if a.json:
        print(_json([{"key": b.key, "name": b.name, "part": b.part, "family": b.family,
                      "clock_mhz": b.clock_mhz, "capacity": b.capacity()} for b in boards]))
        return 0
    print(f"{'board':<12} {'part':<22} {'MHz':>5} " + " ".join(f"{r:>8}" for r in RESOURCES))
    for b in boards:
        print(f"{b.key:<12} {b.part:<22} {b.clock_mhz:>5g} " +
              " ".join(f"{v:>8}" for v in b.capacity().values()))
    return 0


def cmd_cache(a) -> int:
    from .resources import cache_clean, cache_info
    if a.action == "clean":
        freed = cache_clean()
        print(f"removed {freed / 1e6:.1f} MB from {cache_info()['path']}")
        return 0
    info = cache_info()
    if a.json:
        print(_json(info))
        return 0
    print(f"cache: {info['path']} ({info['bytes'] / 1e6:.1f} MB)")
    for k, p in sorted(info["parts"].items()):
        print(f"  {k:<8} {p['entries']:>6} entries {p['bytes'] / 1e6:>9.1f} MB")
    return 0


EPILOG = """exit codes: 0 success; 1 verification mismatch; 2 bad or unsupported input
(one line on stderr naming the file, node and op). Progress of long steps goes to
stderr: a bar on a terminal, plain lines every few seconds otherwise (-q: none)."""


def parser() -> argparse.ArgumentParser:
    from . import __doc__ as about
    p = argparse.ArgumentParser(prog="bnncc", description=about.strip(),
                                epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"bnncc {__version__}")
    _verbosity(p)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    s = _cmd(sub, "inspect", "print the lowered IR, one line per layer", cmd_inspect)
    s.add_argument("model", help="ONNX / QONNX / FINN-ONNX model file")
    _input_args(s)
    s.add_argument("--json", action="store_true", help="print the IR as JSON")

    s = _cmd(sub, "run", "run a batch through the folded design and write its outputs",
             cmd_run)
    s.add_argument("model", help="ONNX / QONNX / FINN-ONNX model file")
    s.add_argument("-i", "--input", required=True, metavar="IN.npy",
                   help="float32 .npy, the model's input shape with a leading batch axis")
    s.add_argument("-o", "--output", required=True, metavar="OUT.npy",
                   help=".npy to write the model's outputs to")
    s.add_argument("--engine", default="golden", choices=["golden", "csim", "rtlsim"],
                   help="golden integer model (default), g++ C simulation or Verilator "
                        "RTL simulation")
    _board_args(s)

    s = _cmd(sub, "compile", "write an HLS project, RTL and a report to DIR", cmd_compile)
    s.add_argument("model", help="ONNX / QONNX / FINN-ONNX model file")
    s.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="output directory (created; one bnncc made earlier is replaced)")
    _board_args(s)
    s.add_argument("--force", action="store_true",
                   help="replace DIR even if bnncc did not create it")

    s = _cmd(sub, "cosim", "verify the design against the original model, the labels "
             "and itself: onnx, golden, C and RTL simulation", cmd_cosim)
    s.add_argument("model", help="ONNX / QONNX / FINN-ONNX model file")
    s.add_argument("-i", "--input", required=True, metavar="IN.npy",
                   help="float32 .npy, the model's input shape with a leading batch axis")
    s.add_argument("--levels", default="golden,csim", metavar="L1,L2,...",
                   help="levels to run, from onnx (the original model in onnxruntime or "
                        "the qonnx executor), golden, csim, rtlsim (default golden,csim); "
                        "the integer levels must agree exactly")
    s.add_argument("--labels", default=None, metavar="LABELS.npy",
                   help="one class index per frame: report top-1 accuracy per level")
    s.add_argument("--expect", default=None, metavar="OUT.npy",
                   help="your reference outputs (e.g. from PyTorch): report top-1 agreement "
                        "and the largest absolute error of every level against them "
                        "(default reference: the onnx level)")
    s.add_argument("--backpressure", type=float, default=0.0, metavar="P",
                   help="probability of output backpressure and input gaps per cycle "
                        "(rtlsim), in [0, 1)")
    s.add_argument("--seed", type=int, default=0, help="seed of the backpressure pattern")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    _board_args(s)

    s = _cmd(sub, "estimate", "frames/s, latency and resources of the folded design",
             cmd_estimate)
    s.add_argument("model", help="ONNX / QONNX / FINN-ONNX model file")
    _board_args(s)
    s.add_argument("--json", action="store_true", help="print the estimate as JSON")

    s = _cmd(sub, "boards", "list the known boards", cmd_boards)
    s.add_argument("--json", action="store_true", help="print the boards as JSON")

    s = _cmd(sub, "cache", "show or clean the build cache (C/RTL simulators, Yosys "
             "results)", cmd_cache)
    s.add_argument("action", nargs="?", default="info", choices=["info", "clean"],
                   help="info (default): where it is and its size; clean: remove it")
    s.add_argument("--json", action="store_true", help="print the info as JSON")
    return p


def _verbosity(p, top: bool = True) -> None:
    """-v / -q, before or after the command name (after it, the defaults are suppressed
    so they do not undo a flag given before it)."""
    d = {} if top else {"default": argparse.SUPPRESS}
    g = p.add_mutually_exclusive_group()
    g.add_argument("-v", "--verbose", action="count", help="more detail on stderr "
                   "(tool steps and timings)", **({"default": 0} if top else d))
    g.add_argument("-q", "--quiet", action="store_true", help="no progress output, "
                   "only errors", **({"default": False} if top else d))


def _cmd(sub, name: str, help: str, fn):
    s = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                       epilog=EPILOG)
    _verbosity(s, top=False)
    s.set_defaults(fn=fn)
    return s


def _input_args(s) -> None:
    s.add_argument("--input-type", default=None, metavar="T",
                   help="integer type of the raw model input when the model has no input "
                        "quantizer (BIPOLAR, BINARY, INTn, UINTn); overrides the model's "
                        "finn_datatype annotation")
    s.add_argument("--input-scale", type=_scale, default=1.0, metavar="S",
                   help="real input = S * integer (e.g. 1/255, 2^-7); default 1")


def _board_args(s) -> None:
    _input_args(s)
    s.add_argument("--board", default="pynq-z2",
                   help="board name (see `bnncc boards`) or a board .toml file; "
                        "default pynq-z2")
    s.add_argument("--clock-mhz", type=float, default=None, metavar="F",
                   help="clock frequency (default: the board's)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--fps", type=float, default=None,
                   help="the cheapest design reaching this many frames per second")
    g.add_argument("--max-fps", action="store_true",
                   help="the fastest design within the budget (the default)")
    s.add_argument("--lut-budget", type=float, default=None, metavar="F",
                   help="fraction of the board's LUTs the design may use (default 0.7)")
    s.add_argument("--bram-budget", type=float, default=None, metavar="F",
                   help="fraction of the board's BRAM18 the design may use (default 0.8)")
    s.add_argument("--config", default=None, metavar="JSON",
                   help="per-layer folding pins, a JSON file: "
                        "{\"layers\": {\"mvau_1\": {\"PE\": 8, \"SIMD\": 16}}}")


def _ui(a) -> int:
    """Run the command with logging and progress set up from -v / -q and the terminal."""
    import logging

    from . import progress
    verbose = getattr(a, "verbose", 0) or 0
    quiet = getattr(a, "quiet", False)
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    log = logging.getLogger("bnncc")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("bnncc: %(message)s"))
    old = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    kind = "none" if quiet else ("bar" if sys.stderr.isatty() else "log")
    try:
        with progress.reporting(kind, sys.stderr, base=a.cmd):
            return a.fn(a)
    finally:
        log.removeHandler(handler)
        log.setLevel(old[0])
        log.propagate = old[1]


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return _ui(args)
    except BnnccError as e:
        print(f"bnncc: error: {e.line()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("bnncc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
