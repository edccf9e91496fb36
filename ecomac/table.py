"""Aligned plain-text tables and a stderr progress bar."""
from __future__ import annotations

import sys
import time

__all__ = ["format_table", "Progress"]


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v)


def format_table(rows: list[list], headers: list[str], title: str | None = None) -> str:
    """Left-align text, right-align numbers; one header rule."""
    text = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(r[i], (int, float)) and not isinstance(r[i], bool) for r in rows) and rows
               for i in range(len(headers))]

    def line(cells):
        return "  ".join(c.rjust(w) if num else c.ljust(w)
                         for c, w, num in zip(cells, widths, numeric)).rstrip()
    out = []
    if title:
        out.append(title)
    out.append(line(headers))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in text)
    return "\n".join(out)


class Progress:
    """`with Progress(n, "sweep") as p: ... p.step()` draws a bar on stderr (only on a TTY
    or when forced), and a final one-line summary always."""

    def __init__(self, total: int, label: str, stream=None):
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.t0 = time.monotonic()

    def __enter__(self):
        return self

    def step(self, n: int = 1, note: str = "") -> None:
        self.done += n
        if self.tty:
            frac = self.done / max(self.total, 1)
            bar = "#" * int(30 * frac)
            self.stream.write(f"\r{self.label} [{bar:<30}] {self.done}/{self.total} {note[:40]:<40}")
            self.stream.flush()
        elif self.total and (self.done == self.total or self.done % max(1, self.total // 10) == 0):
            self.stream.write(f"{self.label}: {self.done}/{self.total}\n")

    def __exit__(self, *exc):
        if self.tty:
            self.stream.write("\n")
        self.stream.write(f"{self.label}: {self.done}/{self.total} done in {time.monotonic() - self.t0:.1f} s\n")
        self.stream.flush()
