"""Where bnncc's embarrassingly parallel work runs (sweeps, calibration, many cosims).

`executor(scheduler)` is a context manager yielding an object with one method,
`map(fn, items, **shared) -> [fn(item, **shared) for item in items]` (results in item
order), on one of:

- a Dask cluster at `scheduler` (an address such as tcp://host:8786, or the
  BNNCC_SCHEDULER environment variable): work spreads over every machine it has;
- `"local"` (the default when dask.distributed is installed): a `LocalCluster` of
  worker processes on this machine;
- `"none"` (or no dask installed): a loop in this process.

`fn` must be a module-level function (workers import it by name) that returns plain
data. `shared` values (e.g. model bytes) go to each worker once, not once per task.
Models are loaded once per worker process: `cached_design(ref, data)` keeps the lowered
IR keyed by the file's content hash and hands out copies (folding mutates a design).

For a calibration or any other sweep: write the per-item work as a module-level
function of one picklable item, then `with executor(addr) as ex: rows = ex.map(f, items)`.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import BnnccError

SCHEDULER_ENV = "BNNCC_SCHEDULER"
LOCAL, IN_PROCESS = "local", "none"


def have_dask() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


class InProcess:
    """The fallback: every task in this process, in order."""
    kind = "in-process"

    def map(self, fn, items, **shared):
        return [fn(x, **shared) for x in items]


class DaskExecutor:
    """Tasks as Dask futures; `shared` values are scattered to every worker once."""
    kind = "dask"

    def __init__(self, client):
        self.client = client
        self._shared: dict[int, tuple] = {}      # id(value) -> (value, future)

    def _share(self, value):
        """One copy of `value` on every worker for this executor's life (a random key:
        keys named after the data would be released and re-used between calls)."""
        if id(value) not in self._shared:
            fut, = self.client.scatter([value], broadcast=True, hash=False)
            self._shared[id(value)] = (value, fut)
        return self._shared[id(value)][1]

    def map(self, fn, items, **shared):
        items = list(items)
        if not items:
            return []
        kw = {k: self._share(v) for k, v in shared.items()}
        futures = self.client.map(fn, items, pure=False, **kw)
        return self.client.gather(futures)


@contextlib.contextmanager
def executor(scheduler: str | None = None, workers: int | None = None):
    """The executor for `scheduler` (see the module doc); closes what it started."""
    addr = scheduler or os.environ.get(SCHEDULER_ENV) or (LOCAL if have_dask() else IN_PROCESS)
    if addr.lower() in (IN_PROCESS, "inprocess", "serial"):
        yield InProcess()
        return
    if not have_dask():
        raise BnnccError(f"--scheduler {addr} needs dask.distributed: "
                         "pip install 'bnncc[cluster]' (or use --scheduler none)")
    from distributed import Client, LocalCluster
    if addr.lower() == LOCAL:
        n = workers or os.cpu_count() or 1
        with warnings.catch_warnings():   # its HTTP server moves off a busy port 8787: fine
            warnings.filterwarnings("ignore", message="Port .* is already in use")
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=None, scheduler_port=0,
                                   silence_logs=logging.ERROR)
        try:
            with Client(cluster) as client:
                yield DaskExecutor(client)
        finally:
            cluster.close()
        return
    try:
        client = Client(addr, timeout=30)
    except (OSError, TimeoutError, ValueError) as e:
        raise BnnccError(f"cannot reach the Dask scheduler at {addr}: "
                         f"{type(e).__name__}: {e}") from None
    with client:
        yield DaskExecutor(client)


# --------------------------------------------------------------------------- models on workers
@dataclass(frozen=True)
class ModelRef:
    """A model file as tasks name it: path, content hash and the input declaration."""
    path: str
    sha256: str
    input_type: str | None = None
    input_scale: float = 1.0


def model_ref(path: str, input_type: str | None = None, input_scale: float = 1.0) -> ModelRef:
    return ModelRef(path, hashlib.sha256(read_model(path)).hexdigest(), input_type, input_scale)


def read_model(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise BnnccError(f"cannot read model: {e.strerror or e}", file=path) from None


_CACHE: dict[tuple, object] = {}
KEEP = 16            # models (and, in bnncc.sweep, model x board workspaces) a worker keeps


def remember(cache: dict, key, value, keep: int = KEEP):
    """Store value, dropping the oldest entries beyond `keep` (a long-lived worker serves
    many jobs)."""
    cache[key] = value
    while len(cache) > keep:
        cache.pop(next(iter(cache)))
    return value
_LOCK = threading.Lock()


def cached_design(ref: ModelRef, data: bytes | None = None):
    """A private copy of the model's lowered IR, loaded at most once per process.

    Loads from `ref.path` when this process sees the same file (external data beside it
    keeps working), else from `data`, the file's bytes shipped by the client."""
    from . import api
    key = (ref.sha256, ref.input_type, ref.input_scale)
    with _LOCK:
        if key not in _CACHE:
            p = Path(ref.path)
            try:
                same = p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() == ref.sha256
            except OSError:
                same = False
            if same:
                design = api.load(ref.path, ref.input_type, ref.input_scale)
            elif data is not None:
                with tempfile.TemporaryDirectory(prefix="bnncc-model-") as tmp:
                    local = Path(tmp) / p.name
                    local.write_bytes(data)
                    design = api.load(str(local), ref.input_type, ref.input_scale)
                design.source = ref.path
            else:
                raise BnnccError("this worker cannot read the model (or sees a different "
                                 "file there)", file=ref.path)
            remember(_CACHE, key, design)
        return copy.deepcopy(_CACHE[key])
