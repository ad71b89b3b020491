"""Per-layer contexts of the HLS backend: the numbers each templates/hls/<kind>.hpp.j2 needs.

One `_ctx_<kind>` per layer kind (CONTEXT_OF), plus the literal and naming helpers they
share; bnncc.backends.hls renders them into the project.
"""
from __future__ import annotations

import re

import numpy as np

from ..datatypes import DataType
from ..errors import BnnccError
from ..layers import (MVAU, VVAU, AddStreams, Concat, Duplicate, LabelSelect, MaxPool, SumPool,
                      SlidingWindow, Thresholding, WidthConverter, in_elems, out_elems)
from ..layers.thresholding import out_levels
from ..streams import encode

_CXX_WORDS = {"and", "or", "not", "xor", "int", "char", "void", "main", "out", "in", "buf",
              "class", "struct", "union", "for", "while", "if", "else", "do", "return", "new",
              "delete", "default", "case", "switch", "const", "static", "auto", "register",
              "signed", "unsigned", "long", "short", "float", "double", "bool", "true", "false",
              "top", "tb", "std", "hls", "ap_int", "ap_uint",
              # names in tb.cpp's main() and its helpers
              "frames", "outdir", "trace", "fin", "fout", "argc", "argv", "f", "i", "w",
              "open_or_die", "read_word", "write_word", "expect_drained", "write_trace"}


# -- numbers and literals ------------------------------------------------------------------

def signed_bits(lo: int, hi: int) -> int:
    """Width of the narrowest two's complement type holding [lo, hi] (and 0)."""
    lo, hi = min(int(lo), 0), max(int(hi), 0)
    return max(int(hi).bit_length(), int(-lo - 1).bit_length()) + 1


def word_literals(values: np.ndarray, dt: DataType) -> np.ndarray:
    """Integer values (..., E) -> C++ literals of packed ap_uint<E * dt.bits> words (...).

    Words up to 64 bits are hex integer literals; wider words use ap_uint's string
    constructor (radix 16)."""
    values = np.asarray(values)
    lead, e = values.shape[:-1], values.shape[-1]
    width = e * dt.bits
    codes = encode(values.reshape(-1, e), dt)                       # (M, E) uint64
    shifts = np.arange(dt.bits, dtype=np.uint64)
    bits = ((codes[..., None] >> shifts) & np.uint64(1)).astype(np.uint8).reshape(len(codes), -1)
    ndig = (width + 3) // 4
    bits = np.concatenate([bits, np.zeros((len(codes), 4 * ndig - width), np.uint8)], axis=1)
    nib = bits.reshape(len(codes), ndig, 4) @ np.array([1, 2, 4, 8], np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", np.uint8)[nib[:, ::-1]]
    text = digits.tobytes().decode("ascii")
    hexes = [text[i * ndig:(i + 1) * ndig] for i in range(len(codes))]
    if width <= 64:
        lits = [f"0x{h}ULL" for h in hexes]
    else:
        # the 0x prefix matters: ap_uint reads a leading "0b" / "0d" / "0o" as a radix
        lits = [f'ap_uint<{width}>("0x{h}", 16)' for h in hexes]
    return np.array(lits, dtype=object).reshape(lead)


def chunk_literals(values: np.ndarray, dt: DataType) -> np.ndarray:
    """Integer values (..., E) -> C++ initializers of packed words stored as 64-bit chunks,
    least significant chunk first: "{0x...ULL, 0x...ULL}" (...). Used for words wider than
    64 bits, whose ap_uint string constructors would make g++ slow on large weight arrays."""
    values = np.asarray(values)
    lead, e = values.shape[:-1], values.shape[-1]
    nch = -(-(e * dt.bits) // 64)
    flat = word_literals(values.reshape(-1, e), dt)
    out = []
    for lit in flat:
        h = lit.split('"0x', 1)[1].split('"', 1)[0] if lit.startswith("ap_uint") else lit[2:-3]
        h = h.rjust(16 * nch, "0")
        chunks = [h[len(h) - 16 * (k + 1):len(h) - 16 * k] for k in range(nch)]
        out.append("{" + ", ".join(f"0x{c}ULL" for c in chunks) + "}")
    return np.array(out, dtype=object).reshape(lead)


def builtin_uint(bits: int) -> str | None:
    """Smallest built-in unsigned type of at least `bits` bits (None above 64)."""
    for width, name in ((8, "unsigned char"), (16, "unsigned short"), (32, "unsigned int"),
                        (64, "unsigned long long")):
        if bits <= width:
            return name
    return None


def builtin_int(bits: int) -> str:
    if bits > 64:
        raise BnnccError(f"thresholds of {bits} bits are not supported")
    return "int" if bits <= 32 else "long long"


def _rows(items, indent: str = "    ", width: int = 100) -> str:
    """Comma-separated C initializer items, wrapped to about `width` columns."""
    items = [str(x) for x in items]
    longest = max((len(x) for x in items), default=1)
    per_line = max(1, (width - len(indent)) // (longest + 2))
    lines = [indent + ", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n".join(lines)


def _threshold_rows(tiles: np.ndarray) -> list[str]:
    """(PE, NF, NT) ints -> one initializer body per PE."""
    out = []
    for p in range(tiles.shape[0]):
        groups = ["{" + ", ".join(row) + "}" for row in np.asarray(tiles[p], np.int64).astype(str).tolist()]
        out.append(_rows(groups))
    return out


# -- per-layer template parameters -------------------------------------------------------

def c_name(name: str) -> str:
    s = re.sub(r"[^0-9A-Za-z_]", "_", name)
    if not s or s[0].isdigit() or s in _CXX_WORDS or s.startswith(("bnncc", "s_", "t_")):
        s = "L_" + s
    return s


def _base(layer, name: str) -> dict:
    ie, oe = in_elems(layer), out_elems(layer)
    dts = layer.in_dtypes
    n_out = layer.n if isinstance(layer, Duplicate) else 1
    # Function parameters: the input streams in design.inputs_of order, then the outputs.
    ins = [{"arg": "in" if len(dts) == 1 else f"in{i}", "bits": ie * dt.bits, "dt": dt}
           for i, dt in enumerate(dts)]
    outs = [{"arg": f"out{k}" if isinstance(layer, Duplicate) else "out",
             "bits": oe * layer.odt.bits} for k in range(n_out)]
    return {
        "name": name, "kind": layer.kind, "idt": layer.idt, "odt": layer.odt,
        "in_shape": list(layer.in_shape), "out_shape": list(layer.out_shape),
        "in_elems": ie, "out_elems": oe,
        "in_bits": ie * layer.idt.bits, "out_bits": oe * layer.odt.bits,
        "in_words": int(np.prod(layer.in_shape)) // ie,
        "out_words": int(np.prod(layer.out_shape)) // oe,
        "cycles": layer.cycles(), "ins": ins, "outs": outs, "ports": ins + outs,
    }


def _ctx_mvau(l: MVAU, c: dict) -> dict:
    pe, simd = l.pe, l.simd
    if l.mh % pe or l.mw % simd:
        raise BnnccError(f"{l.name}: PE={pe} must divide MH={l.mh} and SIMD={simd} MW={l.mw}")
    if l.binary:
        acc_bits = signed_bits(-(l.mw // 2), l.mw)   # a border start value may dip to -MW/2
    else:
        xmax = max(abs(l.idt.min), abs(l.idt.max))
        bound = int(np.abs(l.weights).sum(axis=1).max(initial=0)) * xmax
        acc_bits = signed_bits(-bound, bound)
    if l.accdt is not None:
        acc_bits = max(acc_bits, signed_bits(l.accdt.min, l.accdt.max))
    wbits = simd * l.wdt.bits
    wchunks = 0 if wbits <= 64 else -(-wbits // 64)
    lits = (chunk_literals if wchunks else word_literals)(l.weight_tiles(), l.wdt)  # (PE, NF*SF)
    style = l.mem_style or l.default_mem_style()
    c.update(wimpl="lutram" if style == "lut" else "bram",
             wmem_note={"lut": "LUT ROM", "block": "block RAM",
                        "uram": "block RAM (a ROM cannot be initialized in URAM)"}[style])
    c.update(mh=l.mh, mw=l.mw, pe=pe, simd=simd, nf=l.mh // pe, sf=l.mw // simd,
             pixels=l.pixels, binary=bool(l.binary), wdt=l.wdt, wword_bits=simd * l.wdt.bits,
             wword_ctype=builtin_uint(simd * l.wdt.bits), wchunks=wchunks,
             in_chunks=-(-c["in_bits"] // 64),
             acc_bits=acc_bits, weight_rows=[_rows(row) for row in lits],
             thresholds=None, nt=0, tbits=0, tctype="int", threshold_rows=[], out_base=0)
    c["border"] = _border_ctx(l) if l.border is not None else None
    return _fused_thresholds(l, c)


def _fused_thresholds(l, c: dict) -> dict:
    """The threshold stage fused into an MVAU or VVAU (its rows per PE), if it has one."""
    if l.thresholds is not None:
        t = np.asarray(l.thresholds, np.int64)
        if l.odt.is_bipolar and t.shape[1] != 1:
            raise BnnccError(f"{l.name}: a bipolar output needs exactly one threshold per row")
        tbits = signed_bits(t.min(initial=0), t.max(initial=0))
        c.update(thresholds=True, nt=int(t.shape[1]), tbits=tbits, tctype=builtin_int(tbits),
                 threshold_rows=_threshold_rows(l.threshold_tiles()),
                 out_base=out_levels(l.odt)[0])
    return c


def _border_ctx(l: MVAU) -> dict:
    """Class tables and per-PE correction rows: PE p, address cls * NF + nf holds the
    correction of row nf * PE + p in class cls."""
    b, nf = l.border, l.mh // l.pe
    corr = l.corrections()                                      # (NCLS, MH)
    tiles = corr.reshape(b.n_classes, nf, l.pe).transpose(2, 0, 1).reshape(l.pe, -1)
    return dict(oh=b.out_hw[0], ow=b.out_hw[1], ncol=b.n_col, depth=b.n_classes * nf,
                rowcls=", ".join(map(str, b.rows()[0].tolist())),
                colcls=", ".join(map(str, b.cols()[0].tolist())),
                rows=[_rows(r) for r in tiles.tolist()])


def _ctx_vvau(l: VVAU, c: dict) -> dict:
    if l.groups % l.pe:
        raise BnnccError(f"{l.name}: PE={l.pe} must divide the {l.groups} groups")
    lo, hi, m = l.acc_bounds()
    acc_bits = signed_bits(min(lo, -l.simd * l.cin * m), max(hi, l.simd * l.cin * m))
    w = l.weight_tiles()                                    # (PE, GF*KF, COUT*SIMD*CIN)
    rows = ["\n".join("    {" + ", ".join(str(int(v)) for v in addr) + "},"
                      for addr in w[p]).rstrip(",") for p in range(l.pe)]
    c.update(groups=l.groups, cin=l.cin, cout=l.cout, k=l.k, pe=l.pe, gf=l.groups // l.pe,
             simd=l.simd, kf=l.k // l.simd,
             pixels=l.pixels, binary=bool(l.binary), wdt=l.wdt, acc_bits=acc_bits,
             weight_rows=rows, thresholds=None, nt=0, tbits=0, tctype="int",
             threshold_rows=[], out_base=0)
    return _fused_thresholds(l, c)


def _ctx_thresholding(l: Thresholding, c: dict) -> dict:
    t = np.asarray(l.thresholds, np.int64)
    pe, ch = l.pe, l.channels
    if ch % pe:
        raise BnnccError(f"{l.name}: PE={pe} must divide the {ch} channels")
    if l.odt.is_bipolar and t.shape[1] != 1:
        raise BnnccError(f"{l.name}: a bipolar output needs exactly one threshold per channel")
    nf = ch // pe
    neg = None
    if l.negate is not None and np.any(l.negate):
        tiles = np.asarray(l.negate, bool).reshape(nf, pe).T
        neg = [", ".join(str(int(v)) for v in row) for row in tiles]
    lo, hi = l.idt.min, l.idt.max
    c.update(pe=pe, nf=nf, channels=ch, pixels=int(np.prod(l.in_shape[:-1])),
             nt=int(t.shape[1]), tbits=signed_bits(t.min(initial=0), t.max(initial=0)),
             tctype=builtin_int(signed_bits(t.min(initial=0), t.max(initial=0))),
             threshold_rows=_threshold_rows(l.threshold_tiles()), negate_rows=neg,
             xbits=signed_bits(min(lo, -hi), max(hi, -lo)),
             out_base=out_levels(l.odt)[0], out_step=out_levels(l.odt)[1])
    return c


def _impl(style: str) -> str:
    """Vitis BIND_STORAGE impl of a memory style the optimizer chose."""
    return {"block": "bram", "uram": "uram", "lut": "lutram", "distributed": "lutram"}[style]


def _ctx_swg(l: SlidingWindow, c: dict) -> dict:
    ih, iw, ch = l.in_shape
    oh, ow = l.out_shape[0], l.out_shape[1]
    (kh, kw), (sh, sw) = l.kernel, l.stride
    if l.parallel:            # a whole pixel in, a whole window out, per cycle
        hp, wp = l.padded()
        pw = ch * l.idt.bits
        c.update(template="swg_parallel.hpp.j2", ih=ih, iw=iw, channels=ch, kh=kh, kw=kw,
                 sh=sh, sw=sw, pads=list(l.pads), pad_value=l.pad_value, oh=oh, ow=ow, hp=hp,
                 wp=wp, lb_bits=max(1, (kh - 1) * pw), col_bits=kh * pw,
                 pad_word=word_literals(np.full((ch,), l.pad_value), l.idt).item())
        return c
    if ch % l.simd:
        raise BnnccError(f"{l.name}: SIMD={l.simd} must divide the {ch} channels")
    pad_word = word_literals(np.full((l.simd,), l.pad_value), l.idt).item()
    fill, blocks = l.schedule()
    c.update(ih=ih, iw=iw, channels=ch, simd=l.simd, cf=ch // l.simd, kh=kh, kw=kw, sh=sh, sw=sw,
             pads=list(l.pads), pad_value=l.pad_value, oh=oh, ow=ow, nb=min(kh + sh, ih),
             word_bits=l.simd * l.idt.bits, pad_word=pad_word, depthwise=bool(l.depthwise),
             fill=fill, iters=fill + sum(b for b, _ in blocks),
             buf_impl=_impl(l.buffer_shape()[2]))
    return c


def _full_range(dt: DataType) -> tuple[int, int]:
    """Every value dt's bits can store (bipolar: -1 and +1)."""
    if dt.is_bipolar:
        return -1, 1
    if dt.signed:
        return -(1 << (dt.bits - 1)), (1 << (dt.bits - 1)) - 1
    return 0, (1 << dt.bits) - 1


def _holds(dt: DataType, lo: int, hi: int) -> bool:
    """Whether dt's bits store every integer in [lo, hi] (the hardware wraps otherwise)."""
    flo, fhi = _full_range(dt)
    return flo <= lo and hi <= fhi and not (dt.is_bipolar and (lo, hi) != (-1, 1))


def _ctx_pool(l: MaxPool, c: dict) -> dict:
    """MaxPool and SumPool: one template, non-overlapping windows (or one window across an
    axis, a global pool, whatever its stride)."""
    ih, iw, ch = l.in_shape
    oh, ow = l.out_shape[0], l.out_shape[1]
    (kh, kw), (sh, sw) = l.kernel, l.stride
    for axis, i, o, k, st in (("rows", ih, oh, kh, sh), ("columns", iw, ow, kw, sw)):
        if k > i or o != (i - k) // st + 1:
            raise BnnccError(f"{l.name}: {o} output {axis} do not follow from {i} input {axis}, "
                             f"kernel {k} and stride {st}")
        if o != 1 and k != st:
            raise BnnccError(f"{l.name}: the HLS pool supports non-overlapping windows only: "
                             f"kernel == stride, or one window across the {axis} "
                             f"(kernel {[kh, kw]}, stride {[sh, sw]})")
    if ch % l.pe:
        raise BnnccError(f"{l.name}: PE={l.pe} must divide the {ch} channels")
    if isinstance(l, SumPool):
        n = kh * kw
        if l.odt.is_bipolar or not _holds(l.odt, n * l.idt.min, n * l.idt.max):
            raise BnnccError(f"{l.name}: output type {l.odt} cannot hold a sum of {n} "
                             f"values of {l.idt}")
    elif (l.odt.bits, l.odt.kind) != (l.idt.bits, l.idt.kind):
        raise BnnccError(f"{l.name}: a max pool outputs its input type ({l.idt}), not {l.odt}")
    c.update(op="sum" if isinstance(l, SumPool) else "max", ih=ih, iw=iw, channels=ch,
             pe=l.pe, cf=ch // l.pe, kh=kh, kw=kw, sh=sh, sw=sw, oh=oh, ow=ow)
    return c


def _ctx_duplicate(l: Duplicate, c: dict) -> dict:
    if l.odt.bits != l.idt.bits:
        raise BnnccError(f"{l.name}: a duplicate outputs its input type ({l.idt}), not {l.odt}")
    return c


def _ctx_addstreams(l: AddStreams, c: dict) -> dict:
    ch = int(l.in_shape[-1])
    if ch % l.pe or l.pe_channels() % l.pe:
        raise BnnccError(f"{l.name}: PE={l.pe} must divide the {ch} channels and the "
                         "channel words each operand streams")
    ta, tb = l.idt, l.idt_b
    prods, ends = [], []
    for ka, kb in set(zip(*l.factors())):
        ka, kb = int(ka), int(kb)
        prods += [ka * ta.min, ka * ta.max, kb * tb.min, kb * tb.max, ka, kb]
        ends += [ka * a + kb * b for a in (ta.min, ta.max) for b in (tb.min, tb.max)]
        if max(abs(ka), abs(kb)) >= 1 << 62:
            raise BnnccError(f"{l.name}: factors {ka} and {kb} do not fit a 64-bit literal")
    if l.per_channel:
        ka, kb = "ka[c]", "kb[c]"
    else:
        ka, kb = int(l.ka), int(l.kb)
    if l.odt.is_bipolar or not _holds(l.odt, min(ends), max(ends)):
        raise BnnccError(f"{l.name}: output type {l.odt} cannot hold {ka} * {ta} + {kb} * {tb} "
                         f"(from {min(ends)} to {max(ends)})")
    sum_bits = signed_bits(min(prods + ends), max(prods + ends))
    c.update(pe=l.pe, words=int(np.prod(l.in_shape)) // l.pe, ka=ka, kb=kb,
             idt_b=tb, sum_bits=sum_bits, lo=min(ends), hi=max(ends),
             per_channel=l.per_channel, ch=ch, cf=ch // l.pe,
             ka_list=", ".join(f"{int(k)}LL" for k in l.factors()[0]),
             kb_list=", ".join(f"{int(k)}LL" for k in l.factors()[1]),
             masked=l.masked, words_a=int(np.prod(l.in_shapes[0])) // l.pe,
             words_b=int(np.prod(l.in_shapes[1])) // l.pe,
             la_list=", ".join("true" if x else "false" for x in l.live_words(0)),
             lb_list=", ".join("true" if x else "false" for x in l.live_words(1)))
    return c


def _ctx_concat(l: Concat, c: dict) -> dict:
    pe, odt = l.pe, l.odt
    parts = []
    for i, (ch, dt, port) in enumerate(zip(l.channels, l.in_dtypes, c["ins"])):
        if ch % pe:
            raise BnnccError(f"{l.name}: PE={pe} must divide the {ch} channels of input {i}")
        if odt.is_bipolar and not dt.is_bipolar:
            raise BnnccError(f"{l.name}: a bipolar output needs bipolar inputs (input {i} is {dt})")
        if not _holds(odt, dt.min, dt.max):
            raise BnnccError(f"{l.name}: output type {odt} cannot hold input {i} ({dt})")
        # equal widths and both bipolar or both not: the bits of every value are the same
        verbatim = dt.bits == odt.bits and dt.is_bipolar == odt.is_bipolar
        parts.append(dict(port, channels=int(ch), words=int(ch) // pe, verbatim=verbatim))
    c.update(pe=pe, parts=parts, pixels=int(np.prod(l.in_shape[:-1])),
             words=sum(p["words"] for p in parts), convert=not all(p["verbatim"] for p in parts))
    return c


def _ctx_labelselect(l: LabelSelect, c: dict) -> dict:
    labels = l.labels
    if labels % l.pe:
        raise BnnccError(f"{l.name}: PE={l.pe} must divide the {labels} labels")
    if l.odt.max < labels - 1 or l.odt.signed:
        raise BnnccError(f"{l.name}: output type {l.odt} cannot hold label {labels - 1}")
    lo, hi = l.idt.min, l.idt.max
    c.update(k=l.k, labels=labels, pe=l.pe, nf=labels // l.pe,
             rows=int(np.prod(l.in_shape[:-1])), vbits=signed_bits(lo - 1, hi), empty=lo - 1)
    return c


def _ctx_dwc(l: WidthConverter, c: dict) -> dict:
    e = int(np.prod(l.in_shape))
    if e % l.in_elems or e % l.out_elems:
        raise BnnccError(f"{l.name}: {e} elements do not split into words of "
                         f"{l.in_elems} and {l.out_elems}")
    c.update(dt=l.idt, buf_bits=(l.in_elems + l.out_elems) * l.idt.bits)
    return c


def _ctx_depth_to_space(l, c: dict) -> dict:
    """DepthToSpace / SpaceToDepth: a ping-pong block buffer read in output order."""
    if l.pe_channels() % l.pe:
        raise BnnccError(f"{l.name}: PE={l.pe} must divide the {l.pe_channels()} elements "
                         f"that stay together in {l.mode} order")
    n, st = l.loops()
    c.update(mode=l.mode, b=l.block, pe=l.pe, nb=l.blocks(), bw=l.block_words(),
             loops=list(n), strides=list(st), buf_impl=_impl(l.buffer_style()))
    return c


def _ctx_window_max(l, c: dict) -> dict:
    if l.channels % l.pe:
        raise BnnccError(f"{l.name}: PE={l.pe} must divide the {l.channels} channels")
    c.update(kh=l.kernel[0], kw=l.kernel[1], pe=l.pe, cf=l.channels // l.pe)
    return c


CONTEXT_OF = {
    "MVAU": _ctx_mvau, "VVAU": _ctx_vvau, "Thresholding": _ctx_thresholding, "SlidingWindow": _ctx_swg,
    "MaxPool": _ctx_pool, "SumPool": _ctx_pool, "LabelSelect": _ctx_labelselect,
    "WidthConverter": _ctx_dwc, "Duplicate": _ctx_duplicate, "AddStreams": _ctx_addstreams,
    "Concat": _ctx_concat, "DepthToSpace": _ctx_depth_to_space, "WindowMax": _ctx_window_max,
}
