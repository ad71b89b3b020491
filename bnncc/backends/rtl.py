"""RTL backend: synthesizable Verilog for a folded Design, one module per layer, wired
by FIFOs in a generated top (`bnncc_top`), plus the Verilator testbench.

Every layer kind has its template in templates/rtl/<kind>.v.j2; this module computes the
template parameters (widths, ROM contents) from the layer objects. Weights and thresholds
go to .mem files beside the Verilog, read with $readmemh (paths relative to the rtl
directory: run simulators and Yosys from there). Output is deterministic: the same
design gives byte-identical files.
"""
from __future__ import annotations

import functools
import hashlib
import re
from math import ceil, gcd
from pathlib import Path

import jinja2
import numpy as np

from .. import resources
from ..datatypes import DataType
from ..errors import BnnccError
from ..layers import (MVAU, VVAU, AddStreams, Concat, DepthToSpace, Duplicate, LabelSelect,
                      MaxPool, SlidingWindow, SumPool, Thresholding, WidthConverter, WindowMax,
                      in_elems, out_elems)
from ..layers import popcount
from ..layers.cost import sbits, ubits
from ..layers.streams import naf
from ..passes.fifos import FIFO_MIN_DEPTH, fifo_depths
from ..passes.streams import check_streams
from ..streams import encode

TOP = "bnncc_top"
FIFO_DEPTH = FIFO_MIN_DEPTH


def templates_dir() -> Path:
    return resources.templates_dir()


# --------------------------------------------------------------------------- helpers
def fit(sig: str, w: int, to: int) -> str:
    """Verilog expression of the unsigned signal `sig` (w bits) resized to `to` bits."""
    if w == to:
        return sig
    if w < to:
        return "{{%d{1'b0}}, %s}" % (to - w, sig)
    return f"{sig}[{to - 1}:0]"


def mode(dt: DataType) -> str:
    return "bipolar" if dt.is_bipolar else ("signed" if dt.signed else "unsigned")


def out_base(odt: DataType) -> int:
    return 0 if odt.is_bipolar else odt.min & ((1 << odt.bits) - 1)


def mem_lines(codes: np.ndarray, bits: int) -> str:
    """codes (R, E) unsigned, E fields of `bits` bits per word, field 0 lowest ->
    $readmemh text, one word per line, most significant hex digit first."""
    codes = np.asarray(codes, dtype=np.uint64)
    r, e = codes.shape
    width = e * bits
    ndig = max(1, ceil(width / 4))
    b = ((codes[:, :, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    b = b.reshape(r, width)
    b = np.concatenate([b, np.zeros((r, ndig * 4 - width), np.uint8)], axis=1)
    nib = (b.reshape(r, ndig, 4) * np.array([1, 2, 4, 8], np.uint8)).sum(-1)[:, ::-1]
    chars = np.frombuffer(b"0123456789abcdef", np.uint8)[nib]
    lines = np.concatenate([chars, np.full((r, 1), ord("\n"), np.uint8)], axis=1)
    return lines.tobytes().decode()


def hexword(values: list[int], bits: int) -> str:
    w = 0
    for i, v in enumerate(values):
        w |= (int(v) & ((1 << bits) - 1)) << (i * bits)
    return format(w, "x")


def ident(name: str) -> str:
    s = re.sub(r"\W", "_", name)
    return s if s[:1].isalpha() else "l_" + s


# --------------------------------------------------------------------------- per kind
def _x_range(dt: DataType) -> tuple[int, int]:
    return (-1, 1) if dt.is_bipolar else (dt.min, dt.max)


def rom_style(l: MVAU) -> str:
    """Yosys/Vivado rom_style of the weight ROM from the layer's weight memory style
    (bnncc.folding chooses it): "block" for BRAM (and URAM, whose contents cannot be
    initialized from a file: the RTL keeps such weights in BRAM), "logic" for LUTs."""
    style = getattr(l, "mem_style", None) or l.default_mem_style()
    return "logic" if style == "lut" else "block"


def _mvau(l: MVAU, mod: str, files: dict) -> dict:
    nf, sf = l.mh // l.pe, l.mw // l.simd
    xb, wb = l.idt.bits, l.wdt.bits
    w = np.asarray(l.weights, np.int64)
    if l.binary:
        if not (l.idt.is_bipolar and l.wdt.is_bipolar):
            raise BnnccError(f"{l.name}: xnor-popcount MVAU needs bipolar input and weights")
        lo, hi = 0, l.mw
    else:
        xlo, xhi = _x_range(l.idt)
        lo = int(np.minimum(xlo * w, xhi * w).sum(1).min())
        hi = int(np.maximum(xlo * w, xhi * w).sum(1).max())
    lw, levels = l.rtl_tree()
    dw = levels[-1][1]
    accw = max(sbits(lo - 1, hi + 1), dw + 1, l.odt.bits + 1)
    nt = 0 if l.thresholds is None else int(l.thresholds.shape[1])
    sgn = "" if l.binary else "$signed"
    tree, nin, win, src = [], l.simd, lw, "lane"
    for k, (n, w_) in enumerate(levels):
        tree.append(dict(n=n, w=w_, nin=nin, win=win, src=src, sgn=sgn))
        nin, win, src = n, w_, f"t{k + 1}"
    dot = f"t{len(levels)}[pa*DW +: DW]"
    top = f"t{len(levels)}"
    dot_ext = (f"{{{{(ACCW-DW){{1'b0}}}}, {dot}}}" if l.binary
               else f"{{{{(ACCW-DW){{{top}[pa*DW+DW-1]}}}}, {dot}}}")
    fd = l.out_fifo_depth()
    if nt and l.odt.is_bipolar and nt != 1:
        raise BnnccError(f"{l.name}: bipolar output with {nt} thresholds")
    wt = encode(l.weight_tiles(), l.wdt)                   # (PE, NF*SF, SIMD)
    # binary: slot-major (lane s of PE p at s*PE + p) for the carry-save popcount tree,
    # bits complemented so that the lane XNOR is a plain XOR
    wt = (wt.transpose(1, 2, 0) ^ 1) if l.binary else wt.transpose(1, 0, 2)
    wt = wt.reshape(nf * sf, l.pe * l.simd)
    files[f"{mod}_w.mem"] = mem_lines(wt, wb)
    ctx = dict(name=l.name, module=mod, mh=l.mh, mw=l.mw, pe=l.pe, simd=l.simd, nf=nf, sf=sf,
               xb=xb, wb=wb, dw=dw, accw=accw, ob=l.odt.bits, nt=nt, binary=bool(l.binary),
               x_mode=mode(l.idt), w_mode=mode(l.wdt), idt=l.idt, wdt=l.wdt, odt=l.odt,
               iw=l.simd * xb, ow=l.pe * l.odt.bits, nfw=ubits(nf - 1), sfw=ubits(sf - 1),
               waw=ubits(nf * sf - 1), wmem=f"{mod}_w.mem", out_base=out_base(l.odt),
               rom_style=rom_style(l), lw=lw, tree=tree, dot_ext=dot_ext, fd=fd,
               uw=ubits(fd), border=None,
               popcount=(popcount.verilog(l.simd, dw, l.pe, "lane", f"t{len(levels)}")
                         if l.binary else None))
    if l.border is not None:
        ctx["border"] = _border(l, mod, nf, accw, files)
    if nt:
        t = np.clip(l.threshold_tiles(), lo - 1, hi + 1)   # (PE, NF, nT)
        tc = (t & ((1 << accw) - 1)).astype(np.uint64).transpose(1, 0, 2).reshape(nf, l.pe * nt)
        files[f"{mod}_t.mem"] = mem_lines(tc, accw)
        ctx["tmem"] = f"{mod}_t.mem"
    return ctx


def _border(l: MVAU, mod: str, nf: int, accw: int, files: dict) -> dict:
    """Class decode (case tables listing the pixels outside the most common class) and the
    correction ROM: address cls * NF + nf holds the PE corrections of that class."""
    b = l.border
    corr = l.corrections()                                       # (NCLS, MH)
    cw = min(sbits(int(corr.min()), int(corr.max())), accw)
    words = corr.reshape(b.n_classes * nf, l.pe) & ((1 << cw) - 1)
    files[f"{mod}_c.mem"] = mem_lines(words.astype(np.uint64), cw)
    (oh, ow), depth = b.out_hw, b.n_classes * nf

    def cases(ids):
        default = int(np.bincount(ids).argmax())
        return default, [(i, int(k)) for i, k in enumerate(ids) if k != default]
    rdef, rcases = cases(b.rows()[0])
    cdef, ccases = cases(b.cols()[0])
    return dict(oh=oh, ow=ow, oyw=ubits(oh - 1), oxw=ubits(ow - 1), ncol=b.n_col,
                rcw=ubits(b.n_row - 1), ccw=ubits(b.n_col - 1), caw=ubits(depth - 1),
                rowcases=rcases, rowdefault=rdef, colcases=ccases, coldefault=cdef,
                depth=depth, cw=cw, cmem=f"{mod}_c.mem")


def _tree(levels: list, lanes: int, lw: int, sgn: str) -> list[dict]:
    """Template context of a registered adder tree (bnncc.layers.tree): level k reads
    the sums of level k-1 (level 1 the lanes)."""
    tree, nin, win, src = [], lanes, lw, "lane"
    for k, (n, w_) in enumerate(levels):
        tree.append(dict(n=n, w=w_, nin=nin, win=win, src=src, sgn=sgn))
        nin, win, src = n, w_, f"t{k + 1}"
    return tree


def _vvau(l: VVAU, mod: str, files: dict) -> dict:
    if l.binary and not (l.idt.is_bipolar and l.wdt.is_bipolar):
        raise BnnccError(f"{l.name}: xnor-popcount VVAU needs bipolar input and weights")
    gf, kf, rows = l.groups // l.pe, l.k // l.simd, l.pe * l.cout
    lw, levels = l.rtl_tree()
    dw, accw = l.rtl_widths()
    lo, hi, _ = l.acc_bounds()
    nt = 0 if l.thresholds is None else int(l.thresholds.shape[1])
    top = f"t{len(levels)}"
    dot = f"{top}[ra*DW +: DW]"
    dot_ext = (f"{{{{(ACCW-DW){{1'b0}}}}, {dot}}}" if l.binary
               else f"{{{{(ACCW-DW){{{top}[ra*DW+DW-1]}}}}, {dot}}}")
    fd = l.out_fifo_depth()
    files[f"{mod}_w.mem"] = mem_lines(l.weight_words(), l.wdt.bits)
    ctx = dict(name=l.name, module=mod, groups=l.groups, cin=l.cin, cout=l.cout, k=l.k,
               pe=l.pe, simd=l.simd, gf=gf, kf=kf, xb=l.idt.bits, wb=l.wdt.bits, dw=dw,
               accw=accw, ob=l.odt.bits, nt=nt, binary=bool(l.binary), x_mode=mode(l.idt),
               w_mode=mode(l.wdt), idt=l.idt, wdt=l.wdt, odt=l.odt,
               iw=l.simd * l.pe * l.cin * l.idt.bits, ow=rows * l.odt.bits,
               kfw=ubits(kf - 1), gfw=ubits(gf - 1), waw=ubits(gf * kf - 1),
               wmem=f"{mod}_w.mem", out_base=out_base(l.odt), rom_style=rom_style(l),
               lw=lw, tree=_tree(levels, l.simd * l.cin, lw, "" if l.binary else "$signed"),
               dot_ext=dot_ext, fd=fd, uw=ubits(fd))
    if nt:
        t = np.clip(l.threshold_tiles(), lo - 1, hi + 1)    # (PE, GF, COUT*nT)
        tc = (t & ((1 << accw) - 1)).astype(np.uint64).transpose(1, 0, 2).reshape(gf, rows * nt)
        files[f"{mod}_t.mem"] = mem_lines(tc, accw)
        ctx["tmem"] = f"{mod}_t.mem"
    return ctx


def _thresholding(l: Thresholding, mod: str, files: dict) -> dict:
    c, nt = l.channels, int(l.thresholds.shape[1])
    nf = c // l.pe
    xlo, xhi = _x_range(l.idt)
    neg = np.zeros(c, bool) if l.negate is None else np.asarray(l.negate, bool)
    lo, hi = (min(xlo, -xhi), max(xhi, -xlo)) if neg.any() else (xlo, xhi)
    tw = max(sbits(lo - 1, hi + 1), l.idt.bits + 2)
    t = np.clip(l.threshold_tiles(), lo - 1, hi + 1)
    tc = (t & ((1 << tw) - 1)).astype(np.uint64).transpose(1, 0, 2).reshape(nf, l.pe * nt)
    files[f"{mod}_t.mem"] = mem_lines(tc, tw)
    files[f"{mod}_n.mem"] = mem_lines(neg.reshape(nf, l.pe).astype(np.uint64), 1)
    return dict(name=l.name, module=mod, c=c, nt=nt, pe=l.pe, nf=nf, nfw=ubits(nf - 1),
                xb=l.idt.bits, x_mode=mode(l.idt), tw=tw, ob=l.odt.bits, out_base=out_base(l.odt),
                idt=l.idt, odt=l.odt, iw=l.pe * l.idt.bits, ow=l.pe * l.odt.bits,
                tmem=f"{mod}_t.mem", nmem=f"{mod}_n.mem", fd=l.out_fifo_depth(),
                uw=ubits(l.out_fifo_depth()))


def _swg_parallel(l: SlidingWindow, mod: str) -> dict:
    ih, iw, c = l.in_shape
    (kh, kw), (sh, sw) = l.kernel, l.stride
    pt, pl, pb, pr = l.pads
    hp, wp = ih + pt + pb, iw + pl + pr
    eb, pw = l.idt.bits, c * l.idt.bits
    pad_code = int(encode(np.array([l.pad_value]), l.idt)[0])
    lbw = (kh - 1) * pw
    return dict(template="swg_parallel", name=l.name, module=mod, ih=ih, iw_px=iw, c=c,
                oh=l.out_shape[0], ow_px=l.out_shape[1], kh=kh, kw=kw, sh=sh, sw=sw,
                pads=list(l.pads), hp=hp, wp=wp, pw=pw, ow=kh * kw * pw, lbw=lbw,
                padword=hexword([pad_code] * c, eb), xw=ubits(wp), yw=ubits(hp),
                sxw=ubits(sw - 1), syw=ubits(sh - 1),
                ram_style=l.buffer_shape()[2] if lbw else "distributed")


def _swg(l: SlidingWindow, mod: str, files: dict) -> dict:
    if l.parallel:
        return _swg_parallel(l, mod)
    ih, iw, c = l.in_shape
    oh, ow = l.out_shape[0], l.out_shape[1]
    (kh, kw), (sh, sw) = l.kernel, l.stride
    cf = c // l.simd
    span = max(kh, sh)
    nr = span + sh
    roww = iw * cf
    m = ih + iw + nr + kh + kw + sh + sw + sum(l.pads) + 4
    eb = l.idt.bits
    pad_code = int(encode(np.array([l.pad_value]), l.idt)[0])
    return dict(name=l.name, module=mod, ih=ih, iw_px=iw, c=c, oh=oh, ow_px=ow, kh=kh, kw=kw,
                sh=sh, sw=sw, pads=list(l.pads), simd=l.simd, cf=cf, nr=nr, roww=roww,
                need_span=span, wordw=l.simd * eb, padword=hexword([pad_code] * l.simd, eb),
                aw=ubits(nr * roww - 1), rw_w=ubits(roww - 1), cntw=ubits(nr), hw=ubits(ih),
                sw_w=m.bit_length() + 1, ohw=ubits(oh - 1), oww=ubits(ow - 1), kyw=ubits(kh - 1),
                kxw=ubits(kw - 1), cfw=ubits(cf - 1), depthwise=bool(l.depthwise),
                ram_style="block" if nr * roww * l.simd * eb >= 16384 else "distributed")


def ext(slice_: str, dt: DataType, to: int) -> str:
    """Verilog expression of one element (`slice_`, dt.bits wide) as a `to`-bit two's
    complement value: bipolar bits become +1 / -1, signed values are sign-extended."""
    b = dt.bits
    if dt.is_bipolar:
        return f"({slice_} ? {to}'d1 : {{{to}{{1'b1}}}})" if to > 1 else slice_
    if b == to:
        return slice_
    if b > to:
        return f"{slice_}[{to - 1}:0]"
    fill = f"{slice_}[{b - 1}]" if dt.signed else "1'b0"
    return "{{%d{%s}}, %s}" % (to - b, fill, slice_)


def _lane(sig: str, bits: int) -> str:
    return f"{sig}[p*{bits} +: {bits}]" if bits > 1 else f"{sig}[p]"


def _pool(l: MaxPool, mod: str, files: dict) -> dict:
    """MaxPool and SumPool: non-overlapping windows (kernel == stride on each axis, or an
    axis with one output: a global pool)."""
    ih, iw, c = l.in_shape
    oh, ow = l.out_shape[0], l.out_shape[1]
    (kh, kw), (sh, sw) = l.kernel, l.stride
    if not ((kh == sh or oh == 1) and (kw == sw or ow == 1)):
        raise BnnccError(f"{l.name}: RTL pooling supports non-overlapping windows only "
                         f"(kernel == stride, or a global pool; got kernel {list(l.kernel)}, "
                         f"stride {list(l.stride)})")
    cf = c // l.pe
    gx = ceil(iw / kw)
    op = "sum" if isinstance(l, SumPool) else "max"
    ob = l.odt.bits if op == "sum" else l.idt.bits
    return dict(name=l.name, module=mod, op=op, ih=ih, iw_px=iw, c=c, oh=oh, ow_px=ow, kh=kh,
                kw=kw, pe=l.pe, cf=cf, eb=l.idt.bits, ob=ob, wordw=l.pe * l.idt.bits,
                ow=l.pe * ob, idt=l.idt, odt=l.odt,
                x_ext=ext(_lane("in_data", l.idt.bits), l.idt, ob),
                signed=l.idt.signed and not l.idt.is_bipolar, cfw=ubits(cf - 1),
                kxw=ubits(kw - 1), kyw=ubits(kh - 1), xw=ubits(gx), bidx=ubits(ow * cf - 1),
                yw=ubits(ceil(ih / kh)), bw=ubits(gx * cf), xcw=ubits(iw - 1), ycw=ubits(ih - 1))


def _duplicate(l: Duplicate, mod: str, files: dict) -> dict:
    return dict(name=l.name, module=mod, n=l.n, w=l.pe * l.idt.bits)


def const_mul_terms(k: int, x: str) -> list[str]:
    return [("+ " if sg > 0 else "- ") + (f"({x} <<< {sh})" if sh else x) for sg, sh in naf(k)]


def _sum_expr(ka: int, kb: int) -> str:
    """ka * xa + kb * xb as shifted adds."""
    expr = " ".join(const_mul_terms(ka, "xa") + const_mul_terms(kb, "xb"))
    return expr[2:] if expr.startswith("+ ") else "-" + expr[2:]


def _packed(vals: list, w: int) -> str:
    """A Verilog literal of vals packed w bits each, vals[0] in the low bits."""
    v = 0
    for k, x in enumerate(vals):
        v |= x << (k * w)
    return f"{len(vals) * w}'h{v:x}"


def _addstreams(l: AddStreams, mod: str, files: dict) -> dict:
    adt, bdt = l.in_dtypes
    ob = l.odt.bits
    sw = max(ob, adt.bits + 1, bdt.bits + 1)     # arithmetic mod 2^SW; the sum fits OB
    ch = int(l.in_shape[-1])
    cf = ch // l.pe
    lanes, rom = None, None
    if not l.per_channel:
        expr = _sum_expr(l.ka, l.kb)
    elif cf == 1:       # PE covers the channels: each lane has its own constants
        expr = None
        lanes = [_sum_expr(x, y) for x, y in zip(*l.factors())]
    else:               # factors of the lane's channel from a ROM on the channel word
        expr = "xa * ka + xb * kb"
        mask = (1 << sw) - 1
        ka, kb = l.factors()
        rom = [dict(w=w, ka=_packed([ka[w * l.pe + p] & mask for p in range(l.pe)], sw),
                    kb=_packed([kb[w * l.pe + p] & mask for p in range(l.pe)], sw))
               for w in range(cf)]
    if ch % l.pe or l.pe_channels() % l.pe:
        raise BnnccError(f"{l.name}: PE={l.pe} must divide the {ch} channels and the "
                         "channel words each operand streams")
    live = [_packed([int(x) for x in l.live_words(i)], 1) for i in (0, 1)]
    return dict(name=l.name, module=mod, pe=l.pe, ka=l.ka, kb=l.kb, adt=adt, bdt=bdt,
                masked=l.masked, live_a=live[0], live_b=live[1],
                per_channel=l.per_channel, lanes=lanes, rom=rom, cf=cf, cw=ubits(cf - 1),
                odt=l.odt, ab=adt.bits, bb=bdt.bits, ob=ob, sw=sw, sum_expr=expr,
                aw=l.pe * adt.bits, bw=l.pe * bdt.bits, ow=l.pe * ob,
                a_ext=ext(_lane("in0_data", adt.bits), adt, sw),
                b_ext=ext(_lane("in1_data", bdt.bits), bdt, sw))


def _concat(l: Concat, mod: str, files: dict) -> dict:
    ob = l.odt.bits
    ins = []
    for k, (ch, dt) in enumerate(zip(l.channels, l.in_dtypes)):
        sl = _lane(f"in{k}_data", dt.bits)
        ins.append(dict(words=ch // l.pe, dt=dt, w=l.pe * dt.bits,
                        ext=sl if l.odt.is_bipolar else ext(sl, dt, ob)))
    return dict(name=l.name, module=mod, pe=l.pe, odt=l.odt, ob=ob, ow=l.pe * ob, ins=ins,
                selw=ubits(len(ins) - 1), cw=ubits(max(i["words"] for i in ins) - 1))


def _labelselect(l: LabelSelect, mod: str, files: dict) -> dict:
    if l.idt.is_bipolar:
        raise BnnccError(f"{l.name}: label select on bipolar values is not supported in RTL")
    ixw = ubits(l.labels)
    return dict(name=l.name, module=mod, labels=l.labels, pe=l.pe, k=l.k, xb=l.idt.bits,
                x_mode=mode(l.idt), vw=l.idt.bits + 1, ixw=ixw, kw_w=ubits(l.k - 1),
                ob=l.odt.bits, sel_expr=fit("sel", ixw, l.odt.bits), idt=l.idt,
                iw=l.pe * l.idt.bits, levels=l.tree_levels())


def _depth_to_space(l: DepthToSpace, mod: str, files: dict) -> dict:
    """The ping-pong reorder buffer: read address steps per carry level (modulo 2^AW)."""
    if l.pe_channels() % l.pe:
        raise BnnccError(f"{l.name}: PE={l.pe} must divide the {l.pe_channels()} elements "
                         f"that stay together in {l.mode} order")
    n, st = l.loops()
    bw = l.block_words()
    width, depth, style = l.buffer_shape()
    aw = ubits(depth - 1)
    delta = [(st[k] - sum((n[m] - 1) * st[m] for m in range(k + 1, 4))) % (1 << aw)
             for k in range(4)]
    what = "SpaceToDepth" if l.mode == "S2D" else f"DepthToSpace ({l.mode})"
    return dict(name=l.name, module=mod, what=what, b=l.block, in_shape=list(l.in_shape),
                out_shape=list(l.out_shape), pe=l.pe, idt=l.idt, ww=width, aw=aw, bw=bw,
                loops=list(n), strides=list(st), cw=[ubits(k - 1) for k in n], delta=delta,
                ram_style=style)


def _window_max(l: WindowMax, mod: str, files: dict) -> dict:
    if l.channels % l.pe:
        raise BnnccError(f"{l.name}: PE={l.pe} must divide the {l.channels} channels")
    return dict(name=l.name, module=mod, kh=l.kernel[0], kw=l.kernel[1], k=l.k, pe=l.pe,
                idt=l.idt, eb=l.idt.bits, ww=l.pe * l.idt.bits, kbits=ubits(l.k - 1),
                mode=mode(l.idt))


KIND = {MVAU: ("mvau", _mvau), VVAU: ("vvau", _vvau), Thresholding: ("thresholding", _thresholding),
        SlidingWindow: ("swg", _swg), MaxPool: ("pool", _pool), SumPool: ("pool", _pool),
        LabelSelect: ("labelselect", _labelselect), Duplicate: ("duplicate", _duplicate),
        AddStreams: ("addstreams", _addstreams), Concat: ("concat", _concat),
        DepthToSpace: ("depth_to_space", _depth_to_space), WindowMax: ("window_max", _window_max)}


# --------------------------------------------------------------------------- design level
def stream_info(design) -> dict:
    """Words and widths of the top-level input and output streams."""
    layers = design.layers()
    first, last = check_streams(design)
    ie, oe = in_elems(first), out_elems(last)
    n_in = int(np.prod(first.in_shape))
    n_out = int(np.prod(last.out_shape))
    return dict(in_elems=ie, out_elems=oe, idt=first.idt, odt=last.odt,
                in_w=ie * first.idt.bits, out_w=oe * last.odt.bits,
                in_words=n_in // ie, out_words=n_out // oe,
                est_cycles=max(l.cycles() for l in layers))


@functools.lru_cache(maxsize=None)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir() / "rtl")),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    env.globals.update(fit=fit, zext=fit)
    return env


def render_layer(l, mod: str, files: dict) -> str:
    """Verilog of one layer as module `mod` (its ROM images go into `files`)."""
    kind, fn = KIND[type(l)]
    ctx = fn(l, mod, files)
    return _env().get_template(f"{ctx.get('template', kind)}.v.j2").render(L=ctx)


def _module_name(l) -> str:
    mod = "bnncc_" + ident(l.name)
    return mod + "_layer" if mod in (TOP, "bnncc_fifo", "bnncc_dwc") else mod


def _dwc_stages(l: WidthConverter, i: str, o: str, signals: list) -> list[dict]:
    """bnncc_dwc converts when one word size divides the other; otherwise split to the
    gcd first, then gather."""
    ie, oe, eb = l.in_elems, l.out_elems, l.idt.bits
    stages = []
    if ie % oe and oe % ie:
        g = gcd(ie, oe)
        mid = f"{ident(l.name)}_mid"
        signals.append((mid, g * eb))
        stages.append(dict(fifo=False, module="bnncc_dwc", inst=f"u_{ident(l.name)}_a",
                           params=f" #(.EB({eb}), .IN_E({ie}), .OUT_E({g}))",
                           ports=[("in", i), ("out", mid)]))
        ie, i = g, mid
    stages.append(dict(fifo=False, module="bnncc_dwc", inst=f"u_{ident(l.name)}",
                       params=f" #(.EB({eb}), .IN_E({ie}), .OUT_E({oe}))",
                       ports=[("in", i), ("out", o)]))
    return stages


def render(design, fifo_depth: int = FIFO_DEPTH) -> dict[str, str]:
    """All files of the rtl directory as {name: text}. Every stream between two blocks
    gets a FIFO of at least `fifo_depth` words, deeper where bnncc.passes.fifos says
    (MVAU inputs, the short side of a split that joins again)."""
    env = _env()
    first, last = check_streams(design)
    layers = design.layers()
    depths = fifo_depths(design)
    reader_map = design.reader_map()
    files: dict[str, str] = {}
    files["bnncc_fifo.v"] = env.get_template("fifo.v.j2").render()
    files["bnncc_dwc.v"] = env.get_template("dwc.v.j2").render()
    stages, signals = [], [("s_in", in_elems(first) * first.idt.bits)]
    feed: dict[tuple[str, int], str] = {(first.name, 0): "s_in"}  # (consumer, idx) -> signal
    for l in layers:
        ins = [feed[(l.name, i)] for i in range(len(design.inputs_of(l.name)))]
        readers = reader_map[l.name]
        w = out_elems(l) * l.odt.bits
        sfx = [str(k) if len(readers) > 1 else "" for k in range(max(1, len(readers)))]
        outs = [f"{ident(l.name)}_out{x}" for x in sfx]
        signals += [(o, w) for o in outs]
        if isinstance(l, WidthConverter):
            stages += _dwc_stages(l, ins[0], outs[0], signals)
        else:
            mod = _module_name(l)
            files[f"{mod}.v"] = render_layer(l, mod, files)
            pin = [("in", ins[0])] if len(ins) == 1 else [(f"in{i}", s) for i, s in enumerate(ins)]
            pout = [("out", outs[0])] if len(outs) == 1 else \
                [(f"out{k}", o) for k, o in enumerate(outs)]
            stages.append(dict(fifo=False, module=mod, inst=f"u_{ident(l.name)}", params="",
                               ports=pin + pout))
        for k, (v, i) in enumerate(readers):
            q = f"{ident(l.name)}_q{sfx[k]}"
            depth = max(fifo_depth, depths[(v, i)]) if fifo_depth > 0 else 0
            if depth:
                stages.append(dict(fifo=True, inst=f"u_{ident(l.name)}_fifo{sfx[k]}", w=w,
                                   depth=depth, i=outs[k], o=q))
                signals.append((q, w))
            feed[(v, i)] = q if depth else outs[k]
    info = stream_info(design)
    out_sig = f"{ident(last.name)}_out"
    files[f"{TOP}.v"] = env.get_template("top.v.j2").render(
        top=TOP, source=Path(str(design.source)).name, stages=stages, signals=signals,
        in_sig="s_in", out_sig=out_sig, in_elems=info["in_elems"], out_elems=info["out_elems"],
        idt=info["idt"], odt=info["odt"], in_w=info["in_w"], out_w=info["out_w"])
    files[f"tb_{TOP}.cpp"] = env.get_template("tb.cpp.j2").render(
        top=TOP, in_w=info["in_w"], out_w=info["out_w"], in_n32=ceil(info["in_w"] / 32),
        out_n32=ceil(info["out_w"] / 32), drain=2000)
    return files


def emit(design, outdir: Path, fifo_depth: int = FIFO_DEPTH) -> list[Path]:
    """Write outdir/rtl/ (Verilog, .mem ROM images, Verilator testbench); returns the paths."""
    rtl = Path(outdir) / "rtl"
    rtl.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in sorted(render(design, fifo_depth).items()):
        p = rtl / name
        data = text.encode()
        if not p.exists() or p.read_bytes() != data:
            p.write_bytes(data)
        out.append(p)
    return out


def verilog_sources(paths: list[Path]) -> list[Path]:
    return [p for p in paths if p.suffix == ".v"]


def content_hash(files: dict[str, str], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return h.hexdigest()[:24]
