"""Carry-save popcount tree of the binary MVAU (templates/rtl/mvau.v.j2).

The XNOR lanes of all PEs are one packed vector in slot-major order (lane s of PE p at
bit s*PE + p), so a tree level is a handful of wide bitwise operations on contiguous
slices: Verilator simulates it word by word (64 lanes per C++ operation) instead of one
operation per adder-tree node, and its C++ stays small. Each level groups the bits of
equal weight ("column" j, weight 2^j) in threes and replaces each triple by a full
adder's sum (column j) and carry (column j + 1): a 3:2 compressor, one LUT deep, no
carry chain. `PER_STAGE` levels share a pipeline register (two levels are two LUT
levels, the depth of one pairwise adder-tree level); when every column holds at most
two bits, one carry-propagate add per PE (a DW-bit adder on the carry chain) gives
the count. Carries into columns >= DW are dropped: the count is at most SIMD < 2^DW,
so they are always zero.

Any shared user (the VVAU) can call plan() and verilog() as they are.
"""
from __future__ import annotations

PER_STAGE = 2


def levels(simd: int, dw: int) -> list[list[int]]:
    """Bits per PE in each column before level 1, after level 1, ... (the last has every
    column <= 2)."""
    cols = [int(simd)]
    out = [cols]
    while max(cols) > 2:
        g = [c // 3 for c in cols]
        new = []
        for j in range(min(len(cols) + 1, dw)):
            own = cols[j] - 2 * g[j] if j < len(cols) else 0     # g sums + the passed bits
            new.append(own + (g[j - 1] if j >= 1 else 0))
        while new and new[-1] == 0:
            new.pop()
        cols = new
        out.append(cols)
    return out


def full_adders(simd: int, dw: int) -> int:
    """Full adders per PE of the tree (the resource model's count of its logic)."""
    return sum(c // 3 for cols in levels(simd, dw)[:-1] for c in cols)


def plan(simd: int, dw: int) -> dict:
    """stages: per register stage of full adders, (adder levels in it, bits per PE it
    registers); then the carry-propagate stage of DW bits. The pipeline has
    len(stages) + 1 register stages."""
    lv = levels(simd, dw)
    n = len(lv) - 1
    stages = []
    for k in range(0, n, PER_STAGE):
        last = min(k + PER_STAGE, n)
        stages.append((last - k, sum(lv[last])))
    return {"levels": lv, "stages": stages, "dw": dw}


def _slice(sig: str, lo: int, n: int) -> str:
    return f"{sig}[{lo + n - 1}:{lo}]"


def verilog(simd: int, dw: int, pe: int, src: str, out: str) -> list[str]:
    """Verilog lines of the tree from the slot-major lane vector `src` (PE*SIMD bits) to
    the registered counts `out` (PE x DW bits, PE p at [p*DW +: DW])."""
    lv = levels(simd, dw)
    n = len(lv) - 1
    lines: list[str] = []
    cur = [src] + [None] * (len(lv[0]) - 1)
    for L in range(1, n + 1):
        cols, new = lv[L - 1], lv[L]
        reg = (L % PER_STAGE == 0) or L == n
        g = [c // 3 for c in cols]
        lines.append(f"// level {L}: columns {cols} -> {new}" + (" (registered)" if reg else ""))
        for j, c in enumerate(cols):
            if g[j]:
                w, s = pe * g[j], cur[j]
                a, b, cc = _slice(s, 0, w), _slice(s, w, w), _slice(s, 2 * w, w)
                lines.append(f"wire [{w - 1}:0] h{L}_{j} = {a} ^ {b};")
                lines.append(f"wire [{w - 1}:0] s{L}_{j} = h{L}_{j} ^ {cc};")
                if j + 1 < dw:
                    lines.append(f"wire [{w - 1}:0] k{L}_{j} = ({a} & {b}) | (h{L}_{j} & {cc});")
        nxt = []
        for j, c in enumerate(new):
            parts = []                                   # LSB first
            if j < len(cols) and g[j]:
                parts.append(f"s{L}_{j}")
            if j < len(cols) and cols[j] - 3 * g[j]:
                parts.append(_slice(cur[j], 3 * g[j] * pe, (cols[j] - 3 * g[j]) * pe))
            if j >= 1 and j - 1 < len(cols) and g[j - 1]:
                parts.append(f"k{L}_{j - 1}")
            name = f"c{L}_{j}"
            expr = parts[0] if len(parts) == 1 else "{" + ", ".join(reversed(parts)) + "}"
            if reg:
                lines.append(f"reg [{pe * c - 1}:0] {name};")
                lines.append(f"always @(posedge clk) {name} <= {expr};")
            else:
                lines.append(f"wire [{pe * c - 1}:0] {name} = {expr};")
            nxt.append(name)
        cur = nxt
    cols = lv[-1]
    rows = []
    for r in range(2):
        bits = []
        for j in reversed(range(dw)):
            bits.append(f"{cur[j]}[{r} * PE + pc]" if j < len(cols) and cols[j] > r else "1'b0")
        rows.append("{" + ", ".join(bits) + "}")
    lines.append("// carry-propagate add of the two remaining rows, per PE")
    lines.append(f"reg [{pe * dw - 1}:0] {out};")
    lines.append("integer pc;")
    lines.append("always @(posedge clk)")
    lines.append(f"    for (pc = 0; pc < PE; pc = pc + 1) {out}[pc*{dw} +: {dw}] <= {rows[0]} + {rows[1]};")
    return lines
