"""What net/kernels.py's products share, and the table path: integer wrapping, K chunks, a
plan's tables as tensors, the CPU's reused workspaces and compiled gathers, and the table
kernels (numba on the CPU, the torch formulation elsewhere; see net/kernels.py's doc). Private to
net.kernels (imported only there)."""
from __future__ import annotations

import math
import threading

import numba
import numpy as np
import torch
from torch.nn import functional as F

from .plans import EXACT_F32, Plan

# numba's parallel loops run on its own "workqueue" thread pool, not on OpenMP: numba's OpenMP
# layer resizes the OpenMP runtime torch shares, after which every torch op opens an OpenMP region
# of numba's size (measured on a busy 2-core machine: 25 ms instead of 7 us per small op).
from numba.np.ufunc import parallel as _numba_parallel  # noqa: E402

if not getattr(_numba_parallel, "_is_initialized", False):
    numba.config.THREADING_LAYER = "workqueue"


# ---- wrapping --------------------------------------------------------------------------------
def _wrap_(acc: torch.Tensor, bits: int, bound: int | None = None) -> torch.Tensor:
    """golden.fixed.wrap in place for int64 sums held mod 2^64 (bits <= 62); a no-op when every
    sum's magnitude is known to stay below `bound` < 2^(bits-1)."""
    if bound is not None and bound < 1 << (bits - 1):
        return acc
    acc += 1 << (bits - 1)
    acc &= (1 << bits) - 1
    acc -= 1 << (bits - 1)
    return acc


def _chunks(K: int, step: int) -> list[tuple[int, int]]:
    """K split into equal chunks of at most `step`."""
    n = max(1, -(-K // step))
    edges = [(i * K + n // 2) // n for i in range(n + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


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


# On the CPU the operands and partial products go to reused workspaces: a fresh tensor of a
# layer's size costs more in first-touch page faults than the conversion itself (measured: an
# 8192 x 1152 int8 -> float32 cast 63 ms into a new tensor, 2.5 ms into a reused one), and the
# tables are gathered by a compiled loop (torch's advanced indexing: ~35 ns per element).
# Per thread (two threads never share one); each holds the largest operand it has seen.
_WS = threading.local()


def _workspace(role: str, shape, dtype) -> torch.Tensor:
    n = math.prod(shape)
    ws = _WS.__dict__.setdefault("bufs", {})
    t = ws.get((role, dtype))
    if t is None or t.numel() < n:
        t = ws[(role, dtype)] = torch.empty(max(n, 1), dtype=dtype)
    return t[:n].view(shape)


@numba.njit(cache=True)
def _gather3(X, lo, tables, out):
    """out[b, m, t*K + k] = tables[t, X[b, m, k] - lo]: every term's operand, one pass per term."""
    B, M, K = X.shape
    T = tables.shape[0]
    for b in range(B):
        for t in range(T):
            tab = tables[t]
            for m in range(M):
                for k in range(K):
                    out[b, m, t * K + k] = tab[X[b, m, k] - lo]


_NP_TABLES: dict = {}


def _np_tables(tabs, dtype) -> np.ndarray:
    key = (tuple(id(t) for t in tabs), dtype)
    hit = _NP_TABLES.get(key)
    if hit is None:
        arr = np.stack([np.arange(-128, 128) if t is None else t for t in tabs]).astype(
            np.float32 if dtype == torch.float32 else np.float64)
        hit = _NP_TABLES[key] = (tabs, arr)          # the tables stay referenced: ids not reused
    return hit[1]


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


_TORCH_TABLE_ELEMS = 1 << 26


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
    # exact float32 sums; and the gathered tables of a chunk (B x c x 256 x N floats) <= 2^26
    step = max(1, min(EXACT_F32 // big, _TORCH_TABLE_ELEMS // (Bt * 256 * max(N, 1))))
    for k0, k1 in _chunks(K, step):
        c = k1 - k0
        G = S[:, Wi[:, k0:k1].to(torch.int64)]                  # 256 x B x c x N
        G = G.permute(1, 2, 0, 3).reshape(Bt * c * 256, N)
        base = (torch.arange(Bt, device=dev) * (c * 256))[:, None, None] + \
            (torch.arange(c, device=dev) * 256)[None, None, :]
        idx = (Xi[..., k0:k1].to(torch.int64) + base).reshape(Bt * M, c)
        acc += F.embedding_bag(idx, G, mode="sum").to(torch.int64)
    return acc.reshape(Bt, M, N)


def _index8(V, lo) -> torch.Tensor:
    """Table row / column index code - lo (0..255) as uint8; int8 codes with lo = -128: one XOR."""
    if V.dtype == torch.int8 and lo == -128:
        return V.view(torch.uint8) ^ 128
    return (V.to(torch.int16) - lo).to(torch.uint8)


def _table(p: Plan, X, W, acc_bits: int, backend: str) -> torch.Tensor:
    """X (..., M, K), W (..., K, N) codes -> wrapped int64 (..., M, N) on the table path."""
    batch = torch.broadcast_shapes(X.shape[:-2], W.shape[:-2])
    M, K, N = X.shape[-2], X.shape[-1], W.shape[-1]
    Xi = _index8(X, p.x_lo).expand(*batch, M, K).reshape(-1, M, K)
    Wi = _index8(W, p.w_lo).expand(*batch, K, N).reshape(-1, K, N)
    use_numba = backend == "numba" or (backend == "auto" and X.device.type == "cpu")
    if use_numba and X.device.type != "cpu":
        raise ValueError(f"table_backend='numba' runs on the CPU; the operands are on {X.device}")
    acc = (_table_numba if use_numba else _table_torch)(p.signed_table, Xi, Wi)
    return _wrap_(acc, acc_bits, K * int(np.abs(p.signed_table).max(initial=0))).reshape(*batch, M, N)
