"""estimate(): fields, consistency, table, deterministic plot."""
from __future__ import annotations

import json
from pathlib import Path

from bnncc import api
from bnncc.boards import get_board
from bnncc.estimate import estimate, table
from bnncc.plot import plot_png
from bnncc.folding import fold_max_fps

FIX = Path(__file__).parent / "fixtures" / "brevitas"
CNV = FIX / "cnv_1w1a.onnx"
RES = ("LUT", "FF", "BRAM18", "URAM", "DSP")


def folded(path=CNV, board="pynq-z2"):
    b = get_board(board)
    d = api.load(str(path))
    fold_max_fps(d, b, b.clock_mhz)
    return d, b


def test_fields_and_totals():
    d, b = folded()
    e = estimate(d, b, 100.0)
    for k in ("board", "clock_mhz", "fps", "latency_cycles", "fits", "totals", "budget", "layers"):
        assert k in e
    assert isinstance(e["fits"], bool)
    for k in RES:
        assert k in e["totals"] and k in e["budget"]
        assert e["totals"][k] == sum(r[k] for r in e["layers"])
    for r in e["layers"]:
        for k in ("name", "kind", "PE", "SIMD", "cycles", "mem_style") + RES:
            assert k in r
    assert e["fps"] == 100e6 / max(r["cycles"] for r in e["layers"])
    assert e["latency_cycles"] >= max(r["cycles"] for r in e["layers"])
    json.dumps(e)
    t = table(e)
    assert "mvau_1" in t and "frames/s" in t and "fits" in t


def test_plot_is_deterministic_png():
    d, b = folded()
    e = estimate(d, b, 100.0)
    a, c = plot_png(e), plot_png(e)
    assert a[:8] == b"\x89PNG\r\n\x1a\n" and a == c


def test_estimate_path_runs_in_process():
    """The in-process path bench/estimate_speed.py times: load, fold, estimate of CNV-w1a1.
    Its speed is a benchmark figure, not a test (the machine is shared)."""
    d, b = folded()
    e = estimate(d, b, 100.0)
    assert e["fits"] and e["cycles_per_frame"] == max(r["cycles"] for r in e["layers"])


def _bnncc_imports() -> dict[str, set[str]]:
    """module -> bnncc modules it imports (top-level and inside functions)."""
    import ast
    root = Path(__file__).resolve().parent.parent / "bnncc"
    mods = {}
    for f in root.rglob("*.py"):
        rel = f.relative_to(root.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        pkg = name if rel.name == "__init__" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = pkg
                for _ in range(max(0, node.level - 1)):
                    base = base.rpartition(".")[0]
                target = (base + "." + node.module if node.module else base) if node.level \
                    else (node.module or "")
                if target.startswith("bnncc"):
                    subs = {f"{target}.{a.name}" for a in node.names}
                    # `from . import timing` imports the submodule, not the package again
                    deps.update(subs if node.module is None else subs | {target})
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("bnncc"))
        mods[name] = deps
    return {m: {d for d in ds if d in mods and d != m} for m, ds in mods.items()}


def test_estimate_folding_fifos_import_no_circle():
    """estimate, folding and passes.fifos import one another in one direction only (even
    counting imports inside functions): fifos <- estimate <- folding."""
    import networkx as nx
    mods = _bnncc_imports()
    g = nx.DiGraph([(m, d) for m, ds in mods.items() for d in ds])
    trio = {"bnncc.estimate", "bnncc.passes.fifos"} | {
        m for m in mods if m == "bnncc.folding" or m.startswith("bnncc.folding.")}
    for cyc in nx.simple_cycles(g.subgraph(nx.descendants(g, "bnncc.folding") | trio)):
        assert not (set(cyc) & trio), cyc
