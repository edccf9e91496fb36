"""Parameter declarations and validation shared by every design.

Constructors validate their own arguments (so the Python API and the CLI
report the same one-line messages); `Param` only describes a parameter for
`ecomac list` and parses its `--param NAME=VALUE` text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Param", "check_int", "check_choice", "parse_int", "parse_int_list", "parse_bool"]


def check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    """Return `value` if it is an int in lo..hi, else raise with a one-line message."""
    allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer in {allowed}, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise ValueError(f"{name} must be in {allowed}, got {value}")
    return value


def check_choice(name: str, value: Any, choices) -> Any:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def parse_int(name: str, text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}") from None


def parse_int_list(name: str, text: str) -> tuple[int, ...]:
    items = text.split(",") if text.strip() else []
    if any(not t.strip() for t in items):       # '1,,3' or '1,3,': a member left out
        raise ValueError(f"{name} {text!r} has an empty member; give integers separated by single commas")
    try:
        return tuple(int(t, 0) for t in items)
    except ValueError:
        raise ValueError(f"{name} must be a comma-separated list of integers, got {text!r}") from None


def parse_bool(name: str, text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be a boolean (0/1/true/false), got {text!r}")


@dataclass(frozen=True)
class Param:
    """One design parameter: name, default, allowed values (as text) and a parser.

    `follows`, when given, makes the default depend on the other parameters: called with
    the parameters resolved so far (earlier ones first), it returns this one's default
    whenever the caller does not set it (e.g. acc_bits wide enough for exp_bits), and
    `follows_doc` says the rule in words for `ecomac list`. `default` stays the value at
    the other parameters' defaults (a test checks the two agree)."""
    name: str
    default: Any
    allowed: str
    doc: str
    parse: Callable[[str, str], Any] = parse_int
    follows: Callable[[dict], Any] | None = None
    follows_doc: str = ""

    def to_json(self) -> dict:
        default = list(self.default) if isinstance(self.default, tuple) else self.default
        out = {"name": self.name, "default": default, "allowed": self.allowed, "doc": self.doc}
        if self.follows is not None:
            out["default_rule"] = self.follows_doc
        return out
