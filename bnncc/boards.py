"""FPGA boards: part, clock and resource capacities, one TOML file per board in boards/.

A user can pass a path to their own file with the same keys instead of a board name.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import BnnccError
from .resources import boards_dir

RESOURCES = ("LUT", "FF", "BRAM18", "URAM", "DSP")
# share of each board resource a design may use unless the user says otherwise
DEFAULT_BUDGET = {"LUT": 0.70, "FF": 0.80, "BRAM18": 0.80, "URAM": 0.80, "DSP": 0.80}


@dataclass(frozen=True)
class Board:
    key: str
    name: str
    part: str
    family: str       # "xc7" or "xcup": what Yosys synth_xilinx calls the family
    clock_mhz: float
    LUT: int
    FF: int
    BRAM18: int
    URAM: int
    DSP: int

    def capacity(self) -> dict:
        return {r: getattr(self, r) for r in RESOURCES}


def _read(path: Path, key: str) -> Board:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise BnnccError(f"cannot read board file: {e}", file=str(path)) from None
    need = ("name", "part", "family", "clock_mhz") + RESOURCES
    missing = [k for k in need if k not in data]
    if missing:
        raise BnnccError(f"board file lacks {', '.join(missing)}", file=str(path))
    try:
        return Board(key, str(data["name"]), str(data["part"]), str(data["family"]),
                     float(data["clock_mhz"]), *(int(data[r]) for r in RESOURCES))
    except (TypeError, ValueError) as e:
        raise BnnccError(f"bad value in board file: {e}", file=str(path)) from None


def list_boards() -> list[Board]:
    return [_read(p, p.stem) for p in sorted(boards_dir().glob("*.toml"))]


def get_board(name_or_path: str) -> Board:
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.is_file():
        return _read(p, p.stem)
    key = name_or_path.lower()
    for b in list_boards():
        if key in (b.key, b.name.lower()):
            return b
    names = ", ".join(b.key for b in list_boards())
    raise BnnccError(f"unknown board '{name_or_path}' (known: {names}; or pass a .toml file)")


def budget_of(board, budget: dict | None = None) -> dict:
    """Absolute budget per resource: fractions (<= 1) of the board, or absolute counts."""
    frac = dict(DEFAULT_BUDGET)
    for k, v in (budget or {}).items():
        k2 = k.upper() if k.upper() in RESOURCES else ("BRAM18" if k.upper() == "BRAM" else None)
        if k2 is None:
            raise BnnccError(f"unknown budget resource '{k}' (use {', '.join(RESOURCES)})")
        frac[k2] = float(v)
    cap = board.capacity()
    return {r: (frac[r] * cap[r] if frac[r] <= 1.0 else frac[r]) for r in RESOURCES}
