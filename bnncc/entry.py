"""The `bnncc` executable: signal handling is in place before the heavy imports.

Importing NumPy, ONNX and onnxruntime takes most of a second; a Ctrl-C in that time
must still end with exit 130 and one line, and SIGTERM must let a compile remove its
temporary directory (exit 143).
"""
import signal
import sys


class Terminated(BaseException):
    """SIGTERM, raised where the process is so that cleanup handlers run."""


def _on_term(signum, frame):
    raise Terminated()


def main(argv=None) -> int:
    signal.signal(signal.SIGTERM, _on_term)
    try:
        from .cli import main as cli_main
        return cli_main(argv)
    except KeyboardInterrupt:
        _say("bnncc: interrupted")
        return 130
    except Terminated:
        _say("bnncc: terminated")
        return 143


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, KeyboardInterrupt, Terminated):
        pass


def run() -> None:
    """Console-script and `python -m bnncc` entry: exit with main()'s code."""
    try:
        code = main()
    except KeyboardInterrupt:   # a second Ctrl-C while the first was being reported
        code = 130
    except Terminated:
        code = 143
    sys.exit(code)
