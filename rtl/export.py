"""Verilog generation and datasheets for registered designs."""
from __future__ import annotations

import re

from amaranth.back import verilog
from amaranth.hdl import ShapeCastable
from amaranth.lib import wiring

from .registry import Design, get_design

__all__ = ["generate", "generate_component", "datasheet", "ports"]


def _width_signed(shape) -> tuple[int, bool]:
    if isinstance(shape, ShapeCastable):
        shape = shape.as_shape()
    from amaranth import Shape
    s = Shape.cast(shape)
    return s.width, s.signed


def ports(component, verilog_text: str | None = None) -> list[dict]:
    """Every port: name, direction, width, signed (clk/rst when the design is clocked)."""
    out = []
    if verilog_text is not None and re.search(r"\binput\s+clk\b", verilog_text):
        out += [{"name": "clk", "direction": "in", "width": 1, "signed": False},
                {"name": "rst", "direction": "in", "width": 1, "signed": False}]
    for path, member in component.signature.members.flatten():
        if not member.is_port:
            continue
        width, signed = _width_signed(member.shape)
        out.append({"name": "__".join(map(str, path)),
                    "direction": "in" if member.flow == wiring.In else "out",
                    "width": width, "signed": signed})
    return out


_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def generate(name: str, params: dict | None = None, module: str | None = None) -> tuple[str, dict]:
    """Return (verilog_text, datasheet) for design `name` with `params`; `module` renames the
    top module (and prefixes its submodules), e.g. to put several variants in one project."""
    text, sheet, _ = generate_component(name, params, module)
    return text, sheet


def generate_component(name: str, params: dict | None = None,
                       module: str | None = None) -> tuple[str, dict, object]:
    """(verilog_text, datasheet, the elaborated component): the component keeps what its
    elaboration recorded (e.g. the array multipliers' carry-save rows for the formal proof)."""
    d: Design = get_design(name)
    if module is not None and not _MODULE_NAME.fullmatch(module):
        raise ValueError(f"module name must be a Verilog identifier (letters, digits, _), got {module!r}")
    full = d.full_params(params)
    comp = d.build(full)        # constructor checks + every port within the toolchain's width limit
    text = verilog.convert(comp, name=module or d.module, emit_src=False)
    sheet = datasheet(d, full, comp, text)
    if module is not None:
        sheet["module"] = module
    return text, sheet, comp


def datasheet(d: Design, params: dict, comp, verilog_text: str) -> dict:
    sheet = {
        "design": d.name,
        "module": d.module,
        "description": d.description,
        "parameters": {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()},
        "ports": ports(comp, verilog_text),
        "latency": getattr(comp, "latency", 0),
    }
    doc = (type(comp).__doc__ or "").strip()
    if doc:
        sheet["notes"] = " ".join(doc.split())
    extra = getattr(comp, "datasheet_extra", None)
    if extra:
        sheet.update(extra() if callable(extra) else extra)
    return sheet
