"""`ecomac emulate`: a layer's product on a datapath, bit for bit as its MAC computes it.

  ecomac emulate --datapath D --x X.npy --w W.npy [--acc-bits N] -o Y.npy [--json]
  ecomac emulate --datapath D --conv --x X.npy --w W.npy [--stride S] [--padding P] -o Y.npy
  ecomac emulate --bench [--json] [--repeats R] [--device cpu|cuda]
                                                     speed vs a float32 matmul (net/emulate.py)

X, W: integer arrays of the datapath's operand codes (golden/datapath.py); Y: int64, the
accumulations wrapped at acc_bits. The library side is net/emulate.py and net/kernels.py.
"""
from __future__ import annotations

import json

from .table import format_table

__all__ = ["add_parser", "bench_table"]


def add_parser(sub) -> None:
    from .args import int_range, positive_int
    p = sub.add_parser("emulate", help="bit-exact layer product (matmul / conv2d) on a datapath, or --bench")
    p.add_argument("--datapath", metavar="SPEC",
                   help="datapath spec (fp32, int8, mfmac[,exp_bits=E], asm[,alphabet=1/3], approx:FAMILY[,k=v], "
                        "lut:FILE[,top=NAME]; grammar: golden/datapath.py)")
    p.add_argument("--x", metavar="X.npy", help="activation codes: M x K (--conv: N x C x H x W)")
    p.add_argument("--w", metavar="W.npy", help="weight codes: K x N (--conv: Cout x C x kh x kw)")
    p.add_argument("--acc-bits", type=positive_int, dest="acc_bits", metavar="N",
                   help="accumulator width (two's-complement wrap); default the datapath's (24)")
    p.add_argument("--conv", action="store_true", help="X and W are a convolution's input and kernel")
    p.add_argument("--stride", type=positive_int, default=1, help="--conv stride (default 1)")
    p.add_argument("--padding", type=int_range(0), default=0, help="--conv zero padding (default 0)")
    p.add_argument("-o", "--output", metavar="Y.npy", help="output accumulations (int64 .npy)")
    p.add_argument("--bench", action="store_true",
                   help="time every fast path against a float32 matmul of the same shape (see --repeats)")
    p.add_argument("--repeats", type=positive_int, default=5,
                   help="--bench: paired float32/kernel rounds per figure (default 5; ratio = their median)")
    p.add_argument("--device", choices=("cpu", "cuda"),
                   help="--bench: where the kernels and the float32 baseline run (default: cuda when available)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_emulate)


def _cmd_emulate(args) -> int:
    from .cli import UsageError
    if args.bench:
        extra = [o for o, v in (("--datapath", args.datapath), ("--x", args.x), ("--w", args.w),
                                ("-o", args.output), ("--acc-bits", args.acc_bits), ("--conv", args.conv)) if v]
        if extra:
            raise UsageError(f"--bench takes no operands ({', '.join(extra)} given)")
        return _cmd_bench(args)
    if args.device is not None:
        raise UsageError("--device applies to --bench (emulate's outputs do not depend on the device)")
    missing = [o for o, v in (("--datapath", args.datapath), ("--x", args.x), ("--w", args.w), ("-o", args.output))
               if not v]
    if missing:
        raise UsageError(f"emulate needs {', '.join(missing)} (or --bench)")
    if not args.conv and (args.stride != 1 or args.padding != 0):
        raise UsageError("--stride and --padding apply to --conv only")
    if args.padding < 0:
        raise UsageError(f"--padding must be 0 or more, got {args.padding}")
    from net import emulate as E
    from synth.cache import atomic_write

    from .outputs import check_output_file
    out = check_output_file(args.output, (".npy",), "output")
    spec = E.with_acc_bits(args.datapath, args.acc_bits)
    from net.datapath import parse
    dp = parse(spec)
    X = E.load_operand(args.x, "X")
    W = E.load_operand(args.w, "W")
    Y = E.emulate(dp, X, W, conv=args.conv, stride=args.stride, padding=args.padding)
    atomic_write(out, E.save_npy_bytes(Y))
    if args.json:
        print(json.dumps({"datapath": dp.canonical, "output": str(out), "shape": list(Y.shape),
                          "dtype": str(Y.dtype), "acc_bits": dp.acc_bits}, indent=2))
    else:
        print(f"{out}: {' x '.join(map(str, Y.shape))} {Y.dtype} on {dp.canonical}")
    return 0


def bench_table(rows: list[dict]) -> str:
    body = [[r["datapath"], r["shape"], f"{r['path']} ({r['terms']})" if r["path"] == "blas" else r["path"],
             f"{r['seconds'] * 1e3:.1f}", f"{r['gmac_s']:.2f}", f"{r['fp32_gmac_s']:.1f}", f"{r['ratio']:.2f}",
             f"<= {r['goal']}", f"{r['alt_ratio']:.2f}" if "alt_ratio" in r else "",
             "yes" if r["bit_exact"] else "NO"] for r in rows]
    dev = rows[0]["device"] if rows else "cpu"
    return format_table(body, ["datapath", "M x K x N", "path (BLAS terms)", "ms", "GMAC/s", "fp32 GMAC/s",
                               "ratio", "goal", "torch table", "bit-exact"],
                        title=f"emulation kernels vs a float32 matmul of the same shape on {dev} (ratio: median of "
                              "paired rounds; ms: best round; torch table: the ratio of the torch table formulation "
                              "CUDA runs; bit-exact: a 64 x 16 slice against the definition)")


def _cmd_bench(args) -> int:
    import sys

    from net.emulate import bench

    def say(msg):
        print(f"emulate bench: {msg}", file=sys.stderr, flush=True)
    from net.device import resolve_device
    rows = bench(repeats=args.repeats, progress=say, device=resolve_device(args.device))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(bench_table(rows))
    if not all(r["bit_exact"] for r in rows):
        bad = ", ".join(f"{r['datapath']} {r['shape']}" for r in rows if not r["bit_exact"])
        raise ValueError(f"fast path differs from the definition: {bad}")
    return 0

