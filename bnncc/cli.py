"""Command line: bnncc inspect | run (more commands as backends land).

Exit codes: 0 success, 2 bad or unsupported input (one line on stderr naming file, node
and op), 1 verification mismatch. No traceback ever reaches the user for bad input.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from . import __version__, api
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


def cmd_inspect(a) -> int:
    design = api.load(a.model)
    print("\n".join(api.inspect_lines(design)))
    return 0


def cmd_run(a) -> int:
    design = api.load(a.model)
    x = api.input_array(design, _load_npy(a.input), a.input)
    y = api.run(design, x, a.engine)
    _save_npy(a.output, y)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bnncc", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"bnncc {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("inspect", help="print the lowered IR, one line per layer")
    s.add_argument("model")
    s.set_defaults(fn=cmd_inspect)
    s = sub.add_parser("run", help="run a batch through the model and write its outputs")
    s.add_argument("model")
    s.add_argument("-i", "--input", required=True, help="float32 .npy, leading batch axis")
    s.add_argument("-o", "--output", required=True, help=".npy to write")
    s.add_argument("--engine", default="golden", choices=["golden"])
    s.set_defaults(fn=cmd_run)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except BnnccError as e:
        print(f"bnncc: error: {e.line()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("bnncc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
