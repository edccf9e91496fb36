"""Matplotlib figures to PNG, written atomically (never a half-written picture)."""
from __future__ import annotations

import io

from synth.cache import atomic_write

__all__ = ["png_bytes", "save_png"]


def png_bytes(fig, dpi: int = 110) -> bytes:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def save_png(fig, path, dpi: int = 110) -> None:
    atomic_write(path, png_bytes(fig, dpi))
