"""Shared pieces of the resource models: memory mapping (BRAM18 / URAM / LUTRAM counts as
Yosys `synth_xilinx` maps them), FIFOs, and counting Yosys cells as board resources.

Every layer kind's `resources()` lives in its own module; the coefficients were fitted to
Yosys on the sweep in bnncc/calibrate.py (table in docs/calibration.md).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

RES = ("LUT", "FF", "BRAM18", "URAM", "DSP")
COEFFICIENTS = Path(__file__).resolve().parent / "coefficients.json"


@functools.lru_cache(maxsize=None)
def _coefficients() -> dict:
    return json.loads(COEFFICIENTS.read_text())


# the lists coef() handed out (layer modules keep them as module constants): a refit
# updates them in place, so every model sees the new coefficients without a re-import
_LIVE: dict[tuple[str, str], list] = {}


def coef(key: str) -> tuple[list, list]:
    """(LUT, FF) coefficients of a model, as fitted by bnncc.calibrate.fit on the training
    sweep (held-out errors in docs/calibration.md)."""
    c = _coefficients()[key]
    return tuple(_LIVE.setdefault((key, r), list(c[r])) for r in ("LUT", "FF"))


def reload_coefficients() -> None:
    """Re-read coefficients.json into every list coef() handed out and drop the caches
    of resource figures computed from the old ones."""
    _coefficients.cache_clear()
    _fifo_resources.cache_clear()
    c = _coefficients()
    for (key, r), lst in _LIVE.items():
        if key in c:
            lst[:] = c[key][r]


def write_coefficients(new: dict) -> None:
    old = _coefficients()
    COEFFICIENTS.write_text(json.dumps({**old, **new}, indent=1, sort_keys=True) + "\n")
    reload_coefficients()


def coef_key(layer) -> str:
    """Which coefficient set models a layer (one per RTL template and mode)."""
    k = layer.kind
    if k == "MVAU":
        return "MVAU_BIN" if layer.binary else "MVAU_INT"
    if k == "SlidingWindow":
        return "SWGP" if layer.parallel else "SWG"
    if k == "VVAU":
        return "VVAU"
    return {"Thresholding": "THRESH", "MaxPool": "POOL", "SumPool": "SUMPOOL",
            "AddStreams": "ADD", "Concat": "CONCAT", "Duplicate": "DUP",
            "LabelSelect": "LABEL", "FIFO": "FIFO", "WidthConverter": "DWC"}[k]

# LUTs per LUTRAM / SRL cell (SLICEM LUTs used)
_LUTRAM = {"RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
           "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8,
           "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8, "RAM64X8SW": 8,
           "RAM32X16DR8": 8, "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1}


def res(LUT=0, FF=0, BRAM18=0, URAM=0, DSP=0) -> dict:
    return {"LUT": int(round(LUT)), "FF": int(round(FF)), "BRAM18": int(BRAM18),
            "URAM": int(URAM), "DSP": int(DSP)}


def add(*ds) -> dict:
    out = dict.fromkeys(RES, 0)
    for d in ds:
        for r in RES:
            out[r] += d.get(r, 0)
    return out


def count_cells(cells: dict) -> dict:
    """Yosys `stat -json` num_cells_by_type (xc7 / xcup) -> LUT, FF, BRAM18, URAM, DSP."""
    lut = ff = bram = uram = dsp = 0
    for c, n in cells.items():
        if c.startswith("LUT") or c == "INV":
            lut += n
        elif c in _LUTRAM:
            lut += _LUTRAM[c] * n
        elif c.startswith("FD") or c.startswith("LD"):
            ff += n
        elif c.startswith("RAMB18"):
            bram += n
        elif c.startswith("RAMB36"):
            bram += 2 * n
        elif c.startswith("URAM"):
            uram += n
        elif c.startswith("DSP"):
            dsp += n
    return res(lut, ff, bram, uram, dsp)


@dataclass
class Fifo:
    """bnncc_fifo (templates/rtl/fifo.v.j2) of `depth` words of `w` bits."""
    name: str
    w: int
    depth: int
    kind = "FIFO"

    def resources(self, mem_style=None) -> dict:
        return fifo_resources(self.w, self.depth)

    def features(self, style=None):
        return fifo_features(self.w, self.depth)

    def lut_floor(self, style=None) -> int:
        return fifo_floor(self.w, self.depth)


# ------------------------------------------------------------------ block RAM (Yosys xc7 rules)
# (cost, address bits, widths) of the RAMB18 ("HALF") and RAMB36 ("FULL") modes that a
# read-only memory can use, from Yosys' brams_xc4v.txt (SDP allows the widest port).
_BRAM_MODES = ((129, 14, (1, 2, 4, 9, 18, 36), 1), (257, 15, (1, 2, 4, 9, 18, 36, 72), 2))


def _pow2_floor(w: int) -> int:
    return 1 << (w.bit_length() - 1)


@functools.lru_cache(maxsize=None)
def bram18(width: int, depth: int, rom: bool = True) -> int:
    """BRAM18 equivalents of a width x depth ROM as Yosys memory_libmap maps it: the
    cheapest replication of one RAMB18 / RAMB36 port configuration (a RAMB36 is 2)."""
    if width <= 0 or depth <= 0:
        return 0
    best = None
    for cost, abits, widths, units18 in _BRAM_MODES:
        for w in widths:
            d = (1 << abits) // _pow2_floor(w)
            n = -(-width // w) * -(-depth // d)
            key = (n * cost, n * units18)
            if best is None or key < best:
                best = key
        if rom and depth > 512:
            # a deep ROM: Yosys packs the 512-word address chunks side by side into the
            # widest (parity-inclusive) port and selects the chunk after the read
            w = widths[-1]
            n = -(-(-(-depth // 512) * width) // w)
            key = (n * cost, n * units18)
            if key < best:
                best = key
    return best[1]


def uram(width: int, depth: int) -> int:
    """UltraRAM blocks (72 bits x 4096 words each) of a width x depth memory."""
    if width <= 0 or depth <= 0:
        return 0
    return -(-width // 72) * -(-depth // 4096)


# ------------------------------------------------------------------ LUT RAM (Yosys xc7 rules)
def lutram_sp(width: int, depth: int) -> float:
    """LUTs of a single-port (one address) LUT RAM: RAM32M holds 8 bits x 32,
    RAM64X1S / RAM128X1S / RAM256X1S 1 bit x 64 / 128 / 256 in 1 / 2 / 4 LUTs."""
    if width <= 0 or depth <= 1:
        return 0
    if depth <= 32:
        return 4 * -(-width // 8)
    if depth <= 64:
        return width
    if depth <= 128:
        return 2 * width
    n = -(-depth // 256)
    return width * (4 * n + (n - 1 if n > 1 else 0))


def lutram_sdp(width: int, depth: int) -> float:
    """LUTs of a simple dual-port LUT RAM (write port + asynchronous read port):
    RAM32M 6 bits x 32 or RAM64M 3 bits x 64 in 4 LUTs, RAM128X1D 1 bit x 128 in 4."""
    if width <= 0 or depth <= 0:
        return 0
    if depth <= 32:
        return 4 * -(-width // 6)
    if depth <= 64:
        return 4 * -(-width // 3)
    if depth <= 128:
        return 4 * width
    n = -(-depth // 64)
    return width * (4 * n / 3 + n / 2)


def buffer_lut_floor(shape: tuple[int, int, str]) -> int:
    """The LUT RAM cells of a (width, depth, style) buffer outside block RAM: the physical
    floor of a layer whose buffer may sit in either (windows, reorder buffers)."""
    width, depth, style = shape
    return 0 if style == "block" else int(lutram_sdp(width, depth))


def fifo_bram(w: int, depth: int) -> int:
    """BRAM18 of a FIFO's storage: Yosys picks block RAM when the LUT RAM would cost more
    (its costs: 8 per RAM32M / RAM64M, 129 per RAMB18)."""
    if depth <= 32:
        units = -(-w // 6)
    else:
        units = -(-depth // 64) * -(-w // 3)
    b = bram18(w, depth, rom=False)
    return b if 129 * b < 8 * units else 0


# Yosys keeps a 2-word FIFO of at most this many bits per word in flip-flops (measured:
# 5, 9, 12 bits in FFs; 14, 20, 64 bits in RAM32M)
FF_FIFO_BITS = 12


def fifo_storage(w: int, depth: int) -> tuple[float, int]:
    """(LUTs, FFs) of a bnncc_fifo's storage as Yosys maps it: flip-flops and their read
    mux for a narrow 2-word FIFO, none for block RAM, else LUT RAM (asynchronous read)."""
    if depth <= 2 and w <= FF_FIFO_BITS:        # and a read mux per bit
        return float(w * mux_luts(depth)), w * depth
    if fifo_bram(w, depth):
        return 0.0, 0
    return lutram_sdp(w, depth), 0


def fifo_features(w: int, depth: int) -> tuple[list, list]:
    aw = max(1, (depth - 1).bit_length()) if depth > 1 else 1
    cw = max(1, depth.bit_length())
    blk = fifo_bram(w, depth) > 0
    lut, ff = fifo_storage(w, depth)
    return ([lut, 2 * aw + 2 * cw, w * blk, 1.0], [2 * aw + cw, w * blk, ff])


def fifo_floor(w: int, depth: int) -> int:
    """A FIFO's LUT RAM storage cells (none when in block RAM or flip-flops)."""
    lut, ff = fifo_storage(w, depth)
    return 0 if ff else int(lut)


def fifo_resources(w: int, depth: int) -> dict:
    """bnncc_fifo: LUT RAM (asynchronous read) or, when deep, block RAM storage;
    pointers and count. (The optimizer asks for the same few FIFOs thousands of times.)"""
    return dict(_fifo_resources(int(w), int(depth)))


@functools.lru_cache(maxsize=None)
def _fifo_resources(w: int, depth: int) -> dict:
    fl, ff = fifo_features(w, depth)
    return res(LUT=max(sum(c * f for c, f in zip(FIFO_LUT, fl)), fifo_floor(w, depth)),
               FF=sum(c * f for c, f in zip(FIFO_FF, ff)), BRAM18=fifo_bram(w, depth))


FIFO_LUT, FIFO_FF = coef("FIFO")


def generic_resources(layer) -> dict:
    """A layer kind without its own model: a register and a little logic per lane bit."""
    lanes = getattr(layer, "pe", 1) * max(layer.idt.bits, layer.odt.bits)
    return res(LUT=2 * lanes + 20, FF=2 * lanes + 16)


def mux_luts(n: int) -> int:
    """LUT6 of an n:1 multiplexer of one bit built from LUTs alone: a tree of 4:1 muxes
    (a LUT6 holds 4 data and 2 select inputs)."""
    luts = 0
    while n > 1:
        n = -(-n // 4)
        luts += n
    return luts


def ubits(n: int) -> int:
    """Bits of an unsigned counter holding 0..n."""
    return max(1, int(n).bit_length())


def sbits(lo: int, hi: int) -> int:
    """Bits of a two's complement value holding lo..hi."""
    lo, hi = int(lo), int(hi)
    return max(int(hi).bit_length(), int(-lo - 1).bit_length() if lo < 0 else 0) + 1


def rom_logic_luts(width: int, depth: int) -> float:
    """LUTs of a `width` x `depth` ROM built from logic (rom_style "logic"), random
    contents: one LUT6 per 64 words per bit plus the mux tree above it."""
    if depth <= 1 or width <= 0:
        return 0
    if depth <= 64:
        return width * ROM_COEF["small"]
    n = depth / 64
    return width * ROM_COEF["big"] * n
ROM_COEF = {"small": 1.0, "big": 1.3}
