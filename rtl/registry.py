"""The catalogue of designs: name -> parameters, builder, description.

Design modules register themselves with `@design(...)`; `rtl/__init__.py`
imports every module of the package so the catalogue is complete.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .params import Param

__all__ = ["Design", "design", "get_design", "all_designs", "parse_params", "build", "check_ports",
           "MAX_SIGNAL_BITS"]

# Amaranth's netlist numbers the bits of one signal with 16 bits (amaranth.hdl._nir: `assert
# bit in range(1 << 16)`) and its RTLIL back end refuses wires wider than 2^16: a port wider
# than this is refused before elaboration (which would run for minutes and then fail).
MAX_SIGNAL_BITS = 1 << 16

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
        """Defaults (plain or `follows` rules) overlaid with `params`; unknown names are an error."""
        params = dict(params or {})
        known = {p.name for p in self.params}
        for name in params:
            if name not in known:
                allowed = ", ".join(sorted(known)) or "none"
                raise ValueError(f"unknown parameter {name!r} for design {self.name} (parameters: {allowed})")
        # the given values and the plain defaults first, then every `follows` rule the caller
        # did not override, in declaration order (a rule sees the rules before it applied)
        out = {p.name: params[p.name] if p.name in params else p.default for p in self.params}
        for p in self.params:
            if p.follows is not None and p.name not in params:
                try:
                    out[p.name] = p.follows(dict(out))
                except (TypeError, ValueError, KeyError, ArithmeticError):
                    pass        # an invalid other parameter: its constructor check says which
        return out

    def build(self, params: dict | None = None):
        """The component, after checking every port fits the toolchain (check_ports)."""
        full = self.full_params(params)
        comp = self.cls(**full)
        check_ports(self, full, comp)
        return comp

    def validate(self, params: dict | None = None) -> dict:
        """The full parameters after the constructor's and the port checks, without keeping the
        component (silenced: Amaranth would warn that it was never elaborated)."""
        full = self.full_params(params)
        comp = self.cls(**full)
        if hasattr(comp, "_MustUse__silence"):
            comp._MustUse__silence = True
        check_ports(self, full, comp)
        return full

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
    """Parse CLI `NAME=VALUE` strings into typed parameters of design `d` (each name once)."""
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
        if name in out:
            raise ValueError(f"parameter {name} given twice; give each parameter once")
        out[name] = by_name[name].parse(name, text.strip())
    return out


def check_ports(d: Design, params: dict, comp) -> None:
    """Refuse a component with a port wider than MAX_SIGNAL_BITS (cheap: reads the signature)."""
    from amaranth import Shape
    from amaranth.hdl import ShapeCastable
    for path, member in comp.signature.members.flatten():
        if not member.is_port:
            continue
        shape = member.shape.as_shape() if isinstance(member.shape, ShapeCastable) else member.shape
        width = Shape.cast(shape).width
        if width > MAX_SIGNAL_BITS:
            shown = " ".join(f"{k}={v}" for k, v in params.items())
            raise ValueError(f"{d.name} {shown}: port {'__'.join(map(str, path))} would be {width:,} bits "
                             f"wide; the toolchain handles at most {MAX_SIGNAL_BITS:,} bits per signal "
                             f"(Amaranth's netlist limit)")


def build(name: str, params: dict | None = None):
    return get_design(name).build(params)
