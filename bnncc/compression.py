"""What channel removal (bnncc.passes.prune) saved: the same network with every channel
kept, folded to reach the same frames/s on the same board, against the pruned design.

Comparing at equal frames/s is the fair measure: both designs do the job at the same
rate, one with fewer weights and lanes. Only designs that lost channels carry the
uncompressed copy (`design.uncompressed`, set by the pass)."""
from __future__ import annotations

import copy

RES = ("LUT", "FF", "BRAM18", "URAM", "DSP")


def weight_bits(design) -> int:
    from .layers import MVAU
    return int(sum(l.weights.size * (1 if l.binary else l.wdt.bits)
                   for l in design.layers() if isinstance(l, MVAU)))


def removed_channels(design) -> int:
    return sum(l.__dict__.get("removed", {}).get(k, 0) for l in design.layers()
               for k in ("constant_channels", "unread_channels"))


def with_compression(est: dict, design, board, clock_mhz: float, budget) -> dict:
    """The estimate, plus its "compression" entry when the design lost channels."""
    comp = compression_summary(design, est, board, clock_mhz, budget)
    return {**est, "compression": comp} if comp is not None else est


def compression_summary(design, est: dict, board, clock_mhz: float, budget) -> dict | None:
    """None unless the design lost channels; else weight bits, channels removed, and the
    kept-everything design's totals at the pruned design's frames/s (or at its own best
    rate if it cannot reach that one within the budget) with the difference."""
    kept = getattr(design, "uncompressed", None)
    if kept is None:
        return None
    from .errors import BnnccError
    from .estimate import estimate
    from .folding import fold_for_fps, fold_max_fps
    u, eu = copy.deepcopy(kept), None
    try:
        fold_for_fps(u, board, clock_mhz, est["fps"], budget)
        eu = estimate(u, board, clock_mhz, budget)
    except BnnccError:
        pass
    if eu is None or not eu["fits"]:    # that rate is out of the budget's reach
        u = copy.deepcopy(kept)
        fold_max_fps(u, board, clock_mhz, budget)
        eu = estimate(u, board, clock_mhz, budget)
    return {
        "channels_removed": removed_channels(design),
        "weight_bits": {"kept": weight_bits(u), "removed": weight_bits(design)},
        "kept_fps": eu["fps"], "kept_fits": eu["fits"],
        "kept_totals": eu["totals"],
        "saved": {k: eu["totals"][k] - est["totals"][k] for k in RES},
    }
