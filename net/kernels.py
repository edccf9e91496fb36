"""Bit-exact emulation kernels: Y = X.W and conv2d over a datapath's operand codes.

Each output is accumulated exactly as the datapath's MAC does it (two's-complement wrap at
acc_bits); golden.datapath.Datapath.matmul_definition is the definition every path here is
proven equal to (tests/test_kernels.py).

Two exact fast paths, chosen per datapath (`plan(dp).path`):

* "blas": the datapath's signed product is a short sum of separable terms,
      product(x, w) = sum_t 2^shift_t * F_t[x] * G_t[w]
  (F_t, G_t integer tables over the operand codes), so Y = sum_t 2^shift_t (F_t[X] @ G_t[W])
  is a few ordinary BLAS products. Every partial sum of a product is an integer whose
  magnitude stays below the float's exact-integer range (2^24 for float32, 2^53 for
  float64) because K is split into chunks small enough for the terms' largest products;
  the chunks' int64 sums (wrapping mod 2^64, harmless below acc_bits <= 62) are wrapped at
  acc_bits. The terms:
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
  signs enter the tables as sign(x) * sign(w) (sign-magnitude: p = +-T[|x|, |w|]). Each
  plan is checked against the datapath's own table when it is built (every magnitude
  pair), so a wrong decomposition cannot go unnoticed.
* "table": any other 8x8 table (mul-mitchell, lut:FILE, trunc/BAM with many terms): a
  numba-compiled one-hot product.
  For a chunk of 8 k's the signed table is expanded to G[k, x, :] = S[x, W[k, :]] (the
  output row an activation code x adds), then every row of X adds the 8 rows its codes
  select: contiguous int16/int32 vector adds, int32 accumulators (K split so they cannot
  overflow), row blocks of X in parallel.

fp32 is ordinary float32 arithmetic (the float baseline, not fp32-mac's summation order).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numba
import numpy as np

from golden.fixed import wrap

from .datapath import parse

__all__ = ["matmul", "conv2d", "conv2d_definition", "im2col", "conv_out_size", "plan", "Plan", "Term"]

_EXACT = {np.float32: 1 << 24, np.float64: 1 << 53}
_MIN_F32_CHUNK = 256          # below this K-chunk, one float64 product beats many float32 ones
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


def _build_plan(dp, max_terms: int | None = None) -> Plan:
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
        p = _PLANS[key] = _build_plan(dp)
    return p


# ---- compiled helpers ------------------------------------------------------------------------
@numba.njit(cache=True)
def _gather_stack(X, lo, tables, out):
    """out[m, t*K + k] = tables[t, X[m, k] - lo]: every term's operand, one pass per term.
    Serial: it is memory-bound, and a parallel region's start costs more than it saves."""
    M, K = X.shape
    T = tables.shape[0]
    for t in range(T):
        tab = tables[t]
        for m in range(M):
            for k in range(K):
                out[m, t * K + k] = tab[X[m, k] - lo]


@numba.njit(parallel=True, cache=True)
def _table_matmul(X, Wi, St, out, KC, nblk):
    """out[m, n] += sum_k St[X[m, k], Wi[k, n]] (X M x K, Wi K x N: uint8 table indices;
    St 256 x 256, row = activation). The one-hot form of the table product: per chunk of KC
    k's, G[k, x, :] = St[x, Wi[k, :]] (every row the activation x can select), then each
    output row adds the KC rows its activations select - contiguous vector adds. nblk row
    blocks of X run in parallel, each building its own G (cost 256 / block rows of the work)."""
    M, K = X.shape
    N = Wi.shape[1]
    MB = (M + nblk - 1) // nblk
    for b in numba.prange(nblk):
        G = np.empty((KC * 256, N), St.dtype)
        acc = np.zeros(N, out.dtype)
        m0 = b * MB
        m1 = min(M, m0 + MB)
        for k0 in range(0, K, KC):
            kc = min(K, k0 + KC) - k0
            for kk in range(kc):
                for x in range(256):
                    for n in range(N):
                        G[kk * 256 + x, n] = St[x, Wi[k0 + kk, n]]
            for m in range(m0, m1):
                for n in range(N):
                    acc[n] = out[m, n]
                for kk in range(kc):
                    r = kk * 256 + X[m, k0 + kk]
                    for n in range(N):
                        acc[n] += G[r, n]
                for n in range(N):
                    out[m, n] = acc[n]


def _wrap_inplace(acc: np.ndarray, bits: int) -> np.ndarray:
    """golden.fixed.wrap for int64 arrays holding sums mod 2^64 (bits <= 62), in place with
    a mask instead of a modulo (10x faster on a layer's outputs)."""
    h = np.int64(1 << (bits - 1))
    with np.errstate(over="ignore"):
        acc += h
        acc &= np.int64((1 << bits) - 1)
        acc -= h
    return acc


# ---- the BLAS path ---------------------------------------------------------------------------
def _chunks(K: int, step: int) -> list[tuple[int, int]]:
    """K split into equal chunks of at most `step`."""
    n = max(1, math.ceil(K / step))
    edges = np.linspace(0, K, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _blas_group(X, W, terms, x_lo, w_lo) -> np.ndarray:
    """sum over `terms` (same shift) of F[X] @ G[W], exact: int64 M x N (mod 2^64)."""
    K = X.shape[1]
    bound = sum(t.bound for t in terms)
    dtype = np.float32 if _EXACT[np.float32] // max(bound, 1) >= min(K, _MIN_F32_CHUNK) else np.float64
    step = max(1, _EXACT[dtype] // max(bound, 1))
    acc = None
    for k0, k1 in _chunks(K, step):
        Xc, Wc = X[:, k0:k1], W[k0:k1]
        if len(terms) == 1 and terms[0].F is None:
            A = Xc.astype(dtype)
        else:
            # a None table (the code's own value) only occurs beside tables over int8 codes
            tabs = np.stack([np.arange(-128, 128) if t.F is None else t.F for t in terms]).astype(dtype)
            A = np.empty((X.shape[0], len(terms) * (k1 - k0)), dtype)
            _gather_stack(np.ascontiguousarray(Xc), x_lo, tabs, A)
        B = np.concatenate([Wc.astype(dtype) if t.G is None else t.G[Wc.astype(np.int64) - w_lo].astype(dtype) for t in terms])
        part = (A @ B).astype(np.int64)
        acc = part if acc is None else acc + part
    return acc


def _blas(p: Plan, X, W, acc_bits: int) -> np.ndarray:
    by_shift: dict[int, list[Term]] = {}
    for t in p.terms:
        by_shift.setdefault(t.shift, []).append(t)
    acc = np.zeros((X.shape[0], W.shape[1]), np.int64)
    with np.errstate(over="ignore"):
        for shift, terms in sorted(by_shift.items()):
            part = _blas_group(X, W, terms, p.x_lo, p.w_lo)
            acc += part if shift == 0 else part * np.int64(1 << shift)
    return _wrap_inplace(acc, acc_bits)


def _table(p: Plan, X, W, acc_bits: int) -> np.ndarray:
    St = p.signed_table                        # St[x + 128, w + 128]
    big = int(np.abs(St).max(initial=0))
    St = St.astype(np.int16 if big < 1 << 15 else np.int32)
    Xi = np.ascontiguousarray((X.astype(np.int16) + 128).astype(np.uint8))
    Wi = np.ascontiguousarray((W.astype(np.int16) + 128).astype(np.uint8))
    M, K = Xi.shape
    nblk = max(1, min(numba.get_num_threads(), M // 256))
    kmax = max(1, ((1 << 31) - 1) // max(big, 1))            # int32 accumulators cannot overflow
    acc = np.zeros((M, W.shape[1]), np.int64)
    for k0, k1 in _chunks(K, kmax):
        out = np.zeros((M, W.shape[1]), np.int32)
        _table_matmul(np.ascontiguousarray(Xi[:, k0:k1]), np.ascontiguousarray(Wi[k0:k1]), St, out, 8, nblk)
        acc += out
    return _wrap_inplace(acc, acc_bits)


def matmul(datapath, X, W, *, plan_: Plan | None = None) -> np.ndarray:
    """Y (M x N) = X (M x K codes) . W (K x N codes) on `datapath` (a spec or Datapath):
    int64 wrapped accumulations (float32 for fp32). Codes are assumed valid (use
    Datapath.check_codes on untrusted input). plan_: another exact plan of the same
    datapath (tests prove every plan, e.g. _build_plan(dp, max_terms=99))."""
    dp = parse(datapath)
    X = np.asarray(X)
    W = np.asarray(W)
    if X.ndim != 2 or W.ndim != 2 or X.shape[1] != W.shape[0]:
        raise ValueError(f"matmul: X must be M x K and W K x N, got {X.shape} and {W.shape}")
    p = plan_ or plan(dp)
    if p.path == "fp32":
        return np.asarray(X, np.float32) @ np.asarray(W, np.float32)
    if X.dtype.kind not in "iu" or W.dtype.kind not in "iu":
        X, W = X.astype(np.int64), W.astype(np.int64)
    if X.shape[1] == 0:
        return np.zeros((X.shape[0], W.shape[1]), np.int64)
    if p.path == "blas":
        return _blas(p, X, W, dp.acc_bits)
    return _table(p, X, W, dp.acc_bits)


def conv_out_size(n: int, k: int, stride: int, padding: int) -> int:
    return (n + 2 * padding - k) // stride + 1


def im2col(X: np.ndarray, kh: int, kw: int, stride: int = 1, padding: int = 0, pad_value=0) -> np.ndarray:
    """N x C x H x W -> (N*Ho*Wo) x (C*kh*kw) patches (row order n, ho, wo; column order
    c, i, j: the order of a Cout x C x kh x kw weight reshaped to Cout x (C*kh*kw)).
    pad_value: the code of zero (mfmac's zero code is 0 too)."""
    N, C, H, Wd = X.shape
    Ho, Wo = conv_out_size(H, kh, stride, padding), conv_out_size(Wd, kw, stride, padding)
    if Ho < 1 or Wo < 1:
        raise ValueError(f"conv2d: kernel {kh}x{kw} does not fit a {H}x{Wd} input with padding {padding}")
    if padding:
        X = np.pad(X, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=pad_value)
    s = X.strides
    view = np.lib.stride_tricks.as_strided(
        X, (N, Ho, Wo, C, kh, kw), (s[0], s[2] * stride, s[3] * stride, s[1], s[2], s[3]), writeable=False)
    return view.reshape(N * Ho * Wo, C * kh * kw)


def _check_conv(X, W, stride, padding):
    if X.ndim != 4 or W.ndim != 4 or X.shape[1] != W.shape[1]:
        raise ValueError(f"conv2d: X must be N x C x H x W and W Cout x C x kh x kw, got {X.shape} and {W.shape}")
    for name, v, lo in (("stride", stride, 1), ("padding", padding, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"conv2d: {name} must be an integer >= {lo}, got {v!r}")


def conv2d(datapath, X, W, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Convolution (dilation 1, groups 1) through `matmul`: X N x C x H x W codes, W
    Cout x C x kh x kw codes -> N x Cout x Ho x Wo accumulations. Padding is the zero code
    (0 for every datapath's codes, mfmac included)."""
    dp = parse(datapath)
    X = np.asarray(X)
    W = np.asarray(W)
    _check_conv(X, W, stride, padding)
    N, _, H, Wd = X.shape
    cout, _, kh, kw = W.shape
    cols = im2col(X, kh, kw, stride, padding)
    Y = matmul(dp, cols, W.reshape(cout, -1).T)
    Ho, Wo = conv_out_size(H, kh, stride, padding), conv_out_size(Wd, kw, stride, padding)
    return Y.reshape(N, Ho, Wo, cout).transpose(0, 3, 1, 2)


def conv2d_definition(datapath, X, W, stride: int = 1, padding: int = 0) -> np.ndarray:
    """The convolution by its definition (a loop over output positions, each the golden
    products of its window summed and wrapped): the reference conv2d is proven against."""
    dp = parse(datapath)
    X = np.asarray(X)
    W = np.asarray(W)
    _check_conv(X, W, stride, padding)
    N, C, H, Wd = X.shape
    cout, _, kh, kw = W.shape
    Xp = np.pad(X, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    Ho, Wo = conv_out_size(H, kh, stride, padding), conv_out_size(Wd, kw, stride, padding)
    if Ho < 1 or Wo < 1:
        raise ValueError(f"conv2d: kernel {kh}x{kw} does not fit a {H}x{Wd} input with padding {padding}")
    out = np.zeros((N, cout, Ho, Wo), np.float32 if dp.is_float else np.int64)
    for i in range(Ho):
        for j in range(Wo):
            win = Xp[:, None, :, i * stride:i * stride + kh, j * stride:j * stride + kw]   # N,1,C,kh,kw
            prod = dp.product(win, W[None])                                                # N,Cout,C,kh,kw
            s = prod.reshape(N, cout, -1)
            out[:, :, i, j] = s.astype(np.float64).sum(-1) if dp.is_float else \
                wrap(s.sum(-1, dtype=np.int64), dp.acc_bits)
    return out
