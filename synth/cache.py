"""Content-addressed JSON cache: results keyed by a hash of everything that made them."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = ["CacheError", "cache_dir", "key", "load", "store", "atomic_write"]


class CacheError(ValueError):
    """The cache location cannot hold a cache (one line naming it)."""


def cache_dir() -> Path:
    env = os.environ.get("ECOMAC_CACHE")
    root = Path(env or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                                    "ecomac"))
    # the location or one of its parents being a file would fail much later, mid-run
    p = root
    while not os.path.lexists(p) and p.parent != p:
        p = p.parent
    if os.path.lexists(p) and not p.is_dir():
        source = f"ECOMAC_CACHE={env}" if env else f"the cache folder {root}"
        raise CacheError(f"{source}: {p} is a file, not a folder; point ECOMAC_CACHE at a folder")
    return root


def key(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        b = p if isinstance(p, bytes) else str(p).encode()
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def _path(kind: str, k: str) -> Path:
    return cache_dir() / kind / k[:2] / f"{k}.json"


def load(kind: str, k: str):
    p = _path(kind, k)
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def store(kind: str, k: str, value) -> None:
    atomic_write(_path(kind, k), json.dumps(value))


def atomic_write(path, data: str | bytes) -> None:
    """Write to a temporary file beside `path`, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
