"""`bnncc sweep`: the frames/s-versus-resources Pareto front of each model on each board.

For every model x board x clock the folding optimizer (bnncc/folding.py) runs at a
ladder of target intervals, log-spaced from the fastest folding that fits the whole
board to the cheapest folding (everything fully folded), plus the `--max-fps` design of
the budget. Every design is estimated (bnncc/estimate.py); those that fit the board and
are not dominated (another design at least as fast using no more of any resource) form
the front, sorted by fps. Each point carries its folding as a `--config`, so
`bnncc estimate --config` reproduces its figures exactly.

The work runs as model x board x target pieces on an executor (bnncc/executor.py:
Dask or this process); the client only merges, so every executor gives the same bytes.
"""
from __future__ import annotations

import json
import math
import re
import threading
from pathlib import Path

from .boards import RESOURCES
from .errors import BnnccError
from .executor import ModelRef, cached_design, remember

BOARD_BUDGET = {r: 1.0 for r in RESOURCES}   # the whole board: where the ladder starts
PIECE = 8                                     # targets per ladder task


# --------------------------------------------------------------------------- worker tasks
def _point(design, board, clock, budget) -> dict:
    """The estimate of a folded design as a front point. Its config pins the folding and,
    for a point over the budget, the whole board as budget, so --config can rebuild it."""
    from .estimate import estimate
    from .folding import folding_config
    est = estimate(design, board, clock, budget=budget)
    cap = board.capacity()
    cfg = folding_config(design)
    if not est["fits"]:
        cfg["budget"] = dict(BOARD_BUDGET)
    elif budget:
        cfg["budget"] = dict(sorted(budget.items()))
    return {"fps": est["fps"], "cycles_per_frame": est["cycles_per_frame"],
            "totals": est["totals"], "utilization": est["utilization"], "fits": est["fits"],
            "on_board": all(est["totals"][r] <= cap[r] for r in RESOURCES), "config": cfg}


_WORKSPACES: dict[tuple, tuple] = {}
_WS_LOCK = threading.Lock()


def _workspace(ref, board, data):
    """This worker's design copy and folding units for one model x board, built once
    (folding re-applies every unit, so a fold does not depend on the one before)."""
    key = (ref.sha256, ref.input_type, ref.input_scale, board)
    with _WS_LOCK:
        if key not in _WORKSPACES:
            from .folding import build_units
            design = cached_design(ref, data)
            remember(_WORKSPACES, key, (threading.Lock(), design, build_units(design, board)))
        return _WORKSPACES[key]


def _guarded(fn, piece, models):
    """Bad input on a worker comes back as data: the client raises it as one line."""
    try:
        lock, design, units = _workspace(piece[0], piece[1], (models or {}).get(piece[0].sha256))
        with lock:
            return fn(piece, design, units)
    except BnnccError as e:
        return {"error": e.line(), "exit_code": e.exit_code}


def span_task(piece, models=None) -> dict:
    """Ends of the ladder for one model x board x clock: the interval of the fastest
    folding that fits the board, the cheapest folding, and the budget's --max-fps point."""
    return _guarded(_span, piece, models)


def ladder_task(piece, models=None) -> dict:
    """Fold and estimate one model x board x clock at a list of target intervals."""
    return _guarded(_ladder, piece, models)


def _span(piece, design, units) -> dict:
    from .estimate import interval
    from .folding import fold_intervals, fold_max_fps
    _, board, clock, budget = piece
    try:
        fold_max_fps(design, board, clock, BOARD_BUDGET, units=units)
    except BnnccError as e:
        return {"no_fit": e.line()}
    fastest = interval(design)
    for _ in fold_intervals(design, board, [2 ** 62], budget, units=units):
        slow = _point(design, board, clock, budget)
    try:
        fold_max_fps(design, board, clock, budget, units=units)
        best = _point(design, board, clock, budget)
    except BnnccError:
        best = None
    return {"fastest": fastest, "slowest": slow["cycles_per_frame"], "points": [slow],
            "max_fps": best}


def _ladder(piece, design, units) -> dict:
    """The budget's weights where the budget can be met (at or above the --max-fps
    interval), the whole board's beyond it."""
    from .folding import fold_intervals
    _, board, clock, budget, targets, t_budget = piece
    out = []
    for group, fb in (([t for t in targets if t_budget is not None and t >= t_budget], budget),
                      ([t for t in targets if t_budget is None or t < t_budget], BOARD_BUDGET)):
        for _, ok in fold_intervals(design, board, group, fb, units=units):
            if ok:
                out.append(_point(design, board, clock, budget))
    return {"points": out}


# --------------------------------------------------------------------------- client side
def ladder(fastest: int, slowest: int, n: int) -> list[int]:
    """n target intervals, log-spaced from fastest to slowest (distinct integers)."""
    if slowest <= fastest or n <= 1:
        return [fastest]
    r = math.log(slowest / fastest)
    return sorted({round(fastest * math.exp(r * i / (n - 1))) for i in range(n)})


def pareto(points: list[dict], prefer: dict | None = None) -> list[dict]:
    """On-board points that no other point beats: one per interval (`prefer` at its
    own), then drop any with another at least as fast and no larger in every resource."""
    by_ii: dict[int, dict] = {}
    for p in points:
        if not p["on_board"]:
            continue
        ii = p["cycles_per_frame"]
        if prefer is not None and ii == prefer["cycles_per_frame"]:
            by_ii[ii] = prefer
        elif ii not in by_ii or _cost(p) < _cost(by_ii[ii]):
            by_ii[ii] = p
    cand = sorted(by_ii.values(), key=lambda p: p["fps"])
    keep = [p for p in cand if not any(q is not p and _dominates(q, p) for q in cand)]
    return [{k: v for k, v in p.items() if k != "on_board"} for p in keep]


def _cost(p: dict) -> tuple:
    u = p["utilization"]
    return (sum(v for v in u.values() if v is not None), json.dumps(p["config"], sort_keys=True))


def _dominates(q: dict, p: dict) -> bool:
    if q["fps"] < p["fps"]:
        return False
    le = all(q["totals"][r] <= p["totals"][r] for r in RESOURCES)
    lt = q["fps"] > p["fps"] or any(q["totals"][r] < p["totals"][r] for r in RESOURCES)
    return le and lt


def sweep(refs: list[ModelRef], boards: list, clocks: list[float] | None, points: int,
          budget: dict | None, ex, model_bytes: dict | None = None) -> dict:
    """The fronts of every model x board x clock, run on executor `ex`."""
    if points < 2:
        raise BnnccError(f"--points must be at least 2, got {points}")
    shared = {"models": model_bytes} if model_bytes else {}
    combos = [(ref, b, float(c), budget) for ref in refs for b in boards
              for c in (clocks or [b.clock_mhz])]
    spans = ex.map(span_task, combos, **shared)
    _raise(spans)
    pieces, owner = [], []
    for k, ((ref, b, c, bud), s) in enumerate(zip(combos, spans)):
        if "no_fit" in s:
            continue
        t_budget = s["max_fps"]["cycles_per_frame"] if s["max_fps"] else None
        targets = ladder(s["fastest"], s["slowest"], points)
        for i in range(0, len(targets), PIECE):
            pieces.append((ref, b, c, bud, targets[i:i + PIECE], t_budget))
            owner.append(k)
    done = ex.map(ladder_task, pieces, **shared)
    _raise(done)
    results = []
    for k, ((ref, b, c, _), s) in enumerate(zip(combos, spans)):
        r = {"model": ref.path, "board": b.key, "board_name": b.name, "part": b.part,
             "clock_mhz": c}
        if "no_fit" in s:
            r.update(pareto=[], note=s["no_fit"])
        else:
            pts = s["points"] + ([s["max_fps"]] if s["max_fps"] else [])
            pts += [p for j, d in zip(owner, done) if j == k for p in d["points"]]
            r["pareto"] = pareto(pts, s["max_fps"])
            if s["max_fps"] is None:
                r["note"] = "no folding fits the budget; the front shows what fits the board"
        results.append(r)
    from .folding import DEFAULT_BUDGET
    full = dict(DEFAULT_BUDGET)
    full.update(budget or {})
    return {"budget": full, "points": points, "results": results}


def _raise(rows) -> None:
    for r in rows:
        if "error" in r:
            e = BnnccError(r["error"])
            e.exit_code = r["exit_code"]
            raise e


# --------------------------------------------------------------------------- output
def to_json(res: dict) -> str:
    return json.dumps(res, sort_keys=True, indent=1) + "\n"


def stems(res: dict) -> dict[str, str]:
    """A short, unique file stem per model."""
    out: dict[str, str] = {}
    for r in res["results"]:
        m = r["model"]
        if m not in out:
            base = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(m).stem) or "model"
            s, i = base, 2
            while s in out.values():
                s, i = f"{base}_{i}", i + 1
            out[m] = s
    return out


def markdown(res: dict, config_dir: str | None = None) -> str:
    """One table per model x board x clock: the front, slowest first."""
    b = res["budget"]
    lines = ["# bnncc sweep: frames/s against resources", "",
             f"Budget: {', '.join(f'{k} {100 * v:.0f}%' for k, v in sorted(b.items()) if v <= 1)}; "
             f"{res['points']} targets per board. `fits` is against the budget; every point "
             "fits the board. Reproduce one with `bnncc estimate MODEL --board B "
             "--clock-mhz F --config FILE`.", ""]
    st = stems(res)
    for r in res["results"]:
        lines += [f"## {r['model']} on {r['board_name']} ({r['part']}) at {r['clock_mhz']:g} MHz", ""]
        if r.get("note"):
            lines += [f"{r['note']}", ""]
        if not r["pareto"]:
            continue
        head = "| fps | cycles/frame | LUT | FF | BRAM18 | URAM | DSP | LUT % | BRAM18 % | fits |"
        if config_dir:
            head += " config |"
        lines += [head, "|" + "---:|" * 9 + ":---:|" + (":---|" if config_dir else "")]
        for i, p in enumerate(r["pareto"]):
            t, u = p["totals"], p["utilization"]
            pct = lambda k: "-" if u[k] is None else f"{100 * u[k]:.1f}"
            row = (f"| {p['fps']:,.1f} | {p['cycles_per_frame']} | {t['LUT']} | {t['FF']} | "
                   f"{t['BRAM18']} | {t['URAM']} | {t['DSP']} | {pct('LUT')} | {pct('BRAM18')} | "
                   f"{'yes' if p['fits'] else 'no'} |")
            if config_dir:
                row += f" {config_dir}/{config_name(st[r['model']], r, i)} |"
            lines.append(row)
        lines.append("")
    return "\n".join(lines)


def config_name(stem: str, r: dict, i: int) -> str:
    return f"{stem}/{r['board']}_{r['clock_mhz']:g}MHz_{i:02d}.json"


def plot_png(res: dict, model: str) -> bytes:
    """fps (log) against LUT share of the board, one curve per board (and clock), the
    LUT budget as a vertical line; hollow markers are over the budget."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    rows = [r for r in res["results"] if r["model"] == model and r["pareto"]]
    clocks = {r["board"]: set() for r in rows}
    for r in rows:
        clocks[r["board"]].add(r["clock_mhz"])
    styles = ["-", "--", "-.", ":"]
    for k, r in enumerate(rows):
        x = [100 * p["utilization"]["LUT"] for p in r["pareto"]]
        y = [p["fps"] for p in r["pareto"]]
        label = r["board_name"] + (f" @ {r['clock_mhz']:g} MHz" if len(clocks[r["board"]]) > 1 else "")
        sx, sy = [], []            # staircase: the fastest design within each LUT share
        for a, b in sorted(zip(x, y)):
            if not sy or b > sy[-1]:
                sx.append(a)
                sy.append(b)
        line, = ax.plot(sx, sy, styles[k % len(styles)], drawstyle="steps-post",
                        linewidth=1.2, label=label)
        fit = [p["fits"] for p in r["pareto"]]
        ax.scatter([a for a, f in zip(x, fit) if f], [b for b, f in zip(y, fit) if f],
                   s=14, color=line.get_color(), zorder=3)
        ax.scatter([a for a, f in zip(x, fit) if not f], [b for b, f in zip(y, fit) if not f],
                   s=14, facecolors="none", edgecolors=line.get_color(), zorder=3)
    lut = res["budget"].get("LUT", 0.7)
    if lut <= 1:
        ax.axvline(100 * lut, color="0.4", linestyle="--", linewidth=1)
        ax.annotate(f"LUT budget {100 * lut:.0f}%", (100 * lut, 0.02), xycoords=("data", "axes fraction"),
                    rotation=90, ha="right", va="bottom", fontsize=8, color="0.3")
    ax.set_yscale("log")
    ax.set_xlim(0, 100)
    ax.set_xlabel("LUT, % of the board")
    ax.set_ylabel("frames / s")
    ax.set_title(f"{Path(model).name}: Pareto front per board", fontsize=10)
    ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
    if rows:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def write(res: dict, out_dir: str) -> list[str]:
    """sweep.json, sweep.md, configs/<model>/<board>_<clock>_<i>.json and a plot per
    model (when matplotlib is installed) into out_dir."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        files = {"sweep.json": to_json(res).encode(),
                 "sweep.md": (markdown(res, "configs") + "\n").encode()}
        st = stems(res)
        for r in res["results"]:
            for i, p in enumerate(r["pareto"]):
                files[f"configs/{config_name(st[r['model']], r, i)}"] = (
                    json.dumps(p["config"], sort_keys=True, indent=1) + "\n").encode()
        try:
            import matplotlib  # noqa: F401
            for m, s in st.items():
                files[f"{s}.png"] = plot_png(res, m)
        except ImportError:
            pass
        for name, data in files.items():
            p = out / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
    except OSError as e:
        raise BnnccError(f"cannot write the sweep: {e.strerror or e}", file=str(out)) from None
    return sorted(files)
