"""Argument types and helpers shared by every command: a bad value is refused where it enters
(argparse calls the type), as one line naming what is allowed, before any work starts."""
from __future__ import annotations

import argparse

from rtl.registry import get_design, parse_params

__all__ = ["UsageError", "positive_int", "int_range", "float_range", "seed", "SEED_MAX", "input_file", "design_params",
           "add_design_args"]


class UsageError(Exception):
    """A user mistake: printed as one line, exit status 2."""


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (worker counts and the like)."""
    try:
        v = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (1 or more), got {v}")
    return v


def design_params(args) -> tuple:
    """(Design, params dict) from `args.design` and `args.param`."""
    d = get_design(args.design)
    return d, parse_params(d, args.param)


def add_design_args(p, optional: bool = False) -> None:
    p.add_argument("design", nargs="?" if optional else None, help="design name (see `ecomac list`)")
    p.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE",
                   help="set a design parameter (repeatable)")


SEED_MAX = 2 ** 32 - 1        # NumPy's and PyTorch's seeds: 0 .. 2^32-1


def _range_text(lo, hi, lo_open=False, hi_open=False) -> str:
    if lo is not None and hi is not None:
        if lo_open or hi_open:
            return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        return f"in {lo}..{hi}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    return ""


def int_range(lo: int | None = None, hi: int | None = None):
    """argparse type: an integer in lo..hi (either bound may be None). Refused where it enters:
    `--pop must be in 4.. , got 1` before any work (the parser words the option name)."""
    rng = _range_text(lo, hi)

    def parse(text: str) -> int:
        try:
            v = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer {rng}, got {text!r}".replace("  ", " ")) from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"must be {'an integer ' + rng if hi is None else rng}, got {v}")
        return v
    parse.__name__ = "int_range"      # what argparse and the fuzzer see
    parse.bounds = (lo, hi)
    return parse


def float_range(lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False):
    """argparse type: a finite number within the bounds (open or closed)."""
    import math
    rng = _range_text(lo, hi, lo_open, hi_open)

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number {rng}, got {text!r}") from None
        ok = math.isfinite(v) and not (lo is not None and (v <= lo if lo_open else v < lo)) \
            and not (hi is not None and (v >= hi if hi_open else v > hi))
        if not ok:
            raise argparse.ArgumentTypeError(f"must be a number {rng}, got {text}")
        return v
    parse.__name__ = "float_range"
    parse.bounds = (lo, hi)
    return parse


seed = int_range(0, SEED_MAX)


def input_file(what: str):
    """argparse type: an existing regular file (a folder or a missing path is one line naming `what`),
    checked where it enters, before any design is generated."""
    def parse(text: str) -> str:
        from .outputs import check_input_file
        try:
            check_input_file(text, what)
        except OSError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return text
    parse.__name__ = "input_file"
    return parse
