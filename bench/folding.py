"""bnncc --max-fps folding against FINN's SetFolding, evaluated with bnncc's model.

usage: python bench/folding.py [MODEL_DIR] [--dws DIR]

For CNV-w1a1 on Pynq-Z2 and ZCU104 and TFC-w1a1 on Pynq-Z2 it prints side by side:
  - bnncc: fold_max_fps within the default budget (70% LUT, 80% BRAM18): fps, resources;
  - FINN SetFolding: the same algorithm re-implemented here from its public description
    (MVAU: raise SIMD over the divisors of MW until the target is met or the weight
    stream per PE would exceed 36 bits, then raise PE over the divisors of MH; other
    layers raise PE / SIMD over the divisors of their channels; a second pass with the
    achieved interval as target if the first missed it), at the issue's targets, with
    that folding evaluated by bnncc's resource model;
  - FINN's measured figures (finn-plus 1.6.1, Pynq-Z1 at 100 MHz), quoted from issue 5;
  - the upper bound on fps that the LUT budget allows for the network's MACs.
Then SFC-w1a1 --max-fps on ZC706 at 200 MHz (the part and clock of FINN's published
SFC-max, 12.3 M frames/s, FPGA'17) and on an Alveo U250, with the logic depth against
the board's budget and the input stream's bandwidth.
With --dws DIR (the ImageNet models of scripts/make_dws_fixtures.py --big DIR) it also
folds brevitas_examples' MobileNet-v1 0.25 (4 bit) on ZCU104 and KV260.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bnncc import api  # noqa: E402
from bnncc.boards import get_board  # noqa: E402
from bnncc.estimate import estimate  # noqa: E402
from bnncc.folding import (MIN_INTERVAL, _offer_parallel, divisors,  # noqa: E402
                           fold_max_fps, insert_width_converters, strip_width_converters)
from bnncc.layers import MVAU, VVAU, LabelSelect, MaxPool, SlidingWindow  # noqa: E402

FINN_MEASURED = {  # issue 5: finn-plus 1.6.1, CNV-w1a1, Pynq-Z1 @ 100 MHz
    10000: dict(fps=7972, LUT=59456, BRAM18=243),
    3000: dict(fps=3028, LUT=26032, BRAM18=139),
}


def finn_set_folding(design, target: int, wwidth_max: int = 36, two_pass: bool = True):
    """FINN SetFolding's choice, applied to bnncc layers. FINN folds a sliding window
    independently of its MVAU (a width converter sits between them when they differ);
    its max pool takes whole pixels per cycle (PE = channels)."""
    strip_width_converters(design)
    for l in design.layers():
        if isinstance(l, MVAU):
            l.pe, l.simd = 1, 1
            for s in divisors(l.mw):
                prev = l.simd
                l.simd = s
                if l.cycles() <= target:
                    break
                if l.wdt.bits * s > wwidth_max:
                    l.simd = prev
                    break
            for p in divisors(l.mh):
                l.pe = p
                if l.cycles() <= target:
                    break
        elif isinstance(l, VVAU):        # FINN's VVAU: PE over the channels
            for p in divisors(l.groups):
                l.pe = p
                if l.cycles() <= target:
                    break
        elif isinstance(l, SlidingWindow) and l.depthwise:
            continue                        # follows its VVAU (below)
        elif isinstance(l, SlidingWindow):
            for s in divisors(l.channels):
                l.simd = s
                if l.cycles() <= target:
                    break
        elif isinstance(l, MaxPool):
            l.pe = l.in_shape[-1]
        elif isinstance(l, LabelSelect):
            for p in divisors(l.labels):
                l.pe = p
                if l.cycles() <= target:
                    break
        elif hasattr(l, "pe"):
            for p in divisors(int(l.in_shape[-1])):
                l.pe = p
                if l.cycles() <= target:
                    break
    achieved = max(l.cycles() for l in design.layers())
    if two_pass and achieved > target:
        return finn_set_folding(design, achieved, wwidth_max, two_pass=False)
    for l in design.layers():          # FINN's default weight memory: BRAM when large
        if isinstance(l, (MVAU, VVAU)):
            l.mem_style = None
        if isinstance(l, SlidingWindow) and l.depthwise:
            l.simd = design.layer(next(iter(design.graph.successors(l.name)))).in_word
    return insert_width_converters(design)


def macs(design) -> int:
    return sum(l.mh * l.mw * l.pixels for l in design.layers() if isinstance(l, (MVAU, VVAU)))


def lut_bound(design, board, clock_mhz, budget_lut, est) -> tuple[float, float]:
    """fps the LUT budget allows if every LUT did MAC work at the cost per MAC lane the
    bnncc design itself achieves (LUTs of the whole design / MAC lanes), and that cost."""
    lanes = sum(l.pe * l.simd for l in design.layers() if isinstance(l, MVAU)) + \
        sum(l.pe * l.cout * l.cin for l in design.layers() if isinstance(l, VVAU))
    per_lane = est["totals"]["LUT"] / lanes
    return clock_mhz * 1e6 * (budget_lut / per_lane) / macs(design), per_lane


def structural_bound(design, clock_mhz) -> float:
    """fps with every layer fully parallel (PE = MH, SIMD = the channels a window word
    can carry, or a whole window where the optimizer offers the parallel window), and no
    shorter than the optimizer's floor: the interval no folding can beat."""
    worst = MIN_INTERVAL
    g = design.graph
    for l in design.layers():
        if isinstance(l, VVAU):          # every group in parallel; every kernel position
            swg = design.layer(list(g.predecessors(l.name))[0])    # too behind a parallel window
            if _offer_parallel(swg):
                old = swg.simd, swg.parallel
                swg.simd, swg.parallel = swg.channels, True
                worst = max(worst, l.pixels, swg.cycles())
                swg.simd, swg.parallel = old
            else:
                worst = max(worst, l.pixels * l.k)
        if isinstance(l, MVAU):
            preds = list(g.predecessors(l.name))
            swg = design.layer(preds[0]) if preds else None
            par = isinstance(swg, SlidingWindow) and _offer_parallel(swg)
            simd = swg.channels if isinstance(swg, SlidingWindow) and not par else l.mw
            simd = max(s for s in divisors(simd) if l.mw % s == 0)
            worst = max(worst, (l.mw // simd) * l.pixels)
            if isinstance(swg, SlidingWindow):
                old = swg.simd, swg.parallel
                swg.simd, swg.parallel = (swg.channels, True) if par else (simd, False)
                worst = max(worst, swg.cycles())
                swg.simd, swg.parallel = old
    return clock_mhz * 1e6 / worst


def row(label, est):
    t = est["totals"]
    return (f"  {label:<34} {est['fps']:>9,.0f} fps  LUT {t['LUT']:>7,} "
            f"({100 * t['LUT'] / est['capacity']['LUT']:4.1f}%)  BRAM18 {t['BRAM18']:>4} "
            f"({100 * t['BRAM18'] / max(1, est['capacity']['BRAM18']):4.1f}%)  FF {t['FF']:>7,}  "
            f"fits={'yes' if est['fits'] else 'NO'}")


def measured(design, clock) -> str:
    """The design's cycles per frame in Verilator (8 frames, steady state)."""
    import numpy as np

    from bnncc.sim import rtlsim
    from bnncc.testing.designs import rand_values
    first = design.first()
    q = rand_values(np.random.default_rng(0), first.idt, (8,) + tuple(first.in_shape))
    t0 = time.perf_counter()
    y, st = rtlsim.simulate(design, q)
    exact = np.array_equal(y, design.run_layers(q))
    return (f"  {'bnncc design in Verilator':<34} {clock * 1e6 / st['cycles_per_frame']:>9,.0f} fps  "
            f"({st['cycles_per_frame']:.0f} cycles/frame measured, {st['cycles_per_frame_estimated']} "
            f"estimated; bit-exact={exact}; {time.perf_counter() - t0:.0f} s)")


def case(path: Path, board_name: str, clock: float | None = None, finn_targets=(),
         measure: bool = False, input_type: str | None = None, input_scale: float = 1.0):
    board = get_board(board_name)
    clock = clock or board.clock_mhz
    print(f"\n{path.stem} on {board.name} at {clock:g} MHz "
          f"(budget 70% LUT = {int(0.7 * board.LUT):,}, 80% BRAM18 = {int(0.8 * board.BRAM18)})")
    d = api.load(str(path), input_type, input_scale)
    t0 = time.perf_counter()
    fold_max_fps(d, board, clock)
    t_fold = time.perf_counter() - t0
    est = estimate(d, board, clock)
    print(row("bnncc --max-fps", est) + f"  [fold {1e3 * t_fold:.0f} ms]")
    bnncc_fps = est["fps"]
    targets = list(finn_targets) or [int(bnncc_fps)]
    for fps_t in targets:
        f = api.load(str(path), input_type, input_scale)
        finn_set_folding(f, int(clock * 1e6 // fps_t))
        e2 = estimate(f, board, clock)
        print(row(f"FINN SetFolding @ {fps_t:,} fps (bnncc model)", e2))
        if fps_t in FINN_MEASURED and "cnv" in path.stem:
            m = FINN_MEASURED[fps_t]
            print(f"  {'FINN measured (finn-plus, Pynq-Z1)':<34} {m['fps']:>9,} fps  "
                  f"LUT {m['LUT']:>7,} ({100 * m['LUT'] / 53200:4.1f}%)  BRAM18 {m['BRAM18']:>4}")
    if measure:
        print(measured(d, clock))
    bound, per_lane = lut_bound(d, board, clock, est["budget"]["LUT"], est)
    sb = structural_bound(d, clock)
    print(f"  MACs/frame {macs(d):,}; bnncc design: {per_lane:.2f} LUT per MAC lane")
    print(f"  LUT-budget bound {bound:,.0f} fps -> bnncc reaches {bnncc_fps / bound:.2f} of it; "
          f"structural bound (fully parallel, >= {MIN_INTERVAL} cycles) {sb:,.0f} fps -> "
          f"{bnncc_fps / sb:.2f}; min of both {min(bound, sb):,.0f} -> "
          f"{bnncc_fps / min(bound, sb):.2f}")
    return est


FINN_SFC_MAX = 12.3e6     # FINN, FPGA'17: SFC-max on ZC706 at 200 MHz, frames/s


def sfc_case(path: Path, board_name: str) -> dict:
    board = get_board(board_name)
    d = api.load(str(path))
    fold_max_fps(d, board)
    est = estimate(d, board)
    ld, port = est["logic_depth"], est["ports"]["input"]
    print(row(f"SFC-w1a1 --max-fps, {board.name} {board.clock_mhz:g} MHz", est))
    print(f"    {est['cycles_per_frame']} cycles/frame; {est['fps'] / FINN_SFC_MAX:.1f}x FINN's "
          f"published SFC-max ({FINN_SFC_MAX / 1e6:.1f} M frames/s, ZC706 200 MHz); logic depth "
          f"{ld['worst_levels']} levels (budget {ld['budget']}: {'ok' if ld['ok'] else 'OVER'}); "
          f"input stream {port['width_bits']} bits, {port['bytes_per_s'] / 1e9:.2f} GB/s")
    return est


def main() -> None:
    args = sys.argv[1:]
    dws = None
    if "--dws" in args:
        i = args.index("--dws")
        dws = Path(args[i + 1])
        del args[i:i + 2]
    d = Path(args[0]) if args else REPO / "tests" / "fixtures" / "brevitas"
    case(d / "cnv_1w1a.onnx", "pynq-z2", 100.0, finn_targets=(10000, 3000), measure=True)
    case(d / "cnv_1w1a.onnx", "zcu104", None, finn_targets=(10000,))
    case(d / "tfc_1w1a.onnx", "pynq-z2", 100.0)
    print()
    for b in ("zc706", "alveo-u250"):
        sfc_case(d / "sfc_1w1a.onnx", b)
    if dws is not None:
        for board in ("zcu104", "kv260"):
            # float pixels: declared INT8 x 2^-7 (scripts/make_dws_fixtures.py)
            case(dws / "mobilenet_v1_025.onnx", board, input_type="INT8", input_scale=2.0 ** -7)


if __name__ == "__main__":
    main()
