"""Exact signed integer multiply-accumulate (the baseline of every comparison)."""
from __future__ import annotations

import numpy as np

from .fixed import accumulate

__all__ = ["mac"]


def mac(x, w, valid=None, clear=None, acc_bits: int = 24, acc0: int = 0):
    """Cycle model of `int-mac`, same valid/clear contract as `mfmac-pe`."""
    with np.errstate(over="ignore"):
        p = np.asarray(x, np.int64) * np.asarray(w, np.int64)
    return accumulate(p, valid, clear, acc_bits, acc0)
