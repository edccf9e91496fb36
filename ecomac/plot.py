"""Matplotlib figures to files, written atomically (never a half-written picture).

The format follows the file name: .png, .pdf or .svg (what matplotlib's Agg, PDF and SVG
back ends write without extra packages); any other ending is refused before the work
starts (`check_plot_path`)."""
from __future__ import annotations

import io
from pathlib import Path

from synth.cache import atomic_write

__all__ = ["PLOT_FORMATS", "png_bytes", "figure_bytes", "save_png", "save_figure", "check_plot_path"]

PLOT_FORMATS = ("png", "pdf", "svg")


def check_plot_path(path, what: str = "plot file") -> Path:
    """One-line error unless `path` ends in .png/.pdf/.svg and can be written."""
    from .outputs import check_output_file
    return check_output_file(path, suffixes=tuple(f".{f}" for f in PLOT_FORMATS), what=what)


def figure_bytes(fig, fmt: str = "png", dpi: int = 110) -> bytes:
    import matplotlib.pyplot as plt
    if fmt not in PLOT_FORMATS:
        raise ValueError(f"plot format must be one of {', '.join(PLOT_FORMATS)}, got {fmt!r}")
    buf = io.BytesIO()
    # no creation date in PDF/SVG metadata: the same figure gives the same bytes
    meta = {"CreationDate": None} if fmt == "pdf" else ({"Date": None} if fmt == "svg" else None)
    fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
    plt.close(fig)
    return buf.getvalue()


def png_bytes(fig, dpi: int = 110) -> bytes:
    return figure_bytes(fig, "png", dpi)


def save_figure(fig, path, dpi: int = 110) -> None:
    """Write `fig` in the format its file name says (.png, .pdf, .svg)."""
    fmt = Path(path).suffix.lower().lstrip(".")
    atomic_write(path, figure_bytes(fig, fmt, dpi))


def save_png(fig, path, dpi: int = 110) -> None:
    atomic_write(path, png_bytes(fig, dpi))
