"""`make bench` figures for the emulation kernels (net/kernels.py): each fast path's time,
GMAC/s and ratio to a float32 matmul of the same shape measured in the same run, on the
shapes 2048x576x64 and 8192x1152x128, with a bit-exactness check on a slice (net/emulate.py)."""
from __future__ import annotations


def run(outdir, device="cpu") -> dict:
    import os
    import sys

    import torch

    from net.emulate import bench

    from .cmd_emulate import bench_table
    rows = bench(progress=lambda m: print(f"emulate bench: {m}", file=sys.stderr, flush=True), device=device)
    print(bench_table(rows), file=sys.stderr)
    return {"rows": rows, "threads": torch.get_num_threads(), "load_avg": os.getloadavg()}
