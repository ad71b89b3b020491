"""`bnncc compile`: write a complete output directory, all or nothing, and never delete a
file bnncc did not write.

Every file is rendered in memory first (HLS project, RTL, report). They are written to
a temporary sibling of DIR which then takes DIR's place in one rename (an atomic exchange
where the kernel has one), so a compile killed at any moment leaves either the old DIR or
the complete new one. The `.bnncc` marker lists bnncc's own files with their hashes:
only those are ever replaced. Anything else in DIR (files the user added or edited) is
refused by name, or kept as it is with `keep_others`; a DIR holding the model itself is
always refused.
"""
from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

from . import __version__
from .errors import BnnccError

MARKER = ".bnncc"
_TMP, _OLD = ".bnncc-tmp-", ".bnncc-old-"


def render_project(design, board, clock_mhz: float, source: str) -> dict[str, bytes]:
    from .backends import hls, rtl
    from .report import report_files
    files: dict[str, bytes] = {}
    for name, data in hls.render(design, part=board.part, clock_mhz=clock_mhz).items():
        files[f"hls/{name}"] = data
    for name, text in rtl.render(design).items():
        files[f"rtl/{name}"] = text.encode() if isinstance(text, str) else text
    files.update(report_files(design, board, clock_mhz, source))
    files[MARKER] = marker(files)
    return dict(sorted(files.items()))


def marker(files: dict[str, bytes]) -> bytes:
    """The marker: bnncc's own files and their SHA-256, so a later compile knows which
    files in DIR it may replace (a file the user edited no longer matches)."""
    own = {k: hashlib.sha256(v).hexdigest() for k, v in sorted(files.items()) if k != MARKER}
    return json.dumps({"tool": "bnncc", "version": __version__, "files": own},
                      indent=1, sort_keys=True).encode() + b"\n"


def _sha(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _entries(root: Path) -> tuple[list[str], list[str]]:
    """Every file or symlink (relative path) and every directory under root, no links
    followed."""
    files, dirs = [], []
    for base, dnames, fnames in os.walk(root):
        rb = Path(base).relative_to(root)
        for d in list(dnames):
            if os.path.islink(os.path.join(base, d)):
                dnames.remove(d)
                files.append((rb / d).as_posix())
            else:
                dirs.append((rb / d).as_posix())
        files += [(rb / f).as_posix() for f in fnames]
    return sorted(files), sorted(dirs)


def _owned(out: Path, new: dict[str, bytes]) -> set[str] | None:
    """bnncc's own files in an existing DIR, or None if bnncc did not make DIR."""
    m = out / MARKER
    if not m.is_file() or m.is_symlink():
        return None
    try:
        listed = json.loads(m.read_bytes()).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    own = {MARKER}
    if not isinstance(listed, dict):   # a marker from before bnncc listed its files
        files, _ = _entries(out)
        return own | {f for f in files if f in new or f.split("/")[0] in ("hls", "rtl")}
    for rel, digest in listed.items():
        p = out / rel
        if isinstance(rel, str) and p.is_file() and not p.is_symlink() and _sha(p) == digest:
            own.add(rel)
    return own


def _foreign(out: Path, own: set[str]) -> list[str]:
    """Files in DIR that are not bnncc's, and directories holding nothing at all."""
    files, dirs = _entries(out)
    foreign = [f for f in files if f not in own]
    used = {p for f in files for p in _parents(f)[:-1]}
    return sorted(foreign + [d for d in dirs if d not in used])


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _names(paths: list[str], n: int = 3) -> str:
    more = f" and {len(paths) - n} more" if len(paths) > n else ""
    return ", ".join(paths[:n]) + more


def _check_names(files: dict[str, bytes]) -> None:
    for rel in files:
        parts = Path(rel).parts
        if Path(rel).is_absolute() or ".." in parts or not parts or "\0" in rel:
            raise BnnccError(f"refusing to write outside the output directory: {rel}")


def _inside(path: str | None, out: Path) -> bool:
    if not path:
        return False
    p, o = os.path.realpath(path), os.path.realpath(out)
    return p == o or p.startswith(o.rstrip(os.sep) + os.sep)


def _clean_stale(out: Path) -> None:
    """Remove temporaries a killed bnncc left beside DIR (its own, by dead pids)."""
    try:
        siblings = list(out.parent.iterdir())
    except OSError:
        return
    for s in siblings:
        for tag in (_TMP, _OLD):
            pre = f".{out.name}{tag}"
            if s.name.startswith(pre) and s.name[len(pre):].isdigit():
                pid = int(s.name[len(pre):])
                if pid != os.getpid() and not _alive(pid) and \
                        ((s / MARKER).is_file() or not any(s.iterdir())):
                    shutil.rmtree(s, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories atomically (Linux renameat2 RENAME_EXCHANGE); False if the
    system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    e = ctypes.get_errno()
    if e in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(e, os.strerror(e), str(b))


def _keep(out: Path, tmp: Path, foreign: list[str]) -> None:
    """Put the user's files into the new tree as hard links (copies where links are not
    possible); the originals stay where they are until the swap."""
    for rel in foreign:
        src, dst = out / rel, tmp / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_dir():
            dst.mkdir(exist_ok=True)
        else:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)


def _remove_old(old: Path, own: set[str], kept: list[str]) -> None:
    """Delete what the swapped-out tree held: bnncc's own files and the second links of
    the kept ones. Anything else (a file added during the compile) is left in place."""
    for rel in sorted(own | set(kept), reverse=True):
        p = old / rel
        if p.is_symlink() or p.is_file():
            p.unlink()
    for base, _, _ in sorted(os.walk(old), key=lambda t: -len(t[0])):
        try:
            os.rmdir(base)
        except OSError:
            pass


def write_project(files: dict[str, bytes], outdir: str, force: bool = False,
                  keep_others: bool = False, model: str | None = None) -> Path:
    """Write `files` as DIR (see the module docstring for what is refused)."""
    out = Path(outdir)
    _check_names(files)
    if out.is_symlink():
        raise BnnccError("output path is a symbolic link; give the real directory", file=str(out))
    existed = out.exists()
    own: set[str] = set()
    foreign: list[str] = []
    if existed:
        if not out.is_dir():
            raise BnnccError("output path exists and is not a directory", file=str(out))
        if _inside(model, out):
            raise BnnccError("the output directory holds the input model; choose another "
                             "directory", file=str(out))
        owned = _owned(out, files)
        if owned is None and not force:
            raise BnnccError("output directory exists and was not created by bnncc; "
                             "use --force to replace it", file=str(out))
        own = owned or set()
        foreign = _foreign(out, own)
        needed = {p for rel in files for p in _parents(rel)[:-1]}
        clash = [f for f in foreign
                 if f in files or (f in needed and not (out / f).is_dir()) or
                 any(p in files for p in _parents(f)[:-1])]
        if clash:
            raise BnnccError(f"output directory has files bnncc did not write (or that were "
                             f"edited) where it must write: {_names(clash)}; move them away",
                             file=str(out))
        if foreign and not keep_others:
            raise BnnccError(f"output directory has files bnncc did not write: "
                             f"{_names(foreign)}; move them away or pass --keep-others to "
                             f"keep them", file=str(out))
    parent = out.parent
    tmp = parent / f".{out.name}{_TMP}{os.getpid()}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _clean_stale(out)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for rel, data in files.items():
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        if foreign:
            _keep(out, tmp, foreign)
        _install(tmp, out, existed, own, foreign)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BnnccError(f"cannot write the output directory: {e.strerror}",
                         file=str(out)) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _install(tmp: Path, out: Path, existed: bool, own: set[str], kept: list[str]) -> None:
    """Put the finished tree in DIR's place with interrupts held back, so a signal lands
    before or after the swap, never in between."""
    sigs = {signal.SIGINT, signal.SIGTERM}
    held = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        if not existed:
            os.rename(tmp, out)
            return
        if _exchange(tmp, out):
            old = tmp
        else:
            old = out.parent / f".{out.name}{_OLD}{os.getpid()}"
            os.rename(out, old)
            os.rename(tmp, out)
        try:
            _remove_old(old, own, kept)
        except OSError:   # the new DIR is complete; a leftover temporary is harmless
            pass
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
