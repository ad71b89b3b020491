"""The per-layer plot of a compiled design (DIR/report_layers.png): cycles per frame of
every block against the pipeline's interval, and its LUT / FF / BRAM18 share of the
board, so the bottleneck and the biggest users stand out.

Drawn with matplotlib (the `plot` extra, in `dev`) when it is installed, with the Agg
backend and no timestamps in the file, so the same design gives the same bytes; without
matplotlib, a plainer Pillow drawing of the same two panels.
"""
from __future__ import annotations

import io

RES_COLORS = (("LUT", "#55a868"), ("FF", "#8172b2"), ("BRAM18", "#dd8452"))


def plot_png(est: dict) -> bytes:
    try:
        matplotlib = _import_matplotlib()
    except ImportError:
        return _pillow_png(est)
    return _matplotlib_png(est, matplotlib)


def _import_matplotlib():
    """matplotlib, imported so that `bnncc compile` writes nothing outside its output
    directory: on first import matplotlib writes a font list into its config folder, so
    unless the user chose one (MPLCONFIGDIR) or matplotlib is already loaded, it gets a
    temporary folder, removed at once (the font list stays in memory)."""
    import os
    import sys
    if "matplotlib" in sys.modules or os.environ.get("MPLCONFIGDIR"):
        import matplotlib
        import matplotlib.figure  # noqa: F401
        return matplotlib
    import logging
    import shutil
    import tempfile
    tmp = tempfile.mkdtemp(prefix="bnncc-mpl-")
    os.environ["MPLCONFIGDIR"] = tmp
    mpl_log = logging.getLogger("matplotlib")
    level = mpl_log.level
    mpl_log.setLevel(logging.ERROR)    # a font list it cannot save is not the user's news
    try:
        import matplotlib
        import matplotlib.figure  # noqa: F401  (builds the font list)
    finally:
        mpl_log.setLevel(level)
        del os.environ["MPLCONFIGDIR"]
        shutil.rmtree(tmp, ignore_errors=True)
    return matplotlib


def _matplotlib_png(est: dict, matplotlib) -> bytes:
    from matplotlib.figure import Figure     # no pyplot: no global state, no GUI backend
    rows = est["layers"]
    names = [r["name"] for r in rows]
    n = max(1, len(rows))
    cap = est["capacity"]
    res = [(k, c) for k, c in RES_COLORS if cap.get(k)]
    import matplotlib.style
    # matplotlib's defaults, not the user's matplotlibrc: the same design, the same bytes
    with matplotlib.style.context("default"), matplotlib.rc_context({"font.size": 9}):
        fig = Figure(figsize=(max(6.0, 0.42 * n + 2.0), 6.4), dpi=100,
                     layout="constrained")
        fig.get_layout_engine().set(w_pad=0.1, h_pad=0.08)   # inches of white margin
        ax1, ax2 = fig.subplots(2, 1, sharex=True)
        xs = list(range(len(rows)))
        ii = est["cycles_per_frame"]
        colors = ["#c44e52" if r["cycles"] == ii else "#4c72b0" for r in rows]
        ax1.bar(xs, [max(r["cycles"], 1) for r in rows], color=colors, width=0.7)
        ax1.set_yscale("log")
        ax1.axhline(ii, color="#c44e52", lw=1, ls="--",
                    label=f"interval {ii:,} cycles (bottleneck {est['bottleneck']})")
        ax1.set_ylim(0.8, ii * 6)        # bars from 1 cycle; headroom for the legend
        ax1.set_ylabel("cycles per frame")
        ax1.legend(loc="upper right", fontsize=8, frameon=False)
        ax1.grid(axis="y", which="major", alpha=0.3)
        w = 0.8 / max(1, len(res))
        for j, (k, c) in enumerate(res):
            ax2.bar([x - 0.4 + w * (j + 0.5) for x in xs],
                    [100.0 * r[k] / cap[k] for r in rows], width=w, color=c, label=k)
        ax2.set_ylabel("% of the board")
        ax2.legend(loc="upper right", fontsize=8, frameon=False, ncol=len(res))
        ax2.grid(axis="y", alpha=0.3)
        ax2.set_xticks(xs)
        ax2.set_xticklabels(names, rotation=60, ha="right", rotation_mode="anchor")
        ax2.set_xlim(-0.6, len(rows) - 0.4)
        fig.suptitle(f"{est['board']} at {est['clock_mhz']:g} MHz: {est['fps']:,.0f} frames/s, "
                     f"{est['totals']['LUT']:,} LUT, {est['totals']['BRAM18']:,} BRAM18 "
                     f"(estimates)", fontsize=10)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _pillow_png(est: dict) -> bytes:
    """The same panels with Pillow's built-in bitmap font (no matplotlib)."""
    import math

    from PIL import Image, ImageDraw, ImageFont

    rows = est["layers"]
    font = ImageFont.load_default()
    n = max(1, len(rows))
    slot, left, top, panel, gap, label_h = 36, 70, 30, 200, 30, 110
    title = (f"{est['board']} @ {est['clock_mhz']:g} MHz: {est['fps']:,.0f} frames/s, "
             f"interval {est['cycles_per_frame']} cycles")
    w = max(left + slot * n + 20, left + 7 * len(title) + 20)
    h = top + 2 * panel + gap + label_h + 12
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.text((left, 8), title, fill="black", font=font)
    y0, y1 = top + panel, top + 10
    hi = math.log10(max([r["cycles"] for r in rows] + [10]))
    ypos = lambda c: y0 + (y1 - y0) * (math.log10(max(c, 1)) / hi)
    d.rectangle([left, y1, w - 20, y0], outline="black")
    for e in range(int(hi) + 1):
        y = ypos(10 ** e)
        d.line([left - 4, y, left, y], fill="black")
        d.text((8, y - 5), f"1e{e}", fill="black", font=font)
    d.text((8, y1 - 12), "cycles", fill="black", font=font)
    for i, r in enumerate(rows):
        x = left + i * slot + 6
        d.rectangle([x, ypos(r["cycles"]), x + slot - 12, y0], fill=(76, 114, 176))
    yi = ypos(est["cycles_per_frame"])
    d.line([left, yi, w - 20, yi], fill=(196, 78, 82), width=1)
    cap = est["capacity"]
    res = [(k, c) for k, c in RES_COLORS if cap[k]]
    b0, b1 = top + 2 * panel + gap, top + panel + gap + 10
    pmax = max([100 * r[k] / cap[k] for r in rows for k, _ in res] + [1.0])
    d.rectangle([left, b1, w - 20, b0], outline="black")
    d.text((8, b1 - 12), "% of board", fill="black", font=font)
    d.text((8, b1), f"{pmax:.0f}%", fill="black", font=font)
    for j, (k, c) in enumerate(res):
        d.rectangle([w - 90, b1 + 4 + 12 * j, w - 82, b1 + 12 + 12 * j], fill=c)
        d.text((w - 78, b1 + 2 + 12 * j), k, fill="black", font=font)
    bw = (slot - 12) // max(1, len(res))
    for i, r in enumerate(rows):
        for j, (k, c) in enumerate(res):
            x = left + i * slot + 6 + j * bw
            y = b0 - (b0 - b1) * (100 * r[k] / cap[k]) / pmax
            d.rectangle([x, y, x + bw - 1, b0], fill=c)
        lab = Image.new("RGB", (label_h, 12), "white")
        ImageDraw.Draw(lab).text((0, 0), r["name"][:18], fill="black", font=font)
        img.paste(lab.rotate(90, expand=True), (left + i * slot + 10, b0 + 4))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
