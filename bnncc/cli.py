"""Command line: bnncc inspect | run | compile | cosim | estimate | sweep | boards | cache.

Every command is a thin layer over bnncc.api (the same calls a Python user makes).

Exit codes: 0 success, 2 bad or unsupported input (one line on stderr naming file, node
and op), 1 verification mismatch, 3 internal error, 130 interrupted. No traceback ever
reaches the user unless asked for with --debug.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings

import numpy as np

from . import __version__
from .entry import Terminated, install_handlers
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
    except BaseException as e:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise BnnccError(f"cannot write output: {e.strerror}", file=path) from None
        raise


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
    return api.load_model(a.model, a.input_type, a.input_scale, getattr(a, "prune", "auto"),
                          getattr(a, "arithmetic", "float32") == "exact")


def _not_an_input(out: str, *inputs: str) -> None:
    """`-o` must not name the model or the batch it is computed from."""
    for p in inputs:
        if os.path.exists(p) and os.path.exists(out) and os.path.samefile(out, p):
            raise BnnccError("the output file is one of the inputs; refusing to overwrite it",
                             file=out)


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
    _not_an_input(a.output, a.model, a.input)
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
    out = acc.write(a.output, force=a.force, keep_others=a.keep_others)
    print(f"wrote {out}/: hls/, rtl/, report.json, report.md, README.md")
    return 0


def cmd_cosim(a) -> int:
    from .sim.cosim import summary
    levels = [lv.strip() for lv in a.levels.split(",") if lv.strip()]
    sharded = a.shards > 1 or bool(a.scheduler)
    if a.shards < 1:
        raise BnnccError(f"--shards must be at least 1, got {a.shards}")
    if sharded and ("onnx" in levels or a.labels or a.expect):
        raise BnnccError("--shards / --scheduler run the integer levels (golden, csim, "
                         "rtlsim) only, without --labels or --expect")
    acc = _fold(a)
    x = _input(acc, a.input)
    labels = _load_npy(a.labels) if a.labels else None
    expect = _load_npy(a.expect) if a.expect else None
    if sharded:
        from .api import check_cosim
        check_cosim(levels, a.backpressure)
        rep = _cosim_parallel(a, acc.board, acc.clock_mhz, x, levels)
    else:
        rep = acc.cosim(x, levels, labels=labels, expect=expect,
                        backpressure=a.backpressure, seed=a.seed)
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


def _cosim_parallel(a, board, clock, x, levels) -> dict:
    """cosim of --shards pieces of the batch on the executor of --scheduler."""
    from .executor import executor, model_ref, read_model
    from .folding import load_config
    from .sim.shards import CosimJob, run
    ref = model_ref(a.model, a.input_type, a.input_scale)
    job = CosimJob(ref, board, clock, tuple(levels), x, fps=a.fps, budget=_budget(a),
                   config=load_config(a.config) or None, backpressure=a.backpressure,
                   seed=a.seed)
    with executor(a.scheduler) as ex:
        return run([job], ex, a.shards, {ref.sha256: read_model(a.model)})[0]


def _list(text: str | None, kind=str) -> list | None:
    if text is None:
        return None
    try:
        return [kind(t.strip()) for t in text.split(",") if t.strip()]
    except ValueError:
        raise BnnccError(f"not a comma-separated list of numbers: {text!r}") from None


def _budget_list(text: str | None) -> dict | None:
    """LUT=0.7,BRAM18=0.8 -> {"LUT": 0.7, "BRAM18": 0.8}."""
    if not text:
        return None
    out = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        try:
            out[k.strip().upper()] = float(v)
        except ValueError:
            raise BnnccError(f"--budget takes RES=FRACTION,... (e.g. LUT=0.7), got {text!r}") from None
        if not out[k.strip().upper()] > 0:
            raise BnnccError(f"--budget {k.strip()} must be positive")
    return out


def cmd_sweep(a) -> int:
    import json
    from .boards import get_board, list_boards
    from .executor import executor, model_ref, read_model
    from .folding import budget_of
    from .sweep import markdown, sweep, write
    names = _list(a.boards)
    boards = [get_board(n) for n in names] if names else list_boards()
    clocks = _list(a.clock_mhz, float)
    if clocks is not None and (not clocks or min(clocks) <= 0):
        raise BnnccError(f"--clock-mhz needs positive clocks, got {a.clock_mhz}")
    budget = _budget_list(a.budget)
    budget_of(boards[0], budget)                      # unknown resources fail here
    if a.points < 2:
        raise BnnccError(f"--points must be at least 2, got {a.points}")
    if a.workers is not None and a.workers < 1:
        raise BnnccError(f"--workers must be at least 1, got {a.workers}")
    refs = [model_ref(m, a.input_type, a.input_scale) for m in a.models]
    data = {r.sha256: read_model(r.path) for r in refs}
    with executor(a.scheduler, a.workers) as ex:
        res = sweep(refs, boards, clocks, a.points, budget, ex, data if ex.kind == "dask" else None)
    if a.output:
        files = write(res, a.output)
    if a.json:
        print(json.dumps(res, sort_keys=True))
    elif a.output:
        n = sum(len(r["pareto"]) for r in res["results"])
        print(f"wrote {a.output}/ ({len(files)} files): sweep.json, sweep.md, plots, configs/; "
              f"{len(res['results'])} fronts, {n} points")
    else:
        print(markdown(res))
    return 0


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
    p = _Parser(prog="bnncc", description=about.strip(), epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"bnncc {__version__}")
    p.add_argument("--debug", action="store_true",
                   help="print the traceback of an internal error (also BNNCC_DEBUG=1)")
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
                   help="write into DIR even if bnncc did not create it (files bnncc did "
                        "not write are never deleted)")
    s.add_argument("--keep-others", action="store_true",
                   help="DIR holds files bnncc did not write: keep them as they are")

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
    s.add_argument("--shards", type=int, default=1,
                   help="cut the batch into N pieces run in parallel (on --scheduler; "
                        "integer levels only)")
    s.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask scheduler for the shards ('local', 'none', tcp://...; "
                        "also $BNNCC_SCHEDULER)")
    _board_args(s)

    s = _cmd(sub, "estimate", "frames/s, latency and resources of the folded design",
             cmd_estimate)
    s.add_argument("model", help="ONNX / QONNX / FINN-ONNX model file")
    _board_args(s)
    s.add_argument("--json", action="store_true", help="print the estimate as JSON")

    s = _cmd(sub, "sweep", "the fps-versus-resources Pareto front per model and board",
             cmd_sweep)
    s.add_argument("models", nargs="+", metavar="MODEL", help="ONNX model files")
    s.add_argument("--boards", default=None, metavar="B1,B2",
                   help="board names or .toml files (default: every known board)")
    s.add_argument("--clock-mhz", default=None, metavar="F1,F2",
                   help="clocks to sweep (default: each board's own)")
    s.add_argument("--points", type=int, default=24,
                   help="target intervals per model x board x clock (default 24)")
    s.add_argument("--budget", default=None, metavar="LUT=0.7,BRAM18=0.8",
                   help="fractions of the board a design may use to count as fitting")
    s.add_argument("-o", "--output", default=None, metavar="DIR",
                   help="write sweep.json, sweep.md, a plot per model and configs/ here")
    s.add_argument("--json", action="store_true", help="print the JSON")
    s.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask scheduler (tcp://host:8786; also $BNNCC_SCHEDULER); 'local' "
                        "(default) starts a LocalCluster here, 'none' runs in this process")
    s.add_argument("--workers", type=int, default=None,
                   help="workers of the local cluster (default: one per core)")
    _input_args(s)

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
    s.add_argument("--prune", choices=("auto", "on", "off"), default="auto",
                   help="remove channels that carry no information (constant or unread) "
                        "from the hardware, folding their constants into the readers: "
                        "auto (default) in self-compressing networks (per-channel bit "
                        "widths or all-zero weight channels), on for every network, off")
    s.add_argument("--arithmetic", choices=("float32", "exact"), default="float32",
                   help="how the model's float ops fold into integer thresholds: float32 "
                        "(default) as onnxruntime and qonnx compute them, or exact (real "
                        "arithmetic), for models with arbitrary float scales where float32 "
                        "executors disagree with each other at rounding ties")


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


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error bnncc promises (exit 2) instead of the usage."""

    def error(self, message):
        sys.stderr.write(f"bnncc: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


def _debug_wanted(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("BNNCC_DEBUG", "") not in ("", "0")


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass


def main(argv=None) -> int:
    """Exit codes: 0 success, 1 verification mismatch, 2 bad or unsupported input (or a
    file that cannot be written), 3 internal error, 130 interrupted, 141 broken pipe."""
    if argv is None:   # a real process (the console script): SIGTERM cleans up too
        install_handlers()
    argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    debug = _debug_wanted(argv)
    argv = [a for a in argv if a != "--debug"]
    args = None
    try:
        try:
            args = parser().parse_args(argv)
        except SystemExit as e:   # --help, --version, or a usage error already printed
            return e.code if isinstance(e.code, int) else 2
        with warnings.catch_warnings():
            if not debug:   # one line on stderr means no library warnings either
                warnings.simplefilter("ignore")
            rc = _ui(args)
        sys.stdout.flush()
        return rc
    except BnnccError as e:
        _say(f"bnncc: error: {e.at(file=getattr(args, 'model', None)).line()}")
        return e.exit_code
    except KeyboardInterrupt:
        _say("bnncc: interrupted")
        return 130
    except Terminated:
        _say("bnncc: terminated")
        return 143
    except BrokenPipeError:
        _quiet_stdout()
        _say("bnncc: error: the output pipe was closed before bnncc finished writing")
        return 141
    except OSError as e:
        if e.errno not in _WRITE_ERRNOS:
            return _internal(e, argv, debug)
        where = e.filename or "standard output"
        _say(f"bnncc: error: {where}: cannot write: {e.strerror}")
        _quiet_stdout()
        return 2
    except MemoryError:
        _say("bnncc: error: out of memory (the model or the input batch is too large)")
        return 2
    except Exception as e:
        return _internal(e, argv, debug)


def _internal(e: BaseException, argv: list[str], debug: bool) -> int:
    """An error bnncc did not foresee is a bug: one line, the traceback on request."""
    if debug:
        import traceback
        traceback.print_exception(e, file=sys.stderr)
    why = " ".join(str(e).split())[:200]
    hint = "" if debug else "; rerun with --debug (or BNNCC_DEBUG=1) for the traceback"
    _say(f"bnncc: internal error: {type(e).__name__}: {why} (command: bnncc "
         f"{' '.join(argv[:2])}); this is a bug in bnncc, please report it with the model"
         f"{hint}")
    return 3


if __name__ == "__main__":
    sys.exit(main())
