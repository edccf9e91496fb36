"""`ecomac emulate`'s library side: validated operand files -> bit-exact layer outputs, and
the emulation benchmark (`ecomac emulate --bench`, `make bench`).

Operand files are .npy arrays of a datapath's operand codes (golden/datapath.py): X is
M x K (or N x C x H x W with conv), W is K x N (or Cout x C x kh x kw). Every problem is a
one-line ValueError naming the file and what is allowed; nothing is written unless the whole
product succeeded (the caller writes atomically).
"""
from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import torch

from . import kernels
from .datapath import parse

__all__ = ["load_operand", "with_acc_bits", "emulate", "save_npy_bytes", "bench", "BENCH_SHAPES",
           "BENCH_DATAPATHS", "GOALS"]

BENCH_SHAPES = ((2048, 576, 64), (8192, 1152, 128))
# (spec, goal: the largest allowed ratio to a float32 matmul of the same shape)
BENCH_DATAPATHS = (("int8", 2), ("asm", 2), ("mfmac", 2), ("approx:mul-trunc", 6), ("approx:mul-bam", 6),
                   ("approx:mul-drum", 6), ("approx:mul-mitchell", 10), ("lut:TABLE.npy", 10))
GOALS = dict(BENCH_DATAPATHS)


def load_operand(path, what: str) -> np.ndarray:
    """An operand array from a .npy file (no pickles); one-line ValueError otherwise."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} {path} is a directory, not a .npy file")
    if not p.is_file():
        raise ValueError(f"{what} {path} does not exist")
    with open(p, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise ValueError(f"{what} {path}: not a .npy file (no NumPy header); save it with numpy.save")
    try:
        a = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{what} {path}: not a readable .npy array ({first})") from None
    return a


def with_acc_bits(spec: str, acc_bits: int | None) -> str:
    """The spec with `acc_bits=N` appended; one-line ValueError if the spec already sets it."""
    if acc_bits is None:
        return spec
    names = [t.partition("=")[0].strip() for t in str(spec).split(",")[1:]]
    if "acc_bits" in names:
        raise ValueError(f"--acc-bits {acc_bits} and the datapath's own acc_bits ({spec!r}) both given; give one")
    return f"{spec},acc_bits={acc_bits}"


def emulate(spec, X, W, *, conv: bool = False, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Validate X and W as the datapath's codes and return the wrapped accumulations:
    matmul (X M x K, W K x N -> M x N) or conv (X N x C x H x W, W Cout x C x kh x kw ->
    N x Cout x Ho x Wo). int64 (fp32: float32)."""
    dp = parse(spec)
    X, W = np.asarray(X), np.asarray(W)
    if conv:
        if X.ndim != 4 or W.ndim != 4:
            raise ValueError(f"--conv: X must be N x C x H x W and W Cout x C x kh x kw, "
                             f"got {X.ndim}-D {X.shape} and {W.ndim}-D {W.shape}")
        if X.shape[1] != W.shape[1]:
            raise ValueError(f"--conv: X has {X.shape[1]} channels but W expects {W.shape[1]} (W is Cout x C x kh x kw)")
    else:
        if X.ndim != 2 or W.ndim != 2:
            raise ValueError(f"X must be M x K and W K x N (2-D; --conv for 4-D), got {X.ndim}-D {X.shape} "
                             f"and {W.ndim}-D {W.shape}")
        if X.shape[1] != W.shape[0]:
            raise ValueError(f"X is {X.shape[0]} x {X.shape[1]} but W is {W.shape[0]} x {W.shape[1]}: "
                             f"X's columns must equal W's rows (K)")
    X = dp.check_codes(X, "x", "X")
    W = dp.check_codes(W, "w", "W")
    if conv:
        return kernels.conv2d(dp, X, W, stride=stride, padding=padding)
    return kernels.matmul(dp, X, W)


def save_npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


# ---- the benchmark -----------------------------------------------------------------------------
def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _best(fn, repeats: int, device="cpu") -> float:
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def _bench_operands(dp, shape, rng):
    """Codes of N(0, 1) activations and weights by the datapath's own quantizers, stored in
    the smallest integer type that holds them (int8 for 8-bit codes, as a layer keeps them)."""
    M, K, N = shape
    x, _ = dp.quantize(rng.standard_normal((M, K)).astype(np.float32), "x")
    w, _ = dp.quantize(rng.standard_normal((K, N)).astype(np.float32), "w")

    def small(a):
        for t in (np.int8, np.uint8, np.int16, np.int32):
            if a.min(initial=0) >= np.iinfo(t).min and a.max(initial=0) <= np.iinfo(t).max:
                return a.astype(t)
        return a
    return small(x), small(w)


def bench(shapes=BENCH_SHAPES, datapaths=BENCH_DATAPATHS, repeats: int = 5, table_dir=None,
          check_rows: int = 64, check_cols: int = 16, progress=None, device="cpu") -> list[dict]:
    """Per datapath and shape: the kernel's best-of-`repeats` time and GMAC/s on `device` (torch
    tensors there), its ratio to a float32 matmul of the same shape on the same device (TF32 off;
    the median over `repeats` rounds, each timing the float32 product and then the kernel back to
    back), and a bit-exactness check of the fast path against the definition on a
    check_rows x check_cols slice of the output. Table datapaths also time the other table
    formulation (`alt_ratio`: on the CPU the torch one, which CUDA runs; elsewhere none).
    `lut:TABLE.npy` is a random 16-bit table written to table_dir."""
    import tempfile
    device = torch.device(device)
    kernels.exact_floats()
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ecomac-emulate-bench-") as tmp:
        tdir = Path(table_dir or tmp)
        table = tdir / "random_table.npy"
        np.save(table, rng.integers(0, 1 << 16, (256, 256)).astype(np.uint16))
        for shape in shapes:
            M, K, N = shape
            Xf = torch.from_numpy(rng.standard_normal((M, K)).astype(np.float32)).to(device)
            Wf = torch.from_numpy(rng.standard_normal((K, N)).astype(np.float32)).to(device)
            for spec, goal in datapaths:
                real = spec.replace("TABLE.npy", str(table))
                dp = parse(real)
                Xn, Wn = _bench_operands(dp, shape, rng)
                X, W = torch.from_numpy(Xn).to(device), torch.from_numpy(Wn).to(device)
                kernels.matmul(dp, X[:8], W)                       # compile / plan outside the timing
                if progress:
                    progress(f"{spec} {M}x{K}x{N} on {device.type}")
                # paired rounds (float32, then the kernel, back to back): a shared machine's
                # load changes within seconds, so each round's ratio compares like with like
                pairs = [(_best(lambda: Xf @ Wf, 1, device), _best(lambda: kernels.matmul(dp, X, W), 1, device))
                         for _ in range(repeats)]
                t_f32, t = min(p[0] for p in pairs), min(p[1] for p in pairs)
                ratio = float(np.median([b / a for a, b in pairs]))
                Y = kernels.matmul(dp, X[:check_rows], W[:, :check_cols]).cpu().numpy()
                exact = bool(np.array_equal(Y, dp.matmul_definition(Xn[:check_rows], Wn[:, :check_cols])))
                p = kernels.plan(dp)
                row = {"datapath": spec, "shape": f"{M}x{K}x{N}", "device": device.type, "path": p.path,
                       "terms": len(p.terms), "seconds": t, "fp32_seconds": t_f32,
                       "gmac_s": M * K * N / t / 1e9, "fp32_gmac_s": M * K * N / t_f32 / 1e9,
                       "ratio": ratio, "goal": goal, "meets_goal": ratio <= goal, "bit_exact": exact}
                if p.path == "table" and device.type == "cpu":
                    alt = [(_best(lambda: Xf @ Wf, 1), _best(lambda: kernels.matmul(dp, X, W, table_backend="torch"), 1))
                           for _ in range(max(1, repeats // 2))]
                    row["alt_backend"], row["alt_ratio"] = "torch", float(np.median([b / a for a, b in alt]))
                rows.append(row)
    return rows
