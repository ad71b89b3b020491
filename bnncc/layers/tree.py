"""The registered pairwise adder tree of the multiply-accumulate templates.

Level k sums pairs of level k-1 and is one register stage, so every stage is one adder
deep whatever the number of lanes. Widths hold the exact range of the lanes summed.
templates/rtl/vvau.v.j2 uses it; MVAU.rtl_tree (templates/rtl/mvau.v.j2) builds the same
shape and could share it.
"""
from __future__ import annotations

from .cost import sbits, ubits


def lane_range(xlo: int, xhi: int, wlo: int, whi: int) -> tuple[int, int]:
    """Exact range of one lane product x * w over x in [xlo, xhi], w in [wlo, whi]."""
    corners = [xlo * wlo, xlo * whi, xhi * wlo, xhi * whi, 0]
    return min(corners), max(corners)


def adder_tree(lanes: int, binary: bool, plo: int = 0, phi: int = 1,
               xlo: int = 0, xhi: int = 1) -> tuple[int, list[tuple[int, int]]]:
    """(lane width, [(sums, bits) of each registered level]) for `lanes` lanes per tree:
    binary lanes are XNOR bits (unsigned), otherwise signed products in [plo, phi] of an
    input in [xlo, xhi]. At least one level, even for one lane (it registers the product)."""
    if binary:
        lw, width = 1, ubits
    else:
        lw = max(sbits(plo, phi), sbits(xlo, xhi))
        width = lambda m: max(lw, sbits(m * plo, m * phi))
    levels, n, m = [], int(lanes), 1
    while True:
        n, m = -(-n // 2), min(2 * m, int(lanes))
        levels.append((n, width(m)))
        if n == 1:
            return lw, levels
