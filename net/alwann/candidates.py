"""ALWANN candidates: the approximate multipliers a tile may use, each with its energy per multiply.

Every point of `ecomac approx sweep` (synth.multipliers.sweep_points, N = 8) plus any `approx:` or
`lut:FILE.v` spec the user names; the exact mul-array is always one. Ordered by rising energy so
that neighbouring gene values are similar multipliers."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..datapath import parse

EXACT_SPEC = "approx:mul-array"


@dataclass(frozen=True)
class Candidate:
    spec: str                 # datapath spec (approx:FAMILY,... or lut:FILE.v[,top=NAME])
    label: str                # short name for tables and plots
    energy_pj: float          # the multiplier's energy per multiply (activity model)
    design: str | None        # approx family (the approx-mac's multiplier) or None for a lut circuit
    params: dict = field(default_factory=dict, hash=False, compare=False)   # family parameters (bits excluded)
    mre_pct: float | None = None

    def to_json(self) -> dict:
        return {"spec": self.spec, "label": self.label, "energy_pj": self.energy_pj, "design": self.design,
                "params": self.params, "mre_pct": self.mre_pct}


def _family_spec(design: str, params: dict) -> str:
    items = [f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in params.items() if k != "bits"]
    return ",".join([f"approx:{design}"] + items)


def _label(design: str, params: dict) -> str:
    items = " ".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in params.items() if k != "bits")
    return f"{design.removeprefix('mul-')}{(' ' + items) if items else ''}"


def sweep_specs() -> list[str]:
    """The `ecomac approx sweep` points (N = 8) as approx: datapath specs."""
    from synth.multipliers import sweep_points
    return [_family_spec(d, p) for d, p in sweep_points(bits=8)]


def _approx_candidate(dp) -> Candidate:
    from synth.multipliers import characterize
    fam = dp.params["family"]
    own = dp.family_params
    row = characterize(fam, {"bits": 8, **own})
    return Candidate(_family_spec(fam, own), _label(fam, own), float(row["energy_pj"]), fam,
                     {k: (int(v) if isinstance(v, bool) else v) for k, v in own.items()}, float(row["mre_pct"]))


def _circuit_candidate(spec: str, dp) -> Candidate:
    path, top = dp.params["file"], dp.params.get("top")
    try:
        from synth.characterize import characterize_verilog
    except ImportError:
        raise ValueError(f"multiplier {spec!r}: pricing a Verilog circuit needs synth/characterize.py, "
                         f"which this tree does not have") from None
    row = characterize_verilog([path], top=top)
    if "energy_pj" not in row:
        raise ValueError(f"multiplier {spec!r}: its characterization gives no energy_pj")
    label = f"lut:{Path(path).name}" + (f":{top}" if top else "")
    mre = row.get("mre_pct")
    return Candidate(dp.spec, label, float(row["energy_pj"]), None, {}, None if mre is None else float(mre))


def user_candidate(spec) -> Candidate:
    """A candidate from a user's spec: approx:FAMILY[,NAME=VALUE...] or lut:FILE.v[,top=NAME]
    (a bare table has no circuit, so no energy: refused). acc_bits stays the MAC's default."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"multiplier spec must be a non-empty string like approx:mul-drum,k=4 or lut:FILE.v, "
                         f"got {spec!r}")
    dp = parse(spec)        # its one-line errors (unknown family, missing file, ...)
    if dp.kind not in ("approx", "lut"):
        raise ValueError(f"multiplier {spec!r} is not an approximate multiplier (use approx:FAMILY[,NAME=VALUE...] "
                         f"or lut:FILE.v[,top=NAME])")
    if dp.acc_bits != 24:
        raise ValueError(f"multiplier {spec!r}: acc_bits is the tiles' (24), not a multiplier's choice")
    if dp.kind == "approx":
        return _approx_candidate(dp)
    if Path(dp.params["file"]).suffix not in (".v", ".sv"):
        raise ValueError(f"multiplier {spec!r}: a bare table has no circuit to price; give the multiplier's "
                         f"Verilog (lut:FILE.v[,top=NAME])")
    return _circuit_candidate(spec, dp)


def load_library(path) -> list[str]:
    """A library file: a JSON list of multiplier specs (strings). One-line errors."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"library {path} does not exist" if not p.exists() else f"library {path} is not a file")
    try:
        obj = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"library {path}: not valid JSON ({getattr(e, 'msg', 'not text')})") from None
    if not isinstance(obj, list) or not obj:
        raise ValueError(f"library {path}: must be a non-empty JSON list of multiplier specs "
                         f"(e.g. [\"approx:mul-drum,k=4\", \"lut:mult.v,top=mul8\"])")
    for i, s in enumerate(obj):
        if not isinstance(s, str) or not s.strip():
            raise ValueError(f"library {path}: entry {i} must be a spec string (approx:FAMILY[,NAME=VALUE...] or "
                             f"lut:FILE.v[,top=NAME]), got {json.dumps(s)[:60]}")
    return [s.strip() for s in obj]


def candidates(extra=(), library=None, sweep: bool = True) -> list[Candidate]:
    """The sweep's points (sweep=True) + `extra` specs + a library file's specs, deduplicated, by
    rising energy (ties by spec). The exact mul-array is always among them."""
    specs = sweep_specs() if sweep else []
    user = list(extra or ())
    if library is not None:
        user += load_library(library)
    out, seen = [], set()
    for s in specs + [EXACT_SPEC]:
        c = _approx_candidate(parse(s))
        if c.spec not in seen:
            seen.add(c.spec)
            out.append(c)
    for s in user:
        try:
            c = user_candidate(s)
        except ValueError as e:
            msg = str(e)
            raise ValueError(msg if s in msg else f"multiplier {s!r}: {msg}") from None
        if c.spec not in seen:
            seen.add(c.spec)
            out.append(c)
    return sorted(out, key=lambda c: (c.energy_pj, c.spec))


def short_spec(spec: str) -> str:
    dp = parse(spec)
    if dp.kind == "approx":
        return _label(dp.params["family"], dp.family_params).replace(" ", ",")
    return Path(dp.params["file"]).name
