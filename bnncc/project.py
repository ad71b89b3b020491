"""`bnncc compile`: write a complete output directory, all or nothing.

Every file is rendered in memory first (HLS project, RTL, report); only then is the
directory written. A directory bnncc did not create (no `.bnncc` marker) is refused
unless `force`; a failure while writing removes what was written. Nothing is written
outside the output directory.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from . import __version__
from .errors import BnnccError

MARKER = ".bnncc"


def render_project(design, board, clock_mhz: float, source: str) -> dict[str, bytes]:
    from .backends import hls, rtl
    from .report import report_files
    files: dict[str, bytes] = {}
    for name, data in hls.render(design, part=board.part, clock_mhz=clock_mhz).items():
        files[f"hls/{name}"] = data
    for name, text in rtl.render(design).items():
        files[f"rtl/{name}"] = text.encode() if isinstance(text, str) else text
    files.update(report_files(design, board, clock_mhz, source))
    files[MARKER] = json.dumps({"tool": "bnncc", "version": __version__}).encode() + b"\n"
    return dict(sorted(files.items()))


def write_project(files: dict[str, bytes], outdir: str, force: bool = False) -> Path:
    out = Path(outdir)
    existed = out.exists()
    if existed:
        if not out.is_dir():
            raise BnnccError("output path exists and is not a directory", file=str(out))
        if not (out / MARKER).is_file() and not force:
            raise BnnccError("output directory exists and was not created by bnncc; "
                             "use --force to replace it", file=str(out))
    try:
        if existed:
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        out.mkdir(parents=True, exist_ok=True)
        root = out.resolve()
        for rel, data in files.items():
            p = (out / rel)
            if root not in p.resolve().parents:
                raise BnnccError(f"refusing to write outside the output directory: {rel}")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
    except OSError as e:
        shutil.rmtree(out, ignore_errors=True)
        raise BnnccError(f"cannot write the output directory: {e.strerror}", file=str(out)) from None
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return out
