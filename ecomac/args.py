"""Argument types and helpers shared by every command: a bad value is refused where it enters
(argparse calls the type), as one line naming what is allowed, before any work starts."""
from __future__ import annotations

import argparse

from rtl.registry import get_design, parse_params

__all__ = ["UsageError", "positive_int", "design_params", "add_design_args"]


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
