"""The network energy model's layer list: the net file (JSON) format, `Layer` and `Net`, their
validation (one-line ValueErrors naming the layer and the key) and loading.

Net file (JSON)::

    {"name": "resnet18", "batch": 1,
     "memory": {"sram_bytes": 32768, "pe_rows": 16, "pe_cols": 16},      (optional)
     "layers": [
       {"kind": "conv", "name": "conv1", "in_ch": 3, "out_ch": 64, "kernel": 7,
        "H": 224, "W": 224, "stride": 2, "padding": 3, "repeat": 1},
       {"kind": "linear", "name": "fc", "in": 512, "out": 1000, "tokens": 1, "repeat": 1}]}

  linear: y = W x for `tokens` vectors: MACs = in x out x tokens x batch.
  conv:   kernel (int or [kh, kw]), stride (int or [sh, sw]), padding (int, [ph, pw] or
          [top, left, bottom, right]), dilation (int or [dh, dw]) (defaults 1, 0, 1) give
          Ho = (H + top + bottom - dh (kh - 1) - 1) // sh + 1 (same for Wo); groups (default 1;
          in_ch = groups: depthwise): MACs = out_ch x in_ch / groups x kh x kw x Ho x Wo x batch.
  matmul: a product of two activations (attention's q k^T and a v): `count` (default 1)
          independent M x K by K x N products per sample: MACs = count x M x K x N x batch;
          no weights (both operands are activations, read and written as such).
  repeat: the layer occurs that many times (identical blocks, attention heads).
  float:  true = no datapath covers this product (it stays float32): priced at fp32 on every
          datapath, never dropped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = ["Layer", "Net", "MEMORY_DEFAULTS", "parse_net", "load_net", "conv_geometry", "layer_from_spec"]

MEMORY_DEFAULTS = {"sram_bytes": 32 * 1024, "pe_rows": 16, "pe_cols": 16}

_KINDS = {
    "linear": {"required": ("in", "out"), "optional": {"tokens": 1, "repeat": 1}},
    "conv": {"required": ("in_ch", "out_ch", "kernel", "H", "W"),
             "optional": {"stride": 1, "padding": 0, "repeat": 1, "groups": 1, "dilation": 1}},
    "matmul": {"required": ("M", "K", "N"), "optional": {"count": 1, "repeat": 1}},
}
_NON_SHAPE = {"kind", "name", "float"}


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str
    shape: str          # human-readable
    macs: int           # per matrix product, all repeats and the batch included
    weights: int        # elements (all repeats)
    inputs: int
    outputs: int
    dims: dict = field(default_factory=dict, compare=False)   # the validated spec (kind's keys, defaults filled)
    float: bool = False     # no datapath covers it: priced at fp32


@dataclass
class Net:
    name: str
    layers: list[Layer]
    batch: int = 1
    memory: dict = field(default_factory=lambda: dict(MEMORY_DEFAULTS))

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


def _pos_int(where: str, key: str, v, zero_ok: bool = False) -> int:
    lo = 0 if zero_ok else 1
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        want = "a non-negative integer" if zero_ok else "a positive integer"
        raise ValueError(f"{where}: {key} must be {want}, got {json.dumps(v)}")
    return v


def layer_from_spec(i: int, spec, batch: int) -> Layer:
    """Layer `i` of a net file (a JSON object) at `batch`, validated."""
    if not isinstance(spec, dict):
        raise ValueError(f"layer {i}: must be a JSON object, got {json.dumps(spec)[:40]}")
    name = str(spec.get("name", f"layer{i}"))
    where = f"layer {i} ({name})"
    kind = spec.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"{where}: unknown kind {json.dumps(kind)} (kinds: {', '.join(sorted(_KINDS))})")
    rule = _KINDS[kind]
    for k in spec:
        if k not in _NON_SHAPE and k not in rule["required"] and k not in rule["optional"]:
            allowed = ", ".join(list(rule["required"]) + list(rule["optional"]))
            raise ValueError(f"{where}: unknown key {k!r} for a {kind} layer (keys: {allowed})")
    for k in rule["required"]:
        if k not in spec:
            raise ValueError(f"{where}: {kind} layer needs {k!r}")
    v = {**rule["optional"], **{k: spec[k] for k in spec if k not in _NON_SHAPE}}
    rep = _pos_int(where, "repeat", v["repeat"])
    if kind == "linear":
        n_in, n_out, tok = (_pos_int(where, k, v[k]) for k in ("in", "out", "tokens"))
        t = tok * batch
        return Layer(name, kind, f"{n_in}->{n_out} x{tok} tokens" + (f" x{rep}" if rep > 1 else ""),
                     rep * n_in * n_out * t, rep * n_in * n_out, rep * n_in * t, rep * n_out * t, dims=v)
    if kind == "matmul":
        M, K, N, cnt = (_pos_int(where, k, v[k]) for k in ("M", "K", "N", "count"))
        n = rep * cnt * batch
        shape = f"{M}x{K} @ {K}x{N}" + (f" x{cnt}" if cnt > 1 else "") + (f" x{rep}" if rep > 1 else "")
        return Layer(name, kind, shape,
                     n * M * K * N, 0, n * (M * K + K * N), n * M * N, dims=v)
    cin, cout, H, W = (_pos_int(where, k, v[k]) for k in ("in_ch", "out_ch", "H", "W"))
    groups = _pos_int(where, "groups", v["groups"])
    if cin % groups or cout % groups:
        raise ValueError(f"{where}: groups {groups} must divide in_ch {cin} and out_ch {cout}")
    kh, kw, Ho, Wo = conv_geometry(v, where)
    st, dl = _pair(where, "stride", v["stride"]), _pair(where, "dilation", v["dilation"])
    extra = (f" g{groups}" if groups > 1 else "") + (f" d{dl[0]}x{dl[1]}" if dl != (1, 1) else "")
    sts = f"s{st[0]}" if st[0] == st[1] else f"s{st[0]}x{st[1]}"
    shape = f"{cin}->{cout} k{kh}x{kw} {sts}{extra} {H}x{W}->{Ho}x{Wo}" + (f" x{rep}" if rep > 1 else "")
    return Layer(name, kind, shape,
                 rep * cout * (cin // groups) * kh * kw * Ho * Wo * batch, rep * cout * (cin // groups) * kh * kw,
                 rep * cin * H * W * batch, rep * cout * Ho * Wo * batch, dims=v)


def _pair(where: str, key: str, v) -> tuple:
    if isinstance(v, list) and len(v) == 2:
        return tuple(_pos_int(where, key, x) for x in v)
    if isinstance(v, list):
        raise ValueError(f"{where}: {key} must be an integer or a pair, got {json.dumps(v)}")
    x = _pos_int(where, key, v)
    return (x, x)


def conv_geometry(v: dict, where: str = "conv") -> tuple:
    """(kh, kw, Ho, Wo) of a conv layer entry (defaults for stride, padding, dilation)."""
    kern = v["kernel"]
    if isinstance(kern, list) and len(kern) == 2:
        kh, kw = (_pos_int(where, "kernel", x) for x in kern)
    elif isinstance(kern, list):
        raise ValueError(f"{where}: kernel must be an integer or [kh, kw], got {json.dumps(kern)}")
    else:
        kh = kw = _pos_int(where, "kernel", kern)
    sh, sw = _pair(where, "stride", v.get("stride", 1))
    dh, dw = _pair(where, "dilation", v.get("dilation", 1))
    pad = v.get("padding", 0)
    if isinstance(pad, list) and len(pad) == 4:
        t, l, b, r = (_pos_int(where, "padding", x, zero_ok=True) for x in pad)
    elif isinstance(pad, list) and len(pad) == 2:
        t, l = (_pos_int(where, "padding", x, zero_ok=True) for x in pad)
        b, r = t, l
    elif isinstance(pad, list):
        raise ValueError(f"{where}: padding must be an integer, [ph, pw] or [top, left, bottom, right], "
                         f"got {json.dumps(pad)}")
    else:
        t = l = b = r = _pos_int(where, "padding", pad, zero_ok=True)
    H, W = v["H"], v["W"]
    Ho, Wo = (H + t + b - dh * (kh - 1) - 1) // sh + 1, (W + l + r - dw * (kw - 1) - 1) // sw + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"{where}: kernel {kh}x{kw} does not fit the {H}x{W} input with padding {json.dumps(pad)}")
    return kh, kw, Ho, Wo


def _float_flag(i: int, spec: dict, layer: Layer) -> Layer:
    f = spec.get("float", False)
    if not isinstance(f, bool):
        raise ValueError(f"layer {i} ({layer.name}): float must be true or false, got {json.dumps(f)}")
    return replace(layer, float=f) if f else layer


def parse_net(obj, source: str = "net") -> Net:
    """Validate a net description (the JSON object) into a Net; one-line ValueError otherwise."""
    try:
        if not isinstance(obj, dict):
            raise ValueError("the top level must be a JSON object with a \"layers\" list")
        for k in obj:
            if k not in ("name", "description", "batch", "memory", "layers"):
                raise ValueError(f"unknown key {k!r} (keys: name, description, batch, memory, layers)")
        layers = obj.get("layers")
        if not isinstance(layers, list) or not layers:
            raise ValueError("\"layers\" must be a non-empty list")
        batch = _pos_int("net", "batch", obj.get("batch", 1))
        mem = dict(MEMORY_DEFAULTS)
        m = obj.get("memory", {})
        if not isinstance(m, dict):
            raise ValueError("\"memory\" must be an object")
        for k, val in m.items():
            if k not in MEMORY_DEFAULTS:
                raise ValueError(f"memory: unknown key {k!r} (keys: {', '.join(MEMORY_DEFAULTS)})")
            mem[k] = _pos_int("memory", k, val)
        return Net(str(obj.get("name", source)), [_float_flag(i, s, layer_from_spec(i, s, batch)) for i, s in
                                                   enumerate(layers)], batch, mem)
    except ValueError as e:
        raise ValueError(f"net file {source}: {e}") from None


def load_net(path) -> Net:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"net file {path} does not exist")
    try:
        obj = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"net file {path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"net file {path}: not a text file") from None
    return parse_net(obj, str(path))


# ---- datapaths --------------------------------------------------------------------------
# A datapath is golden.datapath's (one parser, one set of parameters); here each parsed
# datapath gets its energy recipe: the fused MAC design to price, its multiplier part alone,
# and the operand streams that drive them.
