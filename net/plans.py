"""The exact fast path of each datapath (`plan(dp)`), built once per spec and checked against the
datapath's own products when it is built: net/kernels.py runs it on any torch device.

* "blas": the datapath's signed product is a short sum of separable terms,
      product(x, w) = sum_t 2^shift_t * F_t[x] * G_t[w]
  (F_t, G_t integer tables over the operand codes), so Y = sum_t 2^shift_t (F_t[X] @ G_t[W]) is
  a few ordinary float matmuls, exact while every partial sum stays below the float's
  exact-integer range (the kernels split K for that; `Term.bound` is the largest |F G|):
    int8, asm, approx:mul-array/-exact   one term: the integer values themselves;
    mfmac                                one term per pair of exponent bands (PoT values are
                                         exact in binary floating point; a band pair whose
                                         shift reaches acc_bits is 0 mod 2^acc_bits);
    approx:mul-drum                      one term: each magnitude rounded to its k kept bits
                                         (the lowest forced to 1) and shifted back,
                                         (a' << sa) * (b' << sb), is the DRUM product;
    approx:mul-trunc / mul-bam           the kept partial products grouped by the weight's
                                         bit j: b_j 2^j * (a with bits below vbl - j cleared),
                                         rows with nothing cleared merged into one term
                                         (as many terms as the kept region has distinct
                                         rows, i.e. its rank), plus one term for trunc's
                                         correction constant; more than MAX_BLAS_TERMS (4)
                                         terms (trunc k=4: 5, BAM vbl=8: 7) and the table
                                         path below is faster;
  signs enter the tables as sign(x) * sign(w) (sign-magnitude: p = +-T[|x|, |w|]).
* "table": any other 8x8 table (mul-mitchell, lut:FILE, trunc/BAM with many terms): the
  signed table St[x + 128, w + 128], summed by a table kernel (net/kernels.py).
* "fp32": ordinary float32 arithmetic (the float baseline, not fp32-mac's summation order).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from golden.fixed import wrap

from .datapath import parse

__all__ = ["plan", "Plan", "Term", "MAX_BLAS_TERMS", "EXACT_F32", "EXACT_F64", "build_plan"]

EXACT_F32, EXACT_F64 = 1 << 24, 1 << 53     # every integer of smaller magnitude is a float32 / float64
_MAG = 129                    # sign-magnitude operands: magnitudes 0..128
# A separable form with more terms costs more float32 products than the table kernel's one
# pass (measured by `ecomac emulate --bench`: the table kernel runs at 4-6x a float32 matmul,
# each term at ~1x plus its operand pass), so those multipliers take the table path.
MAX_BLAS_TERMS = 4


@dataclass(frozen=True)
class Term:
    """One separable term: 2^shift * F[x - x_lo] * G[w - w_lo] (F, G int64 tables over codes);
    F or G None = the code's own value."""
    F: np.ndarray | None
    G: np.ndarray | None
    shift: int
    bound: int                     # the largest |F[x] * G[w]|


@dataclass(frozen=True)
class Plan:
    path: str                      # "fp32" | "blas" | "table"
    terms: tuple = ()
    x_lo: int = 0
    w_lo: int = 0
    signed_table: np.ndarray | None = None   # table path: St[x + 128, w + 128] int64


def _identity_bound(dp) -> int:
    (xl, xh), (wl, wh) = dp.code_range("x"), dp.code_range("w")
    return max(abs(xl), abs(xh)) * max(abs(wl), abs(wh))


def _sign_table(f_mag: np.ndarray) -> np.ndarray:
    """int8 codes -128..127 (index code + 128) -> sign(code) * f(|code|); sign(0) = +1
    (sign-magnitude: a zero operand still carries trunc's correction with the other's sign)."""
    c = np.arange(-128, 128)
    return np.where(c < 0, -1, 1) * np.asarray(f_mag, np.int64)[np.abs(c)]


def _mag_bits(v, j):
    return (v >> j) & 1


def _kept_sum_terms(vbl: int, hbl: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(f, g) over magnitudes with sum_t f_t(a) g_t(b) = sum_{j>=hbl} b_j 2^j (a & ~(2^(vbl-j) - 1))."""
    a = np.arange(_MAG, dtype=np.int64)
    full_rows = np.zeros(_MAG, np.int64)       # g of the rows that keep all of a
    terms = []
    for j in range(hbl, 8):
        lo = max(vbl - j, 0)
        if lo >= 8:
            continue
        g = _mag_bits(a, j) << j
        if lo == 0:
            full_rows += g
        else:
            terms.append((a & ~((1 << lo) - 1), g))
    if full_rows.any():
        terms.append((a.copy(), full_rows))
    return terms


def _approx_terms(dp) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Separable (f, g) magnitude terms of an approx family, or None (table path)."""
    fam, p = dp.params["family"], dp.params
    a = np.arange(_MAG, dtype=np.int64)
    if fam in ("mul-array", "mul-exact"):
        return [(a, a)]
    if fam == "mul-drum":
        from golden.approx import _drum_operand
        v, s = _drum_operand(a, 8, p["k"])
        r = v << s
        return [(r, r.copy())]
    if fam in ("mul-trunc", "mul-bam"):
        vbl, hbl = (p["k"], 0) if fam == "mul-trunc" else (p["vbl"], p["hbl"])
        terms = _kept_sum_terms(vbl, hbl)
        if fam == "mul-trunc" and p["correction"]:
            from golden.approx import trunc_correction
            terms.append((np.ones(_MAG, np.int64), np.full(_MAG, trunc_correction(8, p["k"]), np.int64)))
        return terms
    return None


def _pot_terms(dp) -> list[Term]:
    """mfmac: codes -> +-2^(e-1); exponent bands small enough that a float64 chunk of K holds
    >= 4096 products exactly. Band pair (b, c): values / 2^base, shift base_b + base_c."""
    from golden import pot
    E, acc = dp.params["exp_bits"], dp.params["acc_bits"]
    codes = np.arange(1 << (E + 1))
    vals = pot.decode(codes, E)
    mag = np.abs(vals)
    expo = np.where(mag > 0, np.log2(np.maximum(mag, 1)).astype(np.int64), -1)
    width = 20                                 # 2^(2*20) * 4096 <= 2^53
    top = pot.max_exp(E)
    bands = [(b0, min(b0 + width - 1, top)) for b0 in range(0, top + 1, width)]
    sign = np.where(vals < 0, -1, 1)
    band = [(b0, sign * (mag >> b0) * ((expo >= b0) & (expo <= b1))) for b0, b1 in bands]
    terms = []
    for b0, fb in band:
        for c0, gc in band:
            if b0 + c0 >= acc:
                continue                       # every such product is 0 mod 2^acc_bits
            if fb.any() and gc.any():
                terms.append(Term(fb.astype(np.int64), gc.astype(np.int64), b0 + c0,
                                  int(np.abs(fb).max()) * int(np.abs(gc).max())))
    return terms


def build_plan(dp, max_terms: int | None = None) -> Plan:
    """max_terms: approx/lut multipliers whose separable form has more terms take the table
    path (None: MAX_BLAS_TERMS)."""
    max_terms = MAX_BLAS_TERMS if max_terms is None else max_terms
    if dp.kind == "fp32":
        return Plan("fp32")
    if dp.kind in ("int8", "asm"):
        (xl, _), (wl, _) = dp.code_range("x"), dp.code_range("w")
        return Plan("blas", (Term(None, None, 0, _identity_bound(dp)),), xl, wl)
    if dp.kind == "mfmac":
        terms = tuple(_pot_terms(dp))
        codes = np.arange(1 << (1 + dp.params["exp_bits"]))
        with np.errstate(over="ignore"):
            recon = sum((np.outer(t.F, t.G) * np.int64(1 << t.shift) for t in terms), np.zeros((codes.size,) * 2, np.int64))
        if not np.array_equal(wrap(recon, dp.acc_bits), wrap(dp.product(codes[:, None], codes[None, :]), dp.acc_bits)):
            raise AssertionError(f"kernel plan for {dp.canonical} does not reproduce its products")
        return Plan("blas", terms, 0, 0)
    T = dp.table()[:_MAG, :_MAG]
    mag_terms = _approx_terms(dp) if dp.kind == "approx" else None
    if mag_terms is not None and len(mag_terms) <= max_terms:
        recon = sum(np.outer(f, g) for f, g in mag_terms)
        if not np.array_equal(recon, T):       # the decomposition must be the table, exactly
            raise AssertionError(f"kernel plan for {dp.canonical} does not reproduce its product table")
        terms = []
        for f, g in mag_terms:
            F, G = _sign_table(f), _sign_table(g)
            ident = np.arange(-128, 128)
            terms.append(Term(None if np.array_equal(F, ident) else F,
                              None if np.array_equal(G, ident) else G, 0,
                              int(np.abs(f).max()) * int(np.abs(g).max())))
        return Plan("blas", tuple(terms), -128, -128)
    # the table path: St[x + 128, w + 128] = sign(x) sign(w) T[|x|, |w|]
    c = np.arange(-128, 128)
    s = np.where(c < 0, -1, 1)
    St = (s[:, None] * s[None, :]) * T[np.abs(c)[:, None], np.abs(c)[None, :]]
    return Plan("table", (), -128, -128, np.ascontiguousarray(St, np.int64))


_PLANS: dict[str, Plan] = {}


def plan(datapath) -> Plan:
    """The fast path of a datapath (cached per canonical spec)."""
    dp = parse(datapath)
    # a lut table is keyed by its contents: the same file name may hold another table later
    key = dp.canonical if dp.kind != "lut" else \
        f"{dp.canonical}#{hashlib.sha1(np.ascontiguousarray(dp.table_array).tobytes()).hexdigest()}"
    p = _PLANS.get(key)
    if p is None:
        p = _PLANS[key] = build_plan(dp)
    return p
