"""`make bench`: speed figures (not tests). Every `ecomac/bench_*.py` module defines
`run(outdir) -> dict` (or `run(outdir, device=...)`: it runs on --device too); results are written
to build/bench/<name>.json and printed. --only NAME runs one module (e.g. nn, emulate)."""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
from pathlib import Path

from synth.cache import atomic_write


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ecomac.bench")
    ap.add_argument("-o", "--output", default="build/bench")
    ap.add_argument("--device", choices=("cpu", "cuda"),
                    help="where the device-aware benches run (emulate, nn); default cpu")
    ap.add_argument("--only", action="append", metavar="NAME", help="run only bench_NAME (repeatable)")
    args = ap.parse_args(argv)
    import inspect

    import torch

    import ecomac
    out = Path(args.output)
    threads = torch.get_num_threads()         # a bench that pins its threads does not pin the next
    device = None
    if args.device is not None:
        from net.device import resolve_device
        try:
            device = resolve_device(args.device)
        except ValueError as e:
            ap.error(str(e))
    for m in sorted(pkgutil.iter_modules(ecomac.__path__), key=lambda m: m.name):
        if m.name.startswith("bench_") and (not args.only or m.name[6:] in args.only):
            run = importlib.import_module(f"ecomac.{m.name}").run
            if device is not None and "device" not in inspect.signature(run).parameters:
                continue                     # --device: the device-aware benches only
            torch.set_num_threads(threads)
            res = run(out, device=device) if device is not None else run(out)
            name = m.name[6:] + ("" if device is None or device.type == "cpu" else f"_{device.type}")
            atomic_write(out / f"{name}.json", json.dumps(res, indent=2) + "\n")
            print(f"{m.name[6:]}: {json.dumps(res)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
