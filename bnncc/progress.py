"""Signs of life for long steps (tool builds, simulations, synthesis, folding searches).

Every long step runs inside `task(stage, total)`; what the user sees depends on where
the output goes:
- a terminal (the CLI, stderr a tty): a `rich` progress bar, one line per stage;
- anything else (a log file, CI, a notebook with logging configured): plain lines on the
  `bnncc` logger, one whenever `INTERVAL` seconds have passed since the last while a
  step runs (a heartbeat thread, so a step that reports nothing, such as a Verilator
  build, still shows it is alive), and a closing line for a step that printed one.
A command that ends within `INTERVAL` seconds prints nothing.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from contextlib import contextmanager

log = logging.getLogger("bnncc")
# 4 s: a line at least every 10 s even when a loaded machine delays the heartbeat thread
INTERVAL = float(os.environ.get("BNNCC_PROGRESS_INTERVAL", "4"))


class LogReporter:
    """Plain periodic lines on the logger; thread-safe."""

    def __init__(self, interval: float | None = None, base: str | None = None):
        self.interval = INTERVAL if interval is None else interval
        self._lock = threading.Lock()
        self._base = base                # shown between steps (a command's own work)
        self._stage, self._done, self._total = base, 0, 0
        self._t0 = self._began = time.monotonic()
        self._last = self._began         # the interval runs from the reporter's start
        self._said = False
        self._stop = threading.Event()
        self._thread = None

    def _line(self, final: bool = False) -> str:
        if self._stage == self._base:
            return f"{self._base}: {time.monotonic() - self._began:.0f} s"
        el = time.monotonic() - self._t0
        what = f"{self._done}/{self._total} frames, " if self._total else ""
        return f"{self._stage}: {'done, ' if final else ''}{what}{el:.0f} s"

    def _beat(self) -> None:
        while not self._stop.wait(min(1.0, self.interval)):
            with self._lock:
                now = time.monotonic()
                if self._stage is not None and now - self._last >= self.interval:
                    self._last = now
                    self._said = True
                    log.info(self._line())

    def __call__(self, stage: str, done: int, total: int) -> None:
        with self._lock:
            if stage != self._stage:
                self._finish_locked()
                self._stage, self._t0 = stage, time.monotonic()
                self._said = False       # _last is kept across stages, so a row of short
                                         # steps still shows signs of life
            self._done, self._total = done, total
        self._start()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()

    def _finish_locked(self) -> None:
        if self._stage is not None and self._stage != self._base and self._said:
            log.info(self._line(final=True))
            self._last = time.monotonic()
        if self._stage != self._base:
            self._stage, self._done, self._total = self._base, 0, 0
            self._t0 = time.monotonic()

    def finish(self) -> None:
        with self._lock:
            self._finish_locked()

    def close(self) -> None:
        self.finish()
        self._base = self._stage = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class BarReporter:
    """A rich progress bar on a terminal: one bar per stage, kept when it ends."""

    def __init__(self, stream=None):
        from rich.console import Console
        from rich.progress import (BarColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn)
        self._p = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                           BarColumn(complete_style="cyan", finished_style="green"),
                           TextColumn("{task.fields[count]}"), TimeElapsedColumn(),
                           console=Console(file=stream or sys.stderr), transient=False,
                           redirect_stdout=False, redirect_stderr=False)
        self._p.start()
        self._task, self._stage = None, None
        self._lock = threading.Lock()

    def __call__(self, stage: str, done: int, total: int) -> None:
        count = f"{done}/{total} frames" if total else ""
        with self._lock:
            if stage != self._stage:
                self._finish_locked()
                self._stage = stage
                self._task = self._p.add_task(stage, total=total or None, count=count)
            self._p.update(self._task, completed=done, total=total or None, count=count)

    def _finish_locked(self) -> None:
        if self._task is not None:
            t = next(t for t in self._p.tasks if t.id == self._task)
            total = t.total or 1
            self._p.update(self._task, total=total, completed=total,
                           count=f"{int(total)}/{int(total)} frames" if t.total else "")
            self._p.stop_task(self._task)
        self._task, self._stage = None, None

    def finish(self) -> None:
        with self._lock:
            self._finish_locked()

    def close(self) -> None:
        self.finish()
        self._p.stop()


_active: list = []


def reporter():
    """The reporter long steps talk to (the innermost `reporting`, else a logging one)."""
    if not _active:
        _active.append(LogReporter())
    return _active[-1]


@contextmanager
def reporting(kind: str = "log", stream=None, base: str | None = None):
    """Route progress for the duration: kind 'bar' (a terminal), 'log' or 'none'.
    `base` names the work between steps in log lines (the CLI passes the command)."""
    r = None
    if kind == "bar":
        try:
            r = BarReporter(stream)
        except ImportError:          # rich is optional: fall back to plain lines
            pass
    elif kind == "none":
        r = _Silent()
    if r is None:
        r = LogReporter(base=base)
        if base is not None:
            r._start()
    _active.append(r)
    try:
        yield r
    finally:
        _active.remove(r)
        r.close()


class _Silent:
    def __call__(self, stage, done, total):
        pass

    def finish(self):
        pass

    def close(self):
        pass


@contextmanager
def task(stage: str, total: int = 0):
    """A long step; yields update(done) for steps that count frames."""
    r = reporter()
    t0 = time.monotonic()
    r(stage, 0, total)
    log.debug("%s: started", stage)
    try:
        yield lambda done, _r=r: _r(stage, done, total)
        r(stage, total, total)
    finally:
        r.finish()
        log.debug("%s: %.2f s", stage, time.monotonic() - t0)


def callback(prefix: str, first: str = "preparing"):
    """A progress(stage, done, total) callback for code that reports its own stages
    (rtlsim: 'compiling with Verilator', then 'simulating'); the `first` stage runs
    until the code reports one."""
    r = reporter()
    r(f"{prefix}: {first}", 0, 0)
    return lambda stage, done, total: r(f"{prefix}: {stage}", done, total)
