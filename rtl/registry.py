"""The catalogue of designs: name -> parameters, builder, description.

Design modules register themselves with `@design(...)`; `rtl/__init__.py`
imports every module of the package so the catalogue is complete.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .params import Param

__all__ = ["Design", "design", "get_design", "all_designs", "parse_params", "build"]

_DESIGNS: dict[str, "Design"] = {}


@dataclass(frozen=True)
class Design:
    name: str                      # CLI name, e.g. "mfmac-pe"
    cls: Callable                  # component class (or factory) taking the params as keywords
    description: str               # one line
    params: tuple[Param, ...]
    default: bool = True           # part of `make verilog/synth/report`
    family: str = "core"
    op_count: Callable[[dict], int] = field(default=lambda p: 1)  # operations per cycle (energy/op)

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def full_params(self, params: dict | None = None) -> dict:
        """Defaults overlaid with `params`; unknown names are an error."""
        params = dict(params or {})
        known = {p.name for p in self.params}
        for name in params:
            if name not in known:
                allowed = ", ".join(sorted(known)) or "none"
                raise ValueError(f"unknown parameter {name!r} for design {self.name} (parameters: {allowed})")
        out = self.defaults()
        out.update(params)
        return out

    def build(self, params: dict | None = None):
        return self.cls(**self.full_params(params))

    def to_json(self) -> dict:
        return {"name": self.name, "family": self.family, "description": self.description,
                "params": [p.to_json() for p in self.params]}


def design(name: str, description: str, params: tuple[Param, ...] | list[Param], *,
           default: bool = True, family: str = "core", op_count=None):
    """Class decorator registering a component class under `name`."""
    def register(cls):
        if name in _DESIGNS:
            raise RuntimeError(f"design {name!r} registered twice")
        kw = {"op_count": op_count} if op_count is not None else {}
        _DESIGNS[name] = Design(name, cls, description, tuple(params), default, family, **kw)
        return cls
    return register


def _load_all() -> None:
    import rtl  # noqa: F401  (imports every design module)


def all_designs() -> list[Design]:
    _load_all()
    return [_DESIGNS[k] for k in sorted(_DESIGNS)]


def get_design(name: str) -> Design:
    _load_all()
    try:
        return _DESIGNS[name]
    except KeyError:
        raise ValueError(f"unknown design {name!r} (designs: {', '.join(sorted(_DESIGNS))})") from None


def parse_params(d: Design, items: list[str] | None) -> dict:
    """Parse CLI `NAME=VALUE` strings into typed parameters of design `d`."""
    by_name = {p.name: p for p in d.params}
    out = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--param must look like NAME=VALUE, got {item!r}")
        if name not in by_name:
            allowed = ", ".join(sorted(by_name)) or "none"
            raise ValueError(f"unknown parameter {name!r} for design {d.name} (parameters: {allowed})")
        out[name] = by_name[name].parse(name, text.strip())
    return out


def build(name: str, params: dict | None = None):
    return get_design(name).build(params)
