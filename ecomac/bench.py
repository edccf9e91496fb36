"""`make bench`: speed figures (not tests). Every `ecomac/bench_*.py` module defines
`run(outdir) -> dict`; results are written to build/bench/<name>.json and printed."""
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
    args = ap.parse_args(argv)
    import ecomac
    out = Path(args.output)
    for m in sorted(pkgutil.iter_modules(ecomac.__path__), key=lambda m: m.name):
        if m.name.startswith("bench_"):
            res = importlib.import_module(f"ecomac.{m.name}").run(out)
            atomic_write(out / f"{m.name[6:]}.json", json.dumps(res, indent=2) + "\n")
            print(f"{m.name[6:]}: {json.dumps(res)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
