"""`make report`: the default designs' synthesis table, then every section that the
`ecomac/cmd_*.py` modules contribute through `report_sections(outdir)`.

Sections too slow for `make` on a fresh machine (a cold run of tens of minutes) are
*heavy*: a module lists them in `heavy_report_sections()` as (order, title, minutes,
make(outdir) -> markdown). `ecomac report --heavy` (run by `make experiments`) computes
them and keeps each under EXPERIMENTS/report_sections/; a plain report includes the kept
text when it is there and otherwise one line naming the command that computes it."""
from __future__ import annotations

import re
from pathlib import Path

from synth.cache import atomic_write

from . import designs
from .commands import command_modules

__all__ = ["write_report", "heavy_section_path", "collect_sections"]


def heavy_section_path(experiments: Path, title: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
    return Path(experiments) / "report_sections" / f"{slug}.md"


def write_report(outdir: str | Path, heavy: bool = False, experiments: str | Path | None = None) -> str:
    outdir = Path(outdir)
    experiments = Path(experiments) if experiments is not None else outdir.parent / "experiments"
    rows = designs.synth_defaults(outdir.parent / "synth")
    parts = ["# ecomac report", "",
             "## Default designs (Yosys generic gates, `stat -tech cmos`)", "",
             "```", designs.summary_table(rows), "```"]
    for order, title, body in collect_sections(command_modules(), outdir, heavy, experiments):
        parts += ["", f"## {title}", "", body]
    text = "\n".join(parts) + "\n"
    atomic_write(outdir / "report.md", text)
    return text


def collect_sections(modules, outdir: Path, heavy: bool, experiments: Path) -> list[tuple[int, str, str]]:
    """Every module's sections in report order; heavy ones computed only with `heavy`."""
    sections = []
    for mod in modules:
        fn = getattr(mod, "report_sections", None)
        if fn:
            sections.extend(fn(outdir))
        hfn = getattr(mod, "heavy_report_sections", None)
        for order, title, minutes, make in (hfn() if hfn else []):
            path = heavy_section_path(experiments, title)
            if heavy:
                atomic_write(path, make(outdir))
            if path.is_file():
                body = path.read_text() + f"\n\n(computed by `ecomac report --heavy`, part of `make experiments`; kept in {path})"
            else:
                body = (f"Not computed in this run: about {minutes} minutes on 2 cores with an empty synthesis "
                        f"cache. `make experiments` (or `ecomac report --heavy`) computes it and later reports "
                        f"include it.")
            sections.append((order, title, body))
    return sorted(sections, key=lambda s: s[0])
