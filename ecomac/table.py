"""Aligned plain-text tables and a stderr progress bar."""
from __future__ import annotations

import sys
import textwrap
import threading
import time
from contextlib import ExitStack, contextmanager

__all__ = ["format_table", "Progress", "progress_bar", "Heartbeat", "TERMINAL_COLUMNS"]

TERMINAL_COLUMNS = 100      # `max_width` that listings fit: one screen without horizontal scrolling


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v)


def format_table(rows: list[list], headers: list[str], title: str | None = None,
                 max_width: int | None = None) -> str:
    """Left-align text, right-align numbers; one header rule. With `max_width`, the widest
    text columns are narrowed (down to 12 characters) and their cells wrapped onto
    continuation lines until a row fits."""
    text = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(h)] + [len(part) for r in text for part in r[i].split("\n")])
              for i, h in enumerate(headers)]
    numeric = [all(isinstance(r[i], (int, float)) and not isinstance(r[i], bool) for r in rows) and rows
               for i in range(len(headers))]
    if max_width is not None:
        floor = 12
        while sum(widths) + 2 * (len(widths) - 1) > max_width:
            cands = [i for i in range(len(widths)) if not numeric[i] and widths[i] > floor]
            if not cands:
                break
            # narrow the widest text column, at most down to the next widest (shared evenly)
            i = max(cands, key=lambda j: widths[j])
            excess = sum(widths) + 2 * (len(widths) - 1) - max_width
            nxt = max([widths[j] for j in cands if j != i] or [floor])
            widths[i] = max(floor, widths[i] - excess, nxt if nxt < widths[i] else widths[i] - 1)

    def lines(cells):
        # a cell's own newlines start new lines; a part wider than its column wraps at spaces
        cols = [[piece for part in c.split("\n")
                 for piece in ((textwrap.wrap(part, w, break_on_hyphens=False) or [""]) if len(part) > w
                               else [part])] for c, w in zip(cells, widths)]
        out = []
        for k in range(max(len(c) for c in cols)):
            parts = [c[k] if k < len(c) else "" for c in cols]
            out.append("  ".join(p.rjust(w) if num else p.ljust(w)
                                 for p, w, num in zip(parts, widths, numeric)).rstrip())
        return out
    out = []
    if title:
        out.append(title)
    out.extend(lines(headers))
    out.append("  ".join("-" * w for w in widths))
    for r in text:
        out.extend(lines(r))
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

    def __exit__(self, exc_type, *exc):
        if self.tty:
            self.stream.write("\n")
        state = "stopped after" if exc_type is not None else "done in"
        self.stream.write(f"{self.label}: {self.done}/{self.total} {state} {time.monotonic() - self.t0:.1f} s\n")
        self.stream.flush()


@contextmanager
def progress_bar(label: str):
    """`with progress_bar("synth") as step: library_call(progress=step)`: the bar of a library
    function that reports progress(done, total, note). The bar starts at the first call (after the
    library checked its arguments, so a refused run prints its error line only) and ends when done
    reaches total (a failure raised after the last item still reads "done in")."""
    with ExitStack() as stack:
        bar = None

        def step(done: int, total: int, note: str) -> None:
            nonlocal bar
            if bar is None:
                bar = stack.enter_context(Progress(total, label))
            if done:
                bar.step(note=note)
            if done >= total:
                stack.close()
        yield step


class Heartbeat:
    """`with Heartbeat("synthesizing mfmac-array"): ...` for one slow step that has no natural
    count: silent when the step ends within `after` seconds; otherwise a line on stderr at
    `after` s, one every `every` s after that, and "done in N s" at the end."""

    def __init__(self, label: str, after: float = 2.0, every: float = 15.0, stream=None):
        self.label, self.after, self.every = label, after, every
        self.stream = stream or sys.stderr
        self.shown = False
        self._stop = threading.Event()
        self._thread = None

    def _say(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):      # stderr closed: progress is optional
            pass

    def _run(self) -> None:
        if self._stop.wait(self.after):
            return
        self.shown = True
        self._say(f"{self.label} ...")
        while not self._stop.wait(self.every):
            self._say(f"{self.label}: {time.monotonic() - self.t0:.0f} s")

    def __enter__(self):
        self.t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, *exc):
        self._stop.set()
        self._thread.join()
        if self.shown and exc_type is None:
            self._say(f"{self.label}: done in {time.monotonic() - self.t0:.1f} s")
        return False


def print_experiment_results(results: list[dict], table, as_json: bool, default=None) -> None:
    """`--json`: each result's arch, data, epochs, seeds, wall_s and summary; else table(result) each."""
    import json
    if as_json:
        print(json.dumps([{k: r[k] for k in ("arch", "data", "epochs", "seeds", "wall_s", "summary")}
                          for r in results], indent=2, default=default))
        return
    for r in results:
        print(table(r))
        print()
