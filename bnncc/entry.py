"""The `bnncc` executable: signal handling is in place before the heavy imports.

Importing NumPy, ONNX and onnxruntime takes most of a second. A Ctrl-C (or SIGTERM)
then must still end with exit 130 (143) and one line. Raising an exception while a C
extension initializes can crash the interpreter, so a signal that arrives inside an
import exits at once (nothing has been written yet: output directories are written only
after every import); anywhere else it raises, so that cleanup handlers run (a compile
removes its temporary directory).
"""
import os
import signal
import sys


class Terminated(BaseException):
    """SIGTERM, raised where the process is so that cleanup handlers run."""


def _importing(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _handler(code: int, line: str, exc):
    def on_signal(signum, frame):
        if _importing(frame):
            _say(line)
            os._exit(code)
        raise exc()
    return on_signal


def install_handlers() -> None:
    signal.signal(signal.SIGINT, _handler(130, "bnncc: interrupted", KeyboardInterrupt))
    signal.signal(signal.SIGTERM, _handler(143, "bnncc: terminated", Terminated))


def main(argv=None) -> int:
    install_handlers()
    try:
        from .cli import main as cli_main
        return cli_main(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        _say("bnncc: interrupted")
        return 130
    except Terminated:
        _say("bnncc: terminated")
        return 143


def _say(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, KeyboardInterrupt, Terminated):
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
