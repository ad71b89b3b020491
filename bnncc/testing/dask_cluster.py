"""A real Dask cluster on localhost for tests and benchmarks: one `dask scheduler` and
n single-thread `dask worker` processes, on free ports (port 0, read back from the
scheduler file), stopped again on exit. Needs dask.distributed."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path


def worker_env(repo: Path | None = None) -> dict:
    """This environment, with `repo` first on PYTHONPATH so workers import the same bnncc."""
    env = dict(os.environ)
    if repo is not None:
        rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([str(repo)] + rest)
    env.pop("BNNCC_SCHEDULER", None)
    return env


@contextlib.contextmanager
def dask_processes(workdir: Path, n_workers: int = 2, repo: Path | None = None,
                   timeout: float = 300.0):
    """Yields the scheduler's tcp address once all n workers have joined."""
    from distributed import Client
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sfile = workdir / "scheduler.json"
    sfile.unlink(missing_ok=True)
    procs: list[subprocess.Popen] = []
    env = worker_env(repo)

    def start(module: str, *args: str, log: str) -> subprocess.Popen:
        with open(workdir / log, "wb") as f:
            p = subprocess.Popen([sys.executable, "-m", f"distributed.cli.{module}", *args],
                                 env=env, cwd=workdir, stdout=f, stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    try:
        sched = start("dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                      "--no-dashboard", "--scheduler-file", str(sfile), log="scheduler.log")
        deadline = time.monotonic() + timeout
        while not sfile.exists():
            if sched.poll() is not None:
                raise RuntimeError("dask scheduler exited: "
                                   + (workdir / "scheduler.log").read_text()[-2000:])
            if time.monotonic() > deadline:
                raise TimeoutError(f"dask scheduler did not start in {timeout:.0f} s")
            time.sleep(0.2)
        for i in range(n_workers):
            start("dask_worker", "--scheduler-file", str(sfile), "--nthreads", "1",
                  "--no-nanny", "--no-dashboard", "--name", f"w{i}", log=f"worker{i}.log")
        with Client(scheduler_file=str(sfile), timeout=timeout) as c:
            c.wait_for_workers(n_workers, timeout=timeout)
            addr = c.scheduler.address
        yield addr
    finally:                      # workers first, while their scheduler still answers
        for group in (procs[1:], procs[:1]):
            for p in group:
                p.terminate()
            for p in group:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=30)
