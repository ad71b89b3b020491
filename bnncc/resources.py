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


def cache_dir(sub: str = "") -> Path:
    """bnncc's build cache ($BNNCC_CACHE, default ~/.cache/bnncc), entries keyed by content
    hash: compiled kernels, C simulation and Verilator binaries, Yosys results."""
    import os
    d = Path(os.environ.get("BNNCC_CACHE") or Path.home() / ".cache" / "bnncc") / sub
    d.mkdir(parents=True, exist_ok=True)
    return d


def examples_dir() -> Path:
    return _HERE / "examples"
