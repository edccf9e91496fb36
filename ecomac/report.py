"""`make report`: the default designs' synthesis table, then every section that the
`ecomac/cmd_*.py` modules contribute through `report_sections(outdir)`."""
from __future__ import annotations

from pathlib import Path

from synth.cache import atomic_write

from . import designs

__all__ = ["write_report"]


def write_report(outdir: str | Path) -> str:
    from .cli import command_modules
    outdir = Path(outdir)
    rows = designs.synth_defaults(outdir.parent / "synth")
    parts = ["# ecomac report", "",
             "## Default designs (Yosys generic gates, `stat -tech cmos`)", "",
             "```", designs.summary_table(rows), "```"]
    sections = []
    for mod in command_modules():
        fn = getattr(mod, "report_sections", None)
        if fn:
            sections.extend(fn(outdir))
    for order, title, body in sorted(sections, key=lambda s: s[0]):
        parts += ["", f"## {title}", "", body]
    text = "\n".join(parts) + "\n"
    atomic_write(outdir / "report.md", text)
    return text
