"""Folding: how many elements each layer handles per cycle (PE output lanes, SIMD input
lanes), the weight memory style of each MVAU, and the width converters that the chosen
widths require between layers.

The optimizer works on *units*: a sliding window and the MVAU it feeds form one unit
(they share SIMD, which must divide the channels; or, for narrow pixels, the window is
parallel, a whole window per cycle, and the MVAU takes any SIMD dividing MW behind a width
converter); every other layer is a unit of its own.
Each unit has a list of legal options (PE | MH, SIMD | MW, PE | channels, memory style),
each with its cycles per frame and its resources from the layer models (bnncc/layers,
calibrated against Yosys). For a target initiation interval T every unit takes its
cheapest option with cycles <= T; "cheapest" weighs each resource by its share of the
budget, and the weights of over-budget resources are raised until the selection fits.

- `fold_for_fps(design, board, clock_mhz, fps)`: the least resources meeting `fps`.
- `fold_max_fps(design, board, clock_mhz, budget)`: the smallest T (highest fps) whose
  selection fits the budget (default 70% LUT, 80% BRAM18; 80% FF, URAM, DSP).
- a per-layer configuration (`config`, a dict or JSON file) pins PE / SIMD / mem_style
  of named layers and may set the budget.

Modules, one concern each: options (the candidate foldings of each layer kind), search
(the optimizer), simple (fold_simple), converters (width converters between layers).
This package re-exports their names, so `from bnncc.folding import X` keeps working.
"""
from ..boards import DEFAULT_BUDGET, budget_of  # noqa: F401  (re-exported)
from ..layers import in_elems, out_elems  # noqa: F401  (re-exported)
from .converters import insert_width_converters, strip_width_converters  # noqa: F401
from .options import (Unit, _channel_pe_attr, _offer_parallel, build_units,  # noqa: F401
                      divisors, edge_fifo)
from .search import (MIN_INTERVAL, fold, fold_for_fps, fold_intervals,  # noqa: F401
                     fold_max_fps, folding_config, load_config)
from .simple import fold_simple  # noqa: F401

__all__ = ["DEFAULT_BUDGET", "MIN_INTERVAL", "Unit", "budget_of", "build_units", "divisors",
           "edge_fifo", "fold", "fold_for_fps", "fold_intervals", "fold_max_fps", "fold_simple",
           "folding_config", "in_elems", "insert_width_converters", "load_config", "out_elems",
           "strip_width_converters"]
