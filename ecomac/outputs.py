"""Output paths checked before any work starts.

Every command that writes a file or a folder calls `check_output_file` / `check_output_dir`
on the path the user gave, *before* it computes anything: a path that is a folder, that lies
under a regular file, or where the OS refuses to create a file is one line (UsageError,
exit 2) instead of a traceback after minutes of work. The checks create nothing that stays
(a probe file is made and removed in the nearest existing folder); the commands then write
with synth.cache.atomic_write, which creates missing folders and never leaves half a file.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["OutputError", "check_output_file", "check_output_dir", "check_distinct", "check_input_file"]


class OutputError(ValueError):
    """An output path that cannot be written; one line naming the path and why."""


def _nearest_existing(path: Path) -> Path:
    p = path
    while not os.path.lexists(p):
        parent = p.parent
        if parent == p:
            break
        p = parent
    return p


def _probe_writable(folder: Path, shown: str, what: str) -> None:
    """Create and remove a probe file in `folder` (the only test root cannot fool)."""
    probe = folder / f".ecomac-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as e:
        raise OutputError(f"{what} {shown}: cannot write in {folder} ({e.strerror or e})") from None
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:
        pass


def _check_ancestors(path: Path, shown: str, what: str) -> Path:
    """The nearest existing ancestor of `path` must be a writable folder; return it."""
    anc = _nearest_existing(path.parent if path.parent != Path("") else Path("."))
    if not anc.is_dir():
        raise OutputError(f"{what} {shown}: {anc} is a file, not a folder")
    _probe_writable(anc, shown, what)
    return anc


def check_output_file(path, suffixes=None, what: str = "output file") -> Path:
    """`path` can be written as a file: not a folder, not under a file, writable, and (when
    `suffixes` is given, e.g. (".png", ".pdf")) ending in one of them. Returns it as a Path."""
    shown = str(path)
    if not shown.strip():
        raise OutputError(f"{what} must not be empty")
    p = Path(path)
    if shown.endswith(("/", os.sep)) or p.is_dir():
        raise OutputError(f"{what} {shown} is a folder; give a file name")
    if suffixes:
        allowed = tuple(s.lower() for s in suffixes)
        if p.suffix.lower() not in allowed:
            raise OutputError(f"{what} {shown} must end in {' or '.join(allowed)}")
    if os.path.lexists(p):
        if not p.is_file():
            raise OutputError(f"{what} {shown} exists and is not a regular file")
    _check_ancestors(p, shown, what)
    return p


def check_output_dir(path, what: str = "output folder") -> Path:
    """`path` is (or can be created as) a writable folder. Returns it as a Path."""
    shown = str(path)
    if not shown.strip():
        raise OutputError(f"{what} must not be empty")
    p = Path(path)
    if os.path.lexists(p) and not p.is_dir():
        raise OutputError(f"{what} {shown} is a file, not a folder")
    if p.is_dir():
        _probe_writable(p, shown, what)
        return p
    anc = _nearest_existing(p)
    if not anc.is_dir():
        raise OutputError(f"{what} {shown}: {anc} is a file, not a folder")
    _probe_writable(anc, shown, what)
    return p


def check_distinct(*paths) -> None:
    """Two outputs of one command must not be the same file (e.g. FILE.v and its datasheet)."""
    seen = {}
    for p in paths:
        k = os.path.abspath(p)
        if k in seen:
            raise OutputError(f"output {p} would be written twice (also as {seen[k]}); choose another name")
        seen[k] = p


def check_input_file(path, what: str = "input file") -> Path:
    """`path` is an existing regular file: a missing path and a folder get their own one line
    (a folder is not reported as missing)."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{what} {path} is a folder, not a file")
    if not p.is_file():
        if os.path.lexists(p):
            raise FileNotFoundError(f"{what} {path} is not a regular file")
        raise FileNotFoundError(f"{what} {path} does not exist")
    return p
