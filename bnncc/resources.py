"""Where the templates, board files and example models are, in a source checkout
(repo/templates, repo/boards) or in an installed wheel (bnncc/_templates, bnncc/_boards)."""
from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _find(installed: str, checkout: str) -> Path:
    for cand in (_HERE / installed, _HERE.parent / checkout):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"bnncc data folder '{checkout}' is missing from the installation")


def templates_dir() -> Path:
    return _find("_templates", "templates")


def boards_dir() -> Path:
    return _find("_boards", "boards")


def cache_root() -> Path:
    """bnncc's build cache: $BNNCC_CACHE, else the platform's user cache directory
    (platformdirs: $XDG_CACHE_HOME/bnncc or ~/.cache/bnncc on Linux,
    ~/Library/Caches/bnncc on macOS)."""
    import os
    env = os.environ.get("BNNCC_CACHE")
    if env:
        return Path(env)
    try:
        from platformdirs import user_cache_dir
        return Path(user_cache_dir("bnncc", appauthor=False))
    except ImportError:        # platformdirs is a dependency; this only guards odd installs
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bnncc"


def cache_dir(sub: str = "") -> Path:
    """A folder of the build cache (created), entries keyed by content hash: compiled
    kernels, C simulation and Verilator binaries, Yosys results, tool-slot locks."""
    d = cache_root() / sub
    d.mkdir(parents=True, exist_ok=True)
    return d


def examples_dir() -> Path:
    return _HERE / "examples"


# what bnncc writes into the cache root: only these are counted and cleaned, so a
# $BNNCC_CACHE pointing at a folder that holds other things loses nothing else
CACHE_DIRS = ("csim", "rtlsim", "yosys", "locks")
CACHE_FILES = ("popcount-*.so",)


def _cache_entries(root: Path) -> list[Path]:
    out = [root / d for d in CACHE_DIRS if (root / d).is_dir()]
    for pat in CACHE_FILES:
        out += sorted(root.glob(pat))
    return out


def _size(p: Path) -> int:
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink())


def cache_info() -> dict:
    """Where the cache is and how much each part holds."""
    root = cache_root()
    parts = {}
    for e in _cache_entries(root) if root.is_dir() else []:
        key = e.name if e.is_dir() else "kernels"
        n = sum(1 for _ in e.iterdir()) if e.is_dir() else 1
        p = parts.setdefault(key, {"entries": 0, "bytes": 0})
        p["entries"] += n
        p["bytes"] += _size(e)
    return {"path": str(root), "parts": parts,
            "bytes": sum(p["bytes"] for p in parts.values())}


def cache_clean() -> int:
    """Remove everything bnncc cached; returns the bytes freed."""
    import shutil
    root = cache_root()
    freed = 0
    for e in _cache_entries(root) if root.is_dir() else []:
        freed += _size(e)
        shutil.rmtree(e, ignore_errors=True) if e.is_dir() else e.unlink(missing_ok=True)
    return freed
