"""Bit-exact emulation kernels on any torch device: Y = X.W, the batched product A.B and conv2d
over a datapath's operand codes.

    matmul(spec, X, W)                       X M x K, W K x N codes -> M x N
    bmm(spec, A, B)                          A (..., M, K), B (..., K, N) -> (..., M, N)
                                             (batch dims broadcast; A takes the "x" role, B "w")
    conv2d(spec, X, W, stride, padding, dilation, groups)
                                             X N x C x H x W, W Cout x C/groups x kh x kw
    conv2d_definition(...)                   the same by its definition (the reference)

Inputs are torch tensors (any device; the result is an int64 tensor on X's device) or NumPy
arrays (the result is a NumPy array: `ecomac emulate`'s edge). Each output is accumulated
exactly as the datapath's MAC does it (two's-complement wrap at acc_bits);
golden.datapath.Datapath.matmul_definition is the definition every path here is proven equal
to (tests/test_kernels.py). fp32 is an ordinary float32 product.

The fast path of each datapath is its plan (net/plans.py):

* "blas": a few separable terms F_t[X] @ G_t[W], each a float matmul on the device. Exact:
  every partial sum of a product is an integer below the float's exact range (2^24 for
  float32, 2^53 for float64) because K is split into chunks small enough for the terms'
  largest products (float64 when a float32 chunk would be shorter than 256); the chunks'
  int64 sums are wrapped at acc_bits. Reduced-precision float products would break this, so
  the kernels turn TF32 off (cuBLAS and cuDNN) and keep it off on every call (`exact_floats`).
* "table": any other 8x8 table St[x, w]. On the CPU a numba-compiled one-hot product (per chunk
  of 8 k's, G[k, x, :] = St[x, W[k, :]], then every row of X adds the rows its codes select:
  int16/int32 vector adds, row blocks and batch entries in parallel) - measured 3-5x faster
  than the torch formulation on the CPU (`make bench`); on any other device (CUDA) the torch
  formulation of the same product: G built per chunk of K by one gather and summed by
  `embedding_bag(mode="sum")` (one bag per output row; float32 exact as K chunks keep every sum
  below 2^24), the chunk's table G staying in the GPU's cache. `table_backend="torch"` runs
  that formulation on the CPU (the tests prove it there).
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch.nn import functional as F

from golden.fixed import wrap

from .datapath import parse
from .plans import EXACT_F32, EXACT_F64, MAX_BLAS_TERMS, Plan, Term, build_plan, plan

__all__ = ["matmul", "bmm", "conv2d", "conv2d_definition", "im2col", "conv_out_size", "plan", "Plan", "Term",
           "build_plan", "MAX_BLAS_TERMS", "exact_floats", "TABLE_BACKENDS"]

_MIN_F32_CHUNK = 256          # below this K-chunk, one float64 product beats many float32 ones

# numba's parallel loops run on its own "workqueue" thread pool, not on OpenMP: numba's OpenMP
# layer resizes the OpenMP runtime torch shares, after which every torch op opens an OpenMP region
# of numba's size (measured on a busy 2-core machine: 25 ms instead of 7 us per small op).
from numba.np.ufunc import parallel as _numba_parallel  # noqa: E402

if not getattr(_numba_parallel, "_is_initialized", False):
    numba.config.THREADING_LAYER = "workqueue"
TABLE_BACKENDS = ("auto", "numba", "torch")


def exact_floats() -> None:
    """IEEE float32 products everywhere: TF32 off for cuBLAS matmuls and cuDNN convolutions
    (cuDNN defaults to TF32 on Ampere and later), highest float32 matmul precision."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if torch.get_float32_matmul_precision() != "highest":
        torch.set_float32_matmul_precision("highest")


exact_floats()


# ---- the API edge: NumPy or torch ------------------------------------------------------------
_TORCH_INT = (np.int8, np.uint8, np.int16, np.int32, np.int64)


def _tensor(a, device=None) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a if device is None else a.to(device)
    a = np.asarray(a)
    if a.dtype.kind in "iub" and a.dtype.type not in _TORCH_INT:
        a = a.astype(np.int64)
    elif a.dtype.kind == "f" and a.dtype != np.float32 and a.dtype != np.float64:
        a = a.astype(np.float32)
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t if device is None else t.to(device)


def _operands(X, W):
    """(X, W as tensors on X's device, whether the caller gave NumPy)."""
    numpy_in = not isinstance(X, torch.Tensor) and not isinstance(W, torch.Tensor)
    if isinstance(X, torch.Tensor) and isinstance(W, torch.Tensor) and X.device != W.device:
        raise ValueError(f"operands on different devices: X on {X.device}, W on {W.device}")
    dev = X.device if isinstance(X, torch.Tensor) else (W.device if isinstance(W, torch.Tensor) else None)
    return _tensor(X, dev), _tensor(W, dev), numpy_in


def _ints(t: torch.Tensor) -> torch.Tensor:
    return t if not (t.is_floating_point() or t.dtype == torch.bool) else t.to(torch.int64)


# ---- wrapping --------------------------------------------------------------------------------
def _wrap_(acc: torch.Tensor, bits: int) -> torch.Tensor:
    """golden.fixed.wrap in place for int64 sums held mod 2^64 (bits <= 62)."""
    acc += 1 << (bits - 1)
    acc &= (1 << bits) - 1
    acc -= 1 << (bits - 1)
    return acc


# ---- the BLAS path ---------------------------------------------------------------------------
def _chunks(K: int, step: int) -> list[tuple[int, int]]:
    """K split into equal chunks of at most `step`."""
    n = max(1, math.ceil(K / step))
    edges = np.linspace(0, K, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


_TABLES: dict = {}


def _table_tensor(arr: np.ndarray | None, device, dtype) -> torch.Tensor:
    """A plan's table (None: the int8 codes' own values -128..127) as a tensor on `device`,
    cached (the array is kept referenced, so its id is not reused)."""
    key = (id(arr), str(device), dtype)
    hit = _TABLES.get(key)
    if hit is None:
        src = np.arange(-128, 128) if arr is None else arr
        hit = _TABLES[key] = (arr, torch.as_tensor(np.asarray(src, np.float64)).to(device=device, dtype=dtype))
    return hit[1]


def _blas_group(X, W, terms, x_lo, w_lo) -> torch.Tensor:
    """sum over `terms` (same shift) of F[X] @ G[W], exact: int64 (..., M, N) (mod 2^64)."""
    K = X.shape[-1]
    bound = max(sum(t.bound for t in terms), 1)
    dtype = torch.float32 if EXACT_F32 // bound >= min(K, _MIN_F32_CHUNK) else torch.float64
    step = max(1, (EXACT_F32 if dtype == torch.float32 else EXACT_F64) // bound)
    dev = X.device
    acc = None
    for k0, k1 in _chunks(K, step):
        Xc, Wc = X[..., k0:k1], W[..., k0:k1, :]
        if len(terms) == 1 and terms[0].F is None:
            A = Xc.to(dtype)
        else:
            ix = Xc.to(torch.int64) - x_lo
            A = torch.cat([_table_tensor(t.F, dev, dtype)[ix] for t in terms], dim=-1)
        if len(terms) == 1 and terms[0].G is None:
            B = Wc.to(dtype)
        else:
            iw = Wc.to(torch.int64) - w_lo
            B = torch.cat([Wc.to(dtype) if t.G is None else _table_tensor(t.G, dev, dtype)[iw] for t in terms],
                          dim=-2)
        part = torch.matmul(A, B).to(torch.int64)
        acc = part if acc is None else acc.add_(part)
    return acc


def _blas(p: Plan, X, W, acc_bits: int) -> torch.Tensor:
    by_shift: dict[int, list[Term]] = {}
    for t in p.terms:
        by_shift.setdefault(t.shift, []).append(t)
    acc = None
    for shift, terms in sorted(by_shift.items()):
        part = _blas_group(X, W, terms, p.x_lo, p.w_lo)
        if shift:       # (part mod 2^(acc - shift)) * 2^shift: exact mod 2^acc, no int64 overflow
            part = _wrap_(part, acc_bits - shift).mul_(1 << shift)
        acc = part if acc is None else _wrap_(acc.add_(part), acc_bits)
    return _wrap_(acc, acc_bits)


# ---- the table path --------------------------------------------------------------------------
def _table_matmul_impl(X, Wi, St, out, KC, nblk):
    """out[b, m, n] += sum_k St[X[b, m, k], Wi[b, k, n]] (X B x M x K, Wi B x K x N: uint8 table
    indices; St 256 x 256, row = activation). The one-hot form of the table product: per chunk of
    KC k's, G[k, x, :] = St[x, Wi[b, k, :]] (every row the activation x can select), then each
    output row adds the KC rows its activations select - contiguous vector adds. nblk row blocks
    of every batch entry run in parallel, each building its own G (cost 256 / block rows)."""
    B, M, K = X.shape
    N = Wi.shape[2]
    MB = (M + nblk - 1) // nblk
    for job in numba.prange(B * nblk):
        b = job // nblk
        blk = job % nblk
        G = np.empty((KC * 256, N), St.dtype)
        acc = np.zeros(N, out.dtype)
        m0 = blk * MB
        m1 = min(M, m0 + MB)
        for k0 in range(0, K, KC):
            kc = min(K, k0 + KC) - k0
            for kk in range(kc):
                for x in range(256):
                    for n in range(N):
                        G[kk * 256 + x, n] = St[x, Wi[b, k0 + kk, n]]
            for m in range(m0, m1):
                for n in range(N):
                    acc[n] = out[b, m, n]
                for kk in range(kc):
                    r = kk * 256 + X[b, m, k0 + kk]
                    for n in range(N):
                        acc[n] += G[r, n]
                for n in range(N):
                    out[b, m, n] = acc[n]


# Small products run serially: a parallel region's start costs more than it saves there, and its
# spinning worker threads slow the torch ops that follow on a busy machine.
_table_matmul = numba.njit(parallel=True, cache=True)(_table_matmul_impl)
_table_matmul_serial = numba.njit(cache=True)(_table_matmul_impl)
_SERIAL_WORK = 1 << 22              # M*K*N below this: the serial kernel


def _table_numba(St: np.ndarray, Xi: torch.Tensor, Wi: torch.Tensor) -> torch.Tensor:
    """Xi B x M x K, Wi B x K x N uint8 CPU tensors -> int64 B x M x N sums (not wrapped)."""
    big = int(np.abs(St).max(initial=0))
    St = St.astype(np.int16 if big < 1 << 15 else np.int32)
    Xn, Wn = Xi.numpy(), Wi.numpy()
    Bt, M, K = Xn.shape
    nblk = max(1, min(numba.config.NUMBA_NUM_THREADS, M // 256))
    kern = _table_matmul_serial if Bt * M * K * Wn.shape[2] < _SERIAL_WORK else _table_matmul
    kmax = max(1, ((1 << 31) - 1) // max(big, 1))            # int32 accumulators cannot overflow
    acc = np.zeros((Bt, M, Wn.shape[2]), np.int64)
    for k0, k1 in _chunks(K, kmax):
        out = np.zeros(acc.shape, np.int32)
        kern(np.ascontiguousarray(Xn[..., k0:k1]), np.ascontiguousarray(Wn[:, k0:k1]), St, out, 8, nblk)
        acc += out
    return torch.from_numpy(acc)


def _table_torch(St: np.ndarray, Xi: torch.Tensor, Wi: torch.Tensor) -> torch.Tensor:
    """The same sums by torch ops on Xi's device: per chunk of c k's, the gathered table
    G[b, k, x, :] = St[x, Wi[b, k, :]] and one embedding_bag sum per output row (b, m) over the
    rows b*c*256 + k*256 + Xi[b, m, k]. float32, exact: c * max|St| <= 2^24."""
    dev = Xi.device
    big = max(int(np.abs(St).max(initial=0)), 1)
    S = _table_tensor(St, dev, torch.float32)                    # 256 x 256
    Bt, M, K = Xi.shape
    N = Wi.shape[2]
    acc = torch.zeros((Bt * M, N), dtype=torch.int64, device=dev)
    step = max(1, EXACT_F32 // big)
    for k0, k1 in _chunks(K, step):
        c = k1 - k0
        G = S[:, Wi[:, k0:k1].to(torch.int64)]                  # 256 x B x c x N
        G = G.permute(1, 2, 0, 3).reshape(Bt * c * 256, N)
        base = (torch.arange(Bt, device=dev) * (c * 256))[:, None, None] + \
            (torch.arange(c, device=dev) * 256)[None, None, :]
        idx = (Xi[..., k0:k1].to(torch.int64) + base).reshape(Bt * M, c)
        acc += F.embedding_bag(idx, G, mode="sum").to(torch.int64)
    return acc.reshape(Bt, M, N)


def _table(p: Plan, X, W, acc_bits: int, backend: str) -> torch.Tensor:
    """X (..., M, K), W (..., K, N) codes -> wrapped int64 (..., M, N) on the table path."""
    batch = torch.broadcast_shapes(X.shape[:-2], W.shape[:-2])
    M, K, N = X.shape[-2], X.shape[-1], W.shape[-1]
    Xi = (X.to(torch.int16) - p.x_lo).to(torch.uint8).expand(*batch, M, K).reshape(-1, M, K)
    Wi = (W.to(torch.int16) - p.w_lo).to(torch.uint8).expand(*batch, K, N).reshape(-1, K, N)
    use_numba = backend == "numba" or (backend == "auto" and X.device.type == "cpu")
    if use_numba and X.device.type != "cpu":
        raise ValueError(f"table_backend='numba' runs on the CPU; the operands are on {X.device}")
    acc = (_table_numba if use_numba else _table_torch)(p.signed_table, Xi, Wi)
    return _wrap_(acc, acc_bits).reshape(*batch, M, N)


# ---- the products ----------------------------------------------------------------------------
def _product(dp, X, W, plan_, table_backend) -> torch.Tensor:
    """(..., M, K) x (..., K, N) tensors on one device -> (..., M, N)."""
    if table_backend not in TABLE_BACKENDS:
        raise ValueError(f"table_backend must be one of {', '.join(TABLE_BACKENDS)}, got {table_backend!r}")
    p = plan_ or plan(dp)
    if p.path == "fp32":
        exact_floats()
        return torch.matmul(X.to(torch.float32), W.to(torch.float32))
    X, W = _ints(X), _ints(W)
    batch = torch.broadcast_shapes(X.shape[:-2], W.shape[:-2])
    if X.shape[-1] == 0:
        return torch.zeros((*batch, X.shape[-2], W.shape[-1]), dtype=torch.int64, device=X.device)
    if p.path == "blas":
        exact_floats()
        return _blas(p, X, W, dp.acc_bits)
    return _table(p, X, W, dp.acc_bits, table_backend)


def _out(t: torch.Tensor, numpy_in: bool):
    return t.cpu().numpy() if numpy_in else t


def matmul(datapath, X, W, *, plan_: Plan | None = None, table_backend: str = "auto"):
    """Y (M x N) = X (M x K codes) . W (K x N codes) on `datapath` (a spec or Datapath):
    int64 wrapped accumulations (float32 for fp32), a tensor on X's device (NumPy in: NumPy out).
    Codes are assumed valid (use Datapath.check_codes on untrusted input). plan_: another exact
    plan of the same datapath (tests prove every plan, e.g. build_plan(dp, max_terms=99));
    table_backend: auto (numba on the CPU, torch elsewhere), numba or torch."""
    dp = parse(datapath)
    Xt, Wt, numpy_in = _operands(X, W)
    if Xt.ndim != 2 or Wt.ndim != 2 or Xt.shape[1] != Wt.shape[0]:
        raise ValueError(f"matmul: X must be M x K and W K x N, got {tuple(Xt.shape)} and {tuple(Wt.shape)}")
    return _out(_product(dp, Xt, Wt, plan_, table_backend), numpy_in)


def bmm(datapath, A, B, *, plan_: Plan | None = None, table_backend: str = "auto"):
    """The batched product (..., M, K) x (..., K, N) -> (..., M, N) on `datapath`, batch dims
    broadcast like torch.matmul's (both operands at least 2-D): the activation x activation
    product of attention (q.k^T, a.v). A takes the datapath's "x" role, B the "w" role."""
    dp = parse(datapath)
    At, Bt, numpy_in = _operands(A, B)
    if At.ndim < 2 or Bt.ndim < 2 or At.shape[-1] != Bt.shape[-2]:
        raise ValueError(f"bmm: A must be (..., M, K) and B (..., K, N), got {tuple(At.shape)} and {tuple(Bt.shape)}")
    try:
        torch.broadcast_shapes(At.shape[:-2], Bt.shape[:-2])
    except RuntimeError:
        raise ValueError(f"bmm: batch dims {tuple(At.shape[:-2])} and {tuple(Bt.shape[:-2])} do not broadcast") from None
    return _out(_product(dp, At, Bt, plan_, table_backend), numpy_in)


# ---- convolutions ----------------------------------------------------------------------------
def conv_out_size(n: int, k: int, stride: int, padding: int, dilation: int = 1) -> int:
    return (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def _pair(name, v, lo):
    vals = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(vals) != 2 or any(isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < lo for x in vals):
        raise ValueError(f"conv2d: {name} must be an integer >= {lo} or a pair of them, got {v!r}")
    return int(vals[0]), int(vals[1])


def _conv_args(X, W, stride, padding, dilation, groups):
    st, pd, dl = _pair("stride", stride, 1), _pair("padding", padding, 0), _pair("dilation", dilation, 1)
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"conv2d: groups must be an integer >= 1, got {groups!r}")
    groups = int(groups)
    if X.ndim != 4 or W.ndim != 4 or X.shape[1] != W.shape[1] * groups or W.shape[0] % groups:
        raise ValueError(f"conv2d: X must be N x C x H x W and W Cout x C/groups x kh x kw (Cout divisible by "
                         f"groups={groups}), got {tuple(X.shape)} and {tuple(W.shape)}")
    H, Wd = X.shape[2], X.shape[3]
    kh, kw = W.shape[2], W.shape[3]
    Ho, Wo = conv_out_size(H, kh, st[0], pd[0], dl[0]), conv_out_size(Wd, kw, st[1], pd[1], dl[1])
    if Ho < 1 or Wo < 1:
        pad = pd[0] if pd[0] == pd[1] else pd
        raise ValueError(f"conv2d: kernel {kh}x{kw} does not fit a {H}x{Wd} input with padding {pad}"
                         + (f" and dilation {dl}" if dl != (1, 1) else ""))
    return st, pd, dl, groups, Ho, Wo


def _patches(X, kh, kw, st, pd, dl, pad_value=0):
    """N x C x H x W (tensor or array) -> the strided view N x Ho x Wo x C x kh x kw."""
    N, C, H, Wd = X.shape
    Ho, Wo = conv_out_size(H, kh, st[0], pd[0], dl[0]), conv_out_size(Wd, kw, st[1], pd[1], dl[1])
    if isinstance(X, torch.Tensor):
        if any(pd):
            X = F.pad(X, (pd[1], pd[1], pd[0], pd[0]), value=pad_value)
        X = X.contiguous()
        s = X.stride()
        return X.as_strided((N, Ho, Wo, C, kh, kw), (s[0], s[2] * st[0], s[3] * st[1], s[1], s[2] * dl[0], s[3] * dl[1]))
    if any(pd):
        X = np.pad(X, ((0, 0), (0, 0), (pd[0], pd[0]), (pd[1], pd[1])), constant_values=pad_value)
    X = np.ascontiguousarray(X)
    s = X.strides
    return np.lib.stride_tricks.as_strided(
        X, (N, Ho, Wo, C, kh, kw), (s[0], s[2] * st[0], s[3] * st[1], s[1], s[2] * dl[0], s[3] * dl[1]),
        writeable=False)


def im2col(X, kh: int, kw: int, stride=1, padding=0, pad_value=0, dilation=1):
    """N x C x H x W -> (N*Ho*Wo) x (C*kh*kw) patches (row order n, ho, wo; column order c, i, j:
    the order of a Cout x C x kh x kw weight reshaped to Cout x (C*kh*kw)); a NumPy array or a
    tensor (on its device) as given. pad_value: the code of zero (mfmac's zero code is 0 too)."""
    st, pd, dl = _pair("stride", stride, 1), _pair("padding", padding, 0), _pair("dilation", dilation, 1)
    N, C, H, Wd = X.shape
    if conv_out_size(H, kh, st[0], pd[0], dl[0]) < 1 or conv_out_size(Wd, kw, st[1], pd[1], dl[1]) < 1:
        raise ValueError(f"conv2d: kernel {kh}x{kw} does not fit a {H}x{Wd} input with padding {padding}")
    v = _patches(X, kh, kw, st, pd, dl, pad_value)
    return v.reshape(-1, C * kh * kw)


def conv2d(datapath, X, W, stride=1, padding=0, dilation=1, groups: int = 1, *, table_backend: str = "auto"):
    """Convolution through the products above: X N x C x H x W codes, W Cout x C/groups x kh x kw
    codes -> N x Cout x Ho x Wo accumulations (stride, padding, dilation: an int or a pair;
    padding is the zero code, 0 for every datapath's codes, mfmac included). Grouped and
    depthwise convolutions are one batched product over the groups (patches G x L x C/G*kh*kw
    times weights G x C/G*kh*kw x Cout/G), not a loop."""
    dp = parse(datapath)
    Xt, Wt, numpy_in = _operands(X, W)
    st, pd, dl, G, Ho, Wo = _conv_args(Xt, Wt, stride, padding, dilation, groups)
    N, C = Xt.shape[:2]
    cout, cg, kh, kw = Wt.shape
    if not dp.is_float:
        Xt, Wt = _ints(Xt), _ints(Wt)
    view = _patches(Xt, kh, kw, st, pd, dl)                      # N, Ho, Wo, C, kh, kw
    L = N * Ho * Wo
    if G == 1:
        Y = _product(dp, view.reshape(L, C * kh * kw), Wt.reshape(cout, -1).t(), None, table_backend)
    else:
        cols = view.reshape(L, G, cg * kh * kw).permute(1, 0, 2)            # G, L, Kg
        Wg = Wt.reshape(G, cout // G, cg * kh * kw).transpose(1, 2)          # G, Kg, Cout/G
        Y = _product(dp, cols, Wg, None, table_backend).permute(1, 0, 2)     # L, G, Cout/G
    return _out(Y.reshape(N, Ho, Wo, cout).permute(0, 3, 1, 2), numpy_in)


def conv2d_definition(datapath, X, W, stride=1, padding=0, dilation=1, groups: int = 1) -> np.ndarray:
    """The convolution by its definition (a loop over output positions and groups, each the golden
    products of its dilated window summed and wrapped): the reference conv2d is proven against.
    NumPy (tensors are read to the host)."""
    dp = parse(datapath)
    X = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    W = W.detach().cpu().numpy() if isinstance(W, torch.Tensor) else np.asarray(W)
    (sh, sw), (ph, pw), (dh, dw), G, Ho, Wo = _conv_args(X, W, stride, padding, dilation, groups)
    N, C, H, Wd = X.shape
    cout, cg, kh, kw = W.shape
    Xp = np.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((N, cout, Ho, Wo), np.float32 if dp.is_float else np.int64)
    og = cout // G
    for g in range(G):
        Wg = W[g * og:(g + 1) * og]
        for i in range(Ho):
            for j in range(Wo):
                win = Xp[:, None, g * cg:(g + 1) * cg, i * sh:i * sh + dh * (kh - 1) + 1:dh,
                         j * sw:j * sw + dw * (kw - 1) + 1:dw]                  # N,1,Cg,kh,kw
                s = dp.product(win, Wg[None]).reshape(N, og, -1)                 # N,Cout/G,Cg*kh*kw
                out[:, g * og:(g + 1) * og, i, j] = s.astype(np.float64).sum(-1) if dp.is_float else \
                    wrap(s.sum(-1, dtype=np.int64), dp.acc_bits)
    return out
