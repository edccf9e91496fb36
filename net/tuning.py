"""Weight tuning for an approximate multiplier (ALWANN; tf-approximate's rule).

A layer whose products run on the approximate sign-magnitude MAC M (golden.datapath: approx:
or lut:, M(a, w) = Datapath.product) keeps its weights but replaces each weight code w by the
code w' that makes M(a, w') closest to the exact a*w over the activations a:

    w' = argmin over w2 in -127..127 of  sum_a  h(a) * |a*w - M(a, w2)|

`uniform` weighs every signed 8-bit activation a in -128..127 once (tf-approximate's rule);
`histogram` weighs each a by how often its magnitude |a| occurs among the layer's measured
input codes (a histogram over |a| = 0..128). The cost is the same for a and -a (M is sign-
magnitude: M(-a, w) = -M(a, w)), so a histogram of magnitudes is all the rule needs; the
test proves this against a brute-force sum over signed activations.

Codes that stay (ecomac's deviation from tf-approximate, so that a tuned layer is an ordinary
float layer): the candidates w2 are the weight quantizer's codes -127..127 (it never makes -128),
and the codes 0 and +-127 map to themselves. +-127 is every output channel's scale anchor (the
per-channel quantizer gives the channel's largest weight the code 127), so the tuned float weights
w' * s_channel quantize back to exactly the tuned codes with the same scale: a tuned model file
runs bit for bit like the tuned codes (`ecomac nn eval --mapping` reproduces the search). A zero
weight stays zero (tuning prunes nothing and invents no product). -128 (never a quantized
weight) is kept too.

Ties: among the minimizers the code closest to w wins (w itself when it is one), then the
lower code. Every cost is an integer (counts times integer errors), so ties are exact and the
result does not depend on the machine.

Vectorized: for a multiplier and a histogram, the 256 x 256 cost matrix over (w, w2) is one
sum over the 129 magnitudes, and the 256-entry map w -> w' is applied to a layer's weight codes
as a gather (`apply_map`).
"""
from __future__ import annotations

import numpy as np

from .datapath import parse

__all__ = ["TUNINGS", "CODES", "CANDIDATES", "FIXED", "MAGNITUDES", "uniform_histogram", "activation_histogram", "tuning_cost",
           "tune_map", "apply_map", "tune_weights", "tuned_float_weights"]

TUNINGS = ("none", "uniform", "histogram")
CODES = np.arange(-128, 128, dtype=np.int64)          # every signed 8-bit code; map index = code + 128
CANDIDATES = np.arange(-127, 128, dtype=np.int64)     # what a weight may be tuned to (the quantizer's codes)
FIXED = (-128, -127, 0, 127)                           # codes tuning keeps (see the module doc)
MAGNITUDES = 129                                       # |a| = 0..128
# one signed activation per magnitude: a = m for m <= 127 and a = -128 for m = 128 (cost is odd-symmetric)
_REPRESENTATIVE = np.concatenate([np.arange(128, dtype=np.int64), [-128]])


def uniform_histogram() -> np.ndarray:
    """How many signed 8-bit codes have each magnitude 0..128: 1, 2, 2, ..., 2, 1."""
    h = np.full(MAGNITUDES, 2, np.int64)
    h[0] = h[128] = 1
    return h


def activation_histogram(codes) -> np.ndarray:
    """Counts of |a| = 0..128 over signed 8-bit activation codes (int64, length 129)."""
    a = np.asarray(codes)
    if a.dtype.kind not in "iu":
        raise ValueError(f"activation codes must be integers, got dtype {a.dtype}")
    a = np.abs(a.astype(np.int64).ravel())
    if a.size and a.max() > 128:
        raise ValueError(f"activation codes must be signed 8-bit integers (-128..127), found magnitude {a.max()}")
    return np.bincount(a, minlength=MAGNITUDES).astype(np.int64)


def _check_histogram(hist) -> np.ndarray:
    h = np.asarray(hist)
    if h.shape != (MAGNITUDES,):
        raise ValueError(f"an activation histogram has {MAGNITUDES} counts (|a| = 0..128), got shape {h.shape}")
    if h.dtype.kind not in "iu":
        raise ValueError(f"activation histogram counts must be integers, got dtype {h.dtype}")
    h = h.astype(np.int64)
    if h.min() < 0:
        raise ValueError("activation histogram counts must be non-negative")
    return h


def _check_table_datapath(datapath):
    dp = parse(datapath)
    if dp.kind not in ("approx", "lut"):
        raise ValueError(f"weight tuning applies to approximate multipliers (approx:, lut:), not {dp.spec!r}")
    return dp


def tuning_cost(datapath, hist=None) -> np.ndarray:
    """C[w + 128, w2 + 128] = sum over |a| of hist[|a|] * |a*w - M(a, w2)| (int64, 256 x 256, every
    pair of codes; the rule only looks at w2 in CANDIDATES); hist None = uniform over the signed
    8-bit activations."""
    dp = _check_table_datapath(datapath)
    h = uniform_histogram() if hist is None else _check_histogram(hist)
    used = np.flatnonzero(h)
    a = _REPRESENTATIVE[used]                                    # U activations
    approx_prod = dp.product(a[:, None], CODES[None, :]).astype(np.float64)   # U x 256: M(a, w2)
    exact = (a[:, None] * CODES[None, :]).astype(np.float64)                    # U x 256: a * w
    # every cost is an integer below 2^53 (counts x errors of at most 2^17), so float64 BLAS sums
    # are exact; rows of w in blocks keep the U x block x 256 error tensor a few MB
    hf = h[used].astype(np.float64)
    if hf.sum() * float(1 << 17) >= 2.0 ** 53:
        raise ValueError("activation histogram counts are too large for exact tuning costs (total >= 2^36)")
    cost = np.empty((256, 256), np.int64)
    err = np.empty((len(hf), 32, 256), np.float64)
    for w0 in range(0, 256, 32):
        np.subtract(exact[:, w0:w0 + 32, None], approx_prod[:, None, :], out=err)
        np.abs(err, out=err)
        cost[w0:w0 + 32] = (hf @ err.reshape(len(hf), -1)).reshape(32, 256).astype(np.int64)
    return cost


_MAPS: dict = {}          # (canonical spec, histogram bytes) -> map; a process-wide memo


def tune_map(datapath, hist=None) -> np.ndarray:
    """The 256-entry map w -> w' (index w + 128, int64) for a multiplier and a histogram
    (None = uniform): the minimum-cost code among CANDIDATES, ties to the code closest to w, then
    the lower; the FIXED codes map to themselves."""
    dp = _check_table_datapath(datapath)
    key = (dp.canonical, dp.table().tobytes() if dp.kind == "lut" else b"",
           None if hist is None else _check_histogram(hist).tobytes())
    if key not in _MAPS:
        if len(_MAPS) > 4096:
            _MAPS.clear()
        _MAPS[key] = _tune_map(dp, hist)
    return _MAPS[key].copy()


def _tune_map(dp, hist) -> np.ndarray:
    cost = tuning_cost(dp, hist)[:, CANDIDATES + 128]           # 256 x 255
    best = cost.min(axis=1, keepdims=True)
    dist = np.abs(CANDIDATES[None, :] - CODES[:, None])         # |w2 - w|
    # among minimizers: smallest distance, then the lower code (argmin takes the first = lowest index)
    key = np.where(cost == best, dist, np.iinfo(np.int64).max)
    tmap = CANDIDATES[np.argmin(key, axis=1)]
    fixed = np.array(FIXED, np.int64)
    tmap[fixed + 128] = fixed
    return tmap


def apply_map(tmap, codes) -> np.ndarray:
    """Tuned codes: tmap[codes + 128] (a gather)."""
    tmap = np.asarray(tmap, np.int64)
    if tmap.shape != (256,):
        raise ValueError(f"a tuning map has 256 entries (codes -128..127), got shape {tmap.shape}")
    c = np.asarray(codes)
    if c.dtype.kind not in "iu":
        raise ValueError(f"weight codes must be integers, got dtype {c.dtype}")
    c = c.astype(np.int64)
    if c.size and (c.min() < -128 or c.max() > 127):
        raise ValueError("weight codes must be signed 8-bit integers (-128..127)")
    return tmap[c + 128]


def tune_weights(datapath, codes, tuning: str = "uniform", hist=None) -> np.ndarray:
    """Weight codes tuned to `datapath`'s multiplier: tuning 'none' (unchanged), 'uniform' or
    'histogram' (needs `hist`, the layer's |activation| counts)."""
    if tuning not in TUNINGS:
        raise ValueError(f"unknown tuning {tuning!r} (tunings: {', '.join(TUNINGS)})")
    if tuning == "none":
        return np.asarray(codes, np.int64).copy()
    if tuning == "histogram" and hist is None:
        raise ValueError("histogram tuning needs the layer's activation histogram")
    return apply_map(tune_map(datapath, hist if tuning == "histogram" else None), codes)


def tuned_float_weights(datapath, weight, tuning: str = "uniform", hist=None) -> np.ndarray:
    """A layer's float weights (Cout x ...) with their codes tuned: the per-output-channel codes and
    scales of the datapath's quantizer (as net.layers quantizes, axis 0), tuned, times the same
    scales (float32). Quantizing the result per channel gives back exactly the tuned codes (the
    FIXED codes keep every channel's largest magnitude at 127), so an ordinary model file carries
    the tuning."""
    dp = _check_table_datapath(datapath)
    w = np.asarray(weight, np.float64)
    codes, scale = dp.quantize(w, "w", axis=0)
    return (tune_weights(dp, codes, tuning, hist).astype(np.float64) * scale).astype(np.float32)
