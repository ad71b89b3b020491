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
from ..folding import in_elems, out_elems
from ..layers import MVAU, LabelSelect, MaxPool, SlidingWindow, Thresholding, WidthConverter
from ..streams import encode

TOP = "bnncc_top"
FIFO_DEPTH = 2


def templates_dir() -> Path:
    return resources.templates_dir()


# --------------------------------------------------------------------------- helpers
def ubits(n: int) -> int:
    """Bits of an unsigned counter holding 0..n."""
    return max(1, int(n).bit_length())


def sbits(lo: int, hi: int) -> int:
    """Bits of a two's complement value holding lo..hi."""
    lo, hi = int(lo), int(hi)
    return max(int(hi).bit_length(), int(-lo - 1).bit_length() if lo < 0 else 0) + 1


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
    style = getattr(l, "mem_style", None)
    if style is None:
        style = "block" if l.mh * l.mw * l.wdt.bits >= 16384 else "lut"
    return "logic" if style == "lut" else "block"


def _mvau(l: MVAU, mod: str, files: dict) -> dict:
    nf, sf = l.mh // l.pe, l.mw // l.simd
    xb, wb = l.idt.bits, l.wdt.bits
    w = np.asarray(l.weights, np.int64)
    if l.binary:
        if not (l.idt.is_bipolar and l.wdt.is_bipolar):
            raise BnnccError(f"{l.name}: xnor-popcount MVAU needs bipolar input and weights")
        dw = ubits(l.simd) + 1
        lo, hi = 0, l.mw
    else:
        xlo, xhi = _x_range(l.idt)
        mx = max(abs(xlo), abs(xhi))
        dw = sbits(-l.simd * mx * int(np.abs(w).max(initial=1)), l.simd * mx * int(np.abs(w).max(initial=1)))
        dw = max(dw, xb + 1, wb + 1)    # no narrower than the x*w operands (exact; no WIDTHTRUNC)
        lo = int(np.minimum(xlo * w, xhi * w).sum(1).min())
        hi = int(np.maximum(xlo * w, xhi * w).sum(1).max())
    accw = max(sbits(lo - 1, hi + 1), dw + 1, l.odt.bits + 1)
    nt = 0 if l.thresholds is None else int(l.thresholds.shape[1])
    if nt and l.odt.is_bipolar and nt != 1:
        raise BnnccError(f"{l.name}: bipolar output with {nt} thresholds")
    wt = encode(l.weight_tiles(), l.wdt)                   # (PE, NF*SF, SIMD)
    wt = wt.transpose(1, 0, 2).reshape(nf * sf, l.pe * l.simd)
    files[f"{mod}_w.mem"] = mem_lines(wt, wb)
    ctx = dict(name=l.name, module=mod, mh=l.mh, mw=l.mw, pe=l.pe, simd=l.simd, nf=nf, sf=sf,
               xb=xb, wb=wb, dw=dw, accw=accw, ob=l.odt.bits, nt=nt, binary=bool(l.binary),
               x_mode=mode(l.idt), w_mode=mode(l.wdt), idt=l.idt, wdt=l.wdt, odt=l.odt,
               iw=l.simd * xb, ow=l.pe * l.odt.bits, nfw=ubits(nf - 1), sfw=ubits(sf - 1),
               waw=ubits(nf * sf - 1), wmem=f"{mod}_w.mem", out_base=out_base(l.odt),
               rom_style=rom_style(l))
    if nt:
        t = np.clip(l.threshold_tiles(), lo - 1, hi + 1)   # (PE, NF, nT)
        tc = (t & ((1 << accw) - 1)).astype(np.uint64).transpose(1, 0, 2).reshape(nf, l.pe * nt)
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
                tmem=f"{mod}_t.mem", nmem=f"{mod}_n.mem")


def _swg(l: SlidingWindow, mod: str, files: dict) -> dict:
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
                kxw=ubits(kw - 1), cfw=ubits(cf - 1),
                ram_style="block" if nr * roww * l.simd * eb >= 16384 else "distributed")


def _maxpool(l: MaxPool, mod: str, files: dict) -> dict:
    ih, iw, c = l.in_shape
    oh, ow = l.out_shape[0], l.out_shape[1]
    (kh, kw), (sh, sw) = l.kernel, l.stride
    if not (kh == kw == sh == sw):
        raise BnnccError(f"{l.name}: RTL max pool supports square kernel == stride only "
                         f"(got kernel {l.kernel}, stride {l.stride})")
    k = kh
    cf = c // l.pe
    gx = ceil(iw / k)
    return dict(name=l.name, module=mod, ih=ih, iw_px=iw, c=c, oh=oh, ow_px=ow, k=k, pe=l.pe,
                cf=cf, eb=l.idt.bits, wordw=l.pe * l.idt.bits, idt=l.idt,
                signed=l.idt.signed and not l.idt.is_bipolar, cfw=ubits(cf - 1),
                kw_w=ubits(k - 1), xw=ubits(gx), bidx=ubits(ow * cf - 1), yw=ubits(ceil(ih / k)), bw=ubits(gx * cf),
                xcw=ubits(iw - 1), ycw=ubits(ih - 1))


def _labelselect(l: LabelSelect, mod: str, files: dict) -> dict:
    if l.idt.is_bipolar:
        raise BnnccError(f"{l.name}: label select on bipolar values is not supported in RTL")
    ixw = ubits(l.labels)
    return dict(name=l.name, module=mod, labels=l.labels, pe=l.pe, k=l.k, xb=l.idt.bits,
                x_mode=mode(l.idt), vw=l.idt.bits + 1, ixw=ixw, kw_w=ubits(l.k - 1),
                ob=l.odt.bits, sel_expr=fit("sel", ixw, l.odt.bits), idt=l.idt,
                iw=l.pe * l.idt.bits)


KIND = {MVAU: ("mvau", _mvau), Thresholding: ("thresholding", _thresholding),
        SlidingWindow: ("swg", _swg), MaxPool: ("maxpool", _maxpool),
        LabelSelect: ("labelselect", _labelselect)}


# --------------------------------------------------------------------------- design level
def chain(design) -> list:
    g = design.graph
    layers = design.layers()
    for a, b in zip(layers, layers[1:]):
        if list(g.successors(a.name)) != [b.name] or list(g.predecessors(b.name)) != [a.name]:
            raise BnnccError("RTL backend supports straight-line designs only "
                             f"(branch at {a.name})")
    return layers


def edge_fifo_depth(consumer, minimum: int = FIFO_DEPTH) -> int:
    """FIFO depth in front of a layer. An MVAU with several neuron folds reads its input
    only during fold 0; a FIFO holding one input vector (MW/SIMD words) lets the producer
    run on while the MVAU works through the other folds."""
    if isinstance(consumer, MVAU) and consumer.mh // consumer.pe > 1:
        return max(minimum, consumer.mw // consumer.simd + 2)
    return minimum


def stream_info(design) -> dict:
    """Words and widths of the top-level input and output streams."""
    layers = chain(design)
    first, last = layers[0], layers[-1]
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


def render(design, fifo_depth: int = FIFO_DEPTH) -> dict[str, str]:
    """All files of the rtl directory as {name: text}."""
    env = _env()
    layers = chain(design)
    files: dict[str, str] = {}
    files["bnncc_fifo.v"] = env.get_template("fifo.v.j2").render()
    files["bnncc_dwc.v"] = env.get_template("dwc.v.j2").render()
    stages, signals = [], []
    sig = "s_in"
    signals.append((sig, in_elems(layers[0]) * layers[0].idt.bits))
    for idx, l in enumerate(layers):
        mod = "bnncc_" + ident(l.name)
        if mod in (TOP, "bnncc_fifo", "bnncc_dwc"):
            mod += "_layer"
        ow = out_elems(l) * l.odt.bits
        if isinstance(l, WidthConverter):
            ie, oe, eb = l.in_elems, l.out_elems, l.idt.bits
            if ie % oe and oe % ie:       # neither divides: split to the gcd, then gather
                g = gcd(ie, oe)
                mid = f"{ident(l.name)}_mid"
                signals.append((mid, g * eb))
                stages.append(dict(fifo=False, module="bnncc_dwc", inst=f"u_{ident(l.name)}_a",
                                   params=f" #(.EB({eb}), .IN_E({ie}), .OUT_E({g}))", i=sig, o=mid))
                ie, sig = g, mid
            nxt = f"{ident(l.name)}_out"
            stages.append(dict(fifo=False, module="bnncc_dwc", inst=f"u_{ident(l.name)}",
                               params=f" #(.EB({eb}), .IN_E({ie}), .OUT_E({oe}))", i=sig, o=nxt))
        else:
            kind, fn = KIND[type(l)]
            ctx = fn(l, mod, files)
            files[f"{mod}.v"] = env.get_template(f"{kind}.v.j2").render(L=ctx)
            nxt = f"{ident(l.name)}_out"
            stages.append(dict(fifo=False, module=mod, inst=f"u_{ident(l.name)}", params="",
                               i=sig, o=nxt))
        signals.append((nxt, ow))
        sig = nxt
        if idx != len(layers) - 1 and fifo_depth > 0:
            f = f"{ident(l.name)}_q"
            depth = edge_fifo_depth(layers[idx + 1], fifo_depth)
            stages.append(dict(fifo=True, inst=f"u_{ident(l.name)}_fifo", w=ow, depth=depth,
                               i=sig, o=f))
            signals.append((f, ow))
            sig = f
    info = stream_info(design)
    files[f"{TOP}.v"] = env.get_template("top.v.j2").render(
        top=TOP, source=Path(str(design.source)).name, fifo_depth=fifo_depth, stages=stages,
        signals=signals, in_elems=info["in_elems"], out_elems=info["out_elems"],
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
