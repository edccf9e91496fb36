"""Bit-exact emulation kernels: Y = X.W and conv2d over a datapath's operand codes.

Each output is accumulated exactly as the datapath's MAC does it (two's-complement wrap at
acc_bits); golden.datapath.Datapath.matmul_definition is the definition every path here is
proven equal to (tests/test_kernels.py).

Exact-product datapaths (int8, asm, mfmac): the products are integers and their sums stay
below 2^53 within a K-chunk, so a float64 BLAS product of the decoded values is exact; the
chunks' int64 sums are wrapped at acc_bits. fp32 is ordinary float32 arithmetic (the float
baseline, not fp32-mac's summation order).
"""
from __future__ import annotations

import numpy as np

from golden.fixed import wrap

from .datapath import parse

__all__ = ["matmul", "conv2d", "im2col", "conv_out_size"]

_F64_EXACT = 1 << 53


def _chunk(max_abs_product: int) -> int:
    """Largest K for which a sum of K products stays exactly representable in float64."""
    return max(1, (_F64_EXACT - 1) // max(1, max_abs_product))


def _exact_blas(Xv: np.ndarray, Wv: np.ndarray, max_prod: int, acc_bits: int) -> np.ndarray:
    K = Xv.shape[1]
    step = _chunk(max_prod)
    Xf, Wf = Xv.astype(np.float64), Wv.astype(np.float64)
    if K <= step:
        return wrap((Xf @ Wf).astype(np.int64), acc_bits).astype(np.int64)
    acc = np.zeros((Xv.shape[0], Wv.shape[1]), np.int64)
    with np.errstate(over="ignore"):
        for k0 in range(0, K, step):
            acc += (Xf[:, k0:k0 + step] @ Wf[k0:k0 + step]).astype(np.int64)
    return wrap(acc, acc_bits).astype(np.int64)


def _definition_chunked(dp, X, W, block: int = 64) -> np.ndarray:
    """The definition, K-blocked so memory stays M*block*N (the slow reference path)."""
    acc = np.zeros((X.shape[0], W.shape[1]), np.int64)
    with np.errstate(over="ignore"):
        for k0 in range(0, X.shape[1], block):
            acc += dp.product(X[:, k0:k0 + block, None], W[None, k0:k0 + block, :]).sum(axis=1, dtype=np.int64)
    return wrap(acc, dp.acc_bits).astype(np.int64)


def matmul(datapath, X, W) -> np.ndarray:
    """Y (M x N) = X (M x K codes) . W (K x N codes) on `datapath` (a spec or Datapath):
    int64 wrapped accumulations (float32 for fp32). Codes are assumed valid (use
    Datapath.check_codes on untrusted input)."""
    dp = parse(datapath)
    X = np.asarray(X)
    W = np.asarray(W)
    if X.ndim != 2 or W.ndim != 2 or X.shape[1] != W.shape[0]:
        raise ValueError(f"matmul: X must be M x K and W K x N, got {X.shape} and {W.shape}")
    if dp.kind == "fp32":
        return np.asarray(X, np.float32) @ np.asarray(W, np.float32)
    if dp.kind in ("int8", "asm", "mfmac"):
        Xv, Wv = dp.values(X, "x"), dp.values(W, "w")
        mx = int(np.abs(Xv).max(initial=0)) * int(np.abs(Wv).max(initial=0))
        return _exact_blas(Xv, Wv, mx, dp.acc_bits)
    return _definition_chunked(dp, X.astype(np.int64), W.astype(np.int64))


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


def conv2d(datapath, X, W, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Convolution (dilation 1, groups 1) through `matmul`: X N x C x H x W codes, W
    Cout x C x kh x kw codes -> N x Cout x Ho x Wo accumulations."""
    dp = parse(datapath)
    X = np.asarray(X)
    W = np.asarray(W)
    if X.ndim != 4 or W.ndim != 4 or X.shape[1] != W.shape[1]:
        raise ValueError(f"conv2d: X must be N x C x H x W and W Cout x C x kh x kw, got {X.shape} and {W.shape}")
    N, _, H, Wd = X.shape
    cout, _, kh, kw = W.shape
    cols = im2col(X, kh, kw, stride, padding)
    Y = matmul(dp, cols, W.reshape(cout, -1).T)
    Ho, Wo = conv_out_size(H, kh, stride, padding), conv_out_size(Wd, kw, stride, padding)
    return Y.reshape(N, Ho, Wo, cout).transpose(0, 3, 1, 2)
