"""The command modules: every `ecomac/cmd_*.py`, each defining `add_parser(subparsers)` and
optionally `report_sections(outdir)` / `heavy_report_sections()` (read by ecomac/report.py)."""
from __future__ import annotations

import importlib
import pkgutil

__all__ = ["command_modules"]


def command_modules():
    import ecomac
    mods = []
    for m in sorted(pkgutil.iter_modules(ecomac.__path__), key=lambda m: m.name):
        if m.name.startswith("cmd_"):
            mods.append(importlib.import_module(f"ecomac.{m.name}"))
    return mods
