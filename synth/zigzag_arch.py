"""Accelerator descriptions for ZigZag (KU Leuven's mapper, `zigzag-dse`): ecomac's three tiles written
as ZigZag accelerators, a user's ZigZag accelerator YAML, and the energy per access of every memory,
priced by ecomac (synth/movement.py), not by ZigZag's own figures.

Architectures (`parse_arch`):
  stream                      synth/network.py's model (no ZigZag)
  tile-vn | tile-near | tile-in[,NAME=VALUE...]   the tiles of docs/tiles.md as one accelerator:
      lanes=64, depth=256     one tile: `lanes` MAC lanes (ZigZag D1, unrolling output channels K),
                              `depth` weight rows (a weight memory of lanes x depth weights)
      parallel=16             tiles computing at once (ZigZag D2, unrolling input channels C)
      tiles=auto              tiles holding weights: auto = as many as the network's weights need
                              (weights resident across inferences); N = a fixed capacity of N tiles
      bus_bits=64, bus_mm=1   tile-vn's memory-to-PE bus (width, length)
      act_kb=1024             the shared activation buffer (inputs and outputs of a layer), KB
      ibuf_b=2048             each computing tile's input buffer (x elements for its lanes), bytes;
                              0 = none (x straight from the activation buffer)
      storage=index           asm weights stored as compact indices (decoded per lane) or control words
  FILE.yaml                   a ZigZag accelerator description (ZigZag's format; operands I1 = inputs,
                              I2 = weights, O = outputs); ecomac re-prices its memories and MAC

Memory levels of a tile accelerator (bottom up; per access, 45 nm, synth.movement's model):
  acc        each lane's accumulator (O): free here, it is inside the MAC's netlist
  wmem       tile-vn: the tile's weight array (lanes x depth), read one bus word (bus_bits) per beat,
             plus the bus: the row's bits over bus_mm of wire; tile-near: the same array, one whole row
             per read; tile-in: one column sub-array per lane (depth weights), one weight per read
  bank       tile-in (int8, mfmac, asm): the register file of x multiples, written once per x element
             (its reads, one per selector per lane per MAC, are priced per MAC: `bank_reads`)
  ibuf       each computing tile's input buffer (I1), one x element per read
  act        the activation buffer (I1 and O), 64-bit words
  dram       I1, I2 and O, 64-bit words at synth.reference.DRAM_USED_PJ
ZigZag sees tile-vn's weight port as row-wide (so it unrolls all lanes, as the RTL does) with bus-word
granularity; ecomac converts its row reads back into bus beats.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TILE_KINDS", "ARCH_CHOICES", "Arch", "parse_arch", "Precision", "precision", "accelerator",
           "layer_mapping"]

TILE_KINDS = ("tile-vn", "tile-near", "tile-in")
ARCH_CHOICES = ("stream",) + TILE_KINDS
TILE_DEFAULTS = {"lanes": 64, "depth": 256, "parallel": 16, "tiles": "auto", "bus_bits": 64, "bus_mm": 1.0,
                 "act_kb": 1024, "ibuf_b": 2048, "storage": "index"}
_LIMITS = {"lanes": (1, 4096), "depth": (1, 1 << 20), "parallel": (1, 4096), "tiles": (1, 1 << 24),
           "bus_bits": (1, 4096), "act_kb": (1, 1 << 20), "ibuf_b": (0, 1 << 20)}
DRAM_WORD_BITS = 64
ACT_WORD_BITS = 64


@dataclass(frozen=True)
class Arch:
    name: str                      # the spec as given (printed with every result)
    kind: str                      # stream | tile-vn | tile-near | tile-in | yaml
    params: dict = field(default_factory=dict)
    path: str | None = None        # kind == yaml

    @property
    def label(self) -> str:
        return Path(self.path).name if self.kind == "yaml" else self.name


def parse_arch(text) -> Arch:
    """stream, tile-vn|tile-near|tile-in[,NAME=VALUE...] or a ZigZag accelerator FILE.yaml; one-line
    ValueError otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"architecture must be one of {', '.join(ARCH_CHOICES)} or a ZigZag accelerator "
                         f"FILE.yaml, got {text!r}")
    t = text.strip()
    if t.endswith((".yaml", ".yml")):
        p = Path(t)
        if not p.is_file():
            raise ValueError(f"architecture file {t} does not exist" if not p.exists()
                             else f"architecture file {t} is not a file")
        return Arch(t, "yaml", {}, t)
    head, *rest = t.split(",")
    if head not in ARCH_CHOICES:
        raise ValueError(f"unknown architecture {head!r} (architectures: {', '.join(ARCH_CHOICES)}, or a "
                         f"ZigZag accelerator FILE.yaml)")
    if head == "stream":
        if rest:
            raise ValueError("architecture stream takes no parameters (its memory is the net file's \"memory\")")
        return Arch(t, "stream")
    params = dict(TILE_DEFAULTS)
    for item in rest:
        k, eq, v = item.partition("=")
        k, v = k.strip(), v.strip()
        if not eq or k not in TILE_DEFAULTS:
            raise ValueError(f"architecture {t!r}: {item!r} is not NAME=VALUE with NAME one of "
                             f"{', '.join(TILE_DEFAULTS)}")
        if k == "storage":
            if v not in ("index", "control"):
                raise ValueError(f"architecture {t!r}: storage must be index or control, got {v!r}")
            params[k] = v
        elif k == "bus_mm":
            try:
                params[k] = float(v)
            except ValueError:
                params[k] = -1.0
            if not (params[k] >= 0 and math.isfinite(params[k])):
                raise ValueError(f"architecture {t!r}: bus_mm must be a length >= 0 (mm), got {v!r}")
        elif k == "tiles" and v == "auto":
            params[k] = v
        else:
            lo, hi = _LIMITS[k]
            if not v.isdigit() or not lo <= int(v) <= hi:
                raise ValueError(f"architecture {t!r}: {k} must be an integer in {lo}..{hi}"
                                 + (" or auto" if k == "tiles" else "") + f", got {v!r}")
            params[k] = int(v)
    if head != "tile-vn" and any(i.split("=")[0].strip() in ("bus_bits", "bus_mm") for i in rest):
        raise ValueError(f"architecture {t!r}: bus_bits and bus_mm apply to tile-vn only")
    return Arch(t, head, params)


# ---- operand widths of a datapath ------------------------------------------------------------
@dataclass(frozen=True)
class Precision:
    x_bits: int
    w_bits: int                    # stored bits per weight
    acc_bits: int
    bank: tuple | None             # tile-in's bank of x multiples (entries, bits, reads per lane), or None
    decoder: tuple | None          # asm index storage: (w_bits, alphabet) of the per-lane decoder


def precision(datapath: str, storage: str = "index") -> Precision:
    """Operand widths of a datapath spec (golden.datapath grammar) as a tile stores and streams them."""
    from golden import asm as gasm
    from golden import tile as gtile

    from .network import parse_spec
    dp = parse_spec(datapath)
    p = dp.params
    acc = p.get("acc_bits", 24)
    if dp.kind == "fp32":
        return Precision(32, 32, 32, None, None)
    if dp.kind == "int8":
        return Precision(8, 8, acc, gtile.spec("in", 1, 1, "int", 8, 8, acc_bits=max(acc, 16)).bank, None)
    if dp.kind == "mfmac":
        e = p["exp_bits"]
        s = gtile.spec("in", 1, 1, "mfmac", exp_bits=e, acc_bits=64)
        return Precision(1 + e, 1 + e, acc, s.bank, None)
    if dp.kind == "asm":
        a, wb, xb = tuple(p["alphabet"]), p["w_bits"], p["x_bits"]
        s = gtile.spec("in", 1, 1, "asm", xb, wb, alphabet=a, acc_bits=64, weight_storage=storage)
        dec = (wb, a) if storage == "index" else None
        bits = gasm.compact_bits(a, wb) if storage == "index" else gasm.encoded_bits(a, wb)
        return Precision(xb, bits, acc, s.bank, dec)
    return Precision(8, 8, acc, None, None)            # approx, lut: 8-bit operands on their own multiplier


# ---- ZigZag accelerator descriptions -----------------------------------------------------------
def _memory(size_bits: int, bw_min: int, bw_max: int, operands: list[str], served: list[str],
            r_pj: float, w_pj: float) -> dict:
    rd, wr = [], []
    for op in operands:
        rd += [f"{op}, tl"] + ([f"{op}, th"] if op == "O" else [])
        wr += [f"{op}, fh"] + ([f"{op}, fl"] if op == "O" else [])
    return {"size": int(size_bits), "r_cost": float(r_pj), "w_cost": float(w_pj), "area": 0, "latency": 1,
            "operands": operands, "served_dimensions": served,
            "ports": [{"name": "r_port_1", "type": "read", "bandwidth_min": int(bw_min), "bandwidth_max": int(bw_max),
                       "allocation": rd},
                      {"name": "w_port_1", "type": "write", "bandwidth_min": int(bw_min),
                       "bandwidth_max": int(bw_max), "allocation": wr}]}


def tile_bits(arch: Arch, prec: Precision) -> int:
    return arch.params["lanes"] * arch.params["depth"] * prec.w_bits


def accelerator(arch: Arch, prec: Precision, mac_pj: float, tiles: int, act_on_chip: bool = False) -> tuple[dict, dict]:
    """(ZigZag accelerator description, prices): prices[memory] = {read_pj, write_pj, ...} per access
    of the port word ZigZag counts in (see the module docstring); `tiles` = tiles holding weights;
    act_on_chip: the layer's inputs and outputs live in the activation buffer (DRAM holds weights only)."""
    from . import reference
    from .movement import DEFAULT_MODEL, MovementModel
    P = arch.params
    lanes, depth, par = P["lanes"], P["depth"], P["parallel"]
    dims = ["D1", "D2"] if par > 1 else ["D1"]
    per_tile = -(-tiles // par)                       # weight tiles behind each computing tile
    row = lanes * prec.w_bits
    tile_bytes = lanes * depth * prec.w_bits / 8
    mems, prices = {}, {}
    mems["acc"] = _memory(prec.acc_bits, prec.acc_bits, prec.acc_bits, ["O"], [], 0.0, 0.0)
    prices["acc"] = {"read_pj": 0.0, "write_pj": 0.0, "word_bits": prec.acc_bits}
    if arch.kind == "tile-vn":
        model = MovementModel(bus_mm=P["bus_mm"])
        bus = P["bus_bits"]
        beats = -(-row // bus)
        read = model.sram_pj(tile_bytes, bus)
        bus_pj = row / beats * model.bus_pj_per_bit        # the last beat's padding does not toggle
        mems["wmem"] = _memory(per_tile * depth * row, bus, beats * bus, ["I2"], ["D1"], beats * (read + bus_pj),
                               beats * read)
        prices["wmem"] = {"read_pj": read, "write_pj": read, "bus_pj": bus_pj, "word_bits": bus, "beats": beats}
    elif arch.kind == "tile-near":
        read = DEFAULT_MODEL.sram_pj(tile_bytes, row)
        mems["wmem"] = _memory(per_tile * depth * row, row, row, ["I2"], ["D1"], read, read)
        prices["wmem"] = {"read_pj": read, "write_pj": read, "word_bits": row}
    else:
        read = DEFAULT_MODEL.sram_pj(depth * prec.w_bits / 8, prec.w_bits)
        mems["wmem"] = _memory(per_tile * depth * prec.w_bits, prec.w_bits, prec.w_bits, ["I2"], [], read, read)
        prices["wmem"] = {"read_pj": read, "write_pj": read, "word_bits": prec.w_bits}
        if prec.bank is not None:
            entries, bits, _ = prec.bank
            write = reference.sram_access_pj(entries * bits / 8, entries * bits)
            mems["bank"] = _memory(prec.x_bits, prec.x_bits, prec.x_bits, ["I1"], ["D1"], 0.0, write)
            prices["bank"] = {"read_pj": 0.0, "write_pj": write, "word_bits": prec.x_bits,
                              "entry_read_pj": reference.sram_access_pj(entries * bits / 8, bits)}
    if P["ibuf_b"]:
        ib = reference.sram_access_pj(P["ibuf_b"], prec.x_bits)
        mems["ibuf"] = _memory(P["ibuf_b"] * 8, prec.x_bits, prec.x_bits, ["I1"], ["D1"], ib, ib)
        prices["ibuf"] = {"read_pj": ib, "write_pj": ib, "word_bits": prec.x_bits}
    act_bytes = P["act_kb"] * 1024
    act = reference.sram_access_pj(act_bytes, ACT_WORD_BITS)
    mems["act"] = _memory(act_bytes * 8, ACT_WORD_BITS, ACT_WORD_BITS, ["I1", "O"], dims, act, act)
    prices["act"] = {"read_pj": act, "write_pj": act, "word_bits": ACT_WORD_BITS}
    mems["dram"] = _memory(1 << 40, DRAM_WORD_BITS, DRAM_WORD_BITS, ["I2"] if act_on_chip else ["I1", "I2", "O"], dims,
                           reference.DRAM_USED_PJ, reference.DRAM_USED_PJ)
    prices["dram"] = {"read_pj": reference.DRAM_USED_PJ, "write_pj": reference.DRAM_USED_PJ,
                      "word_bits": DRAM_WORD_BITS}
    desc = {"name": f"ecomac-{arch.kind}", "memories": mems,
            "operational_array": {"unit_energy": float(mac_pj), "unit_area": 1, "dimensions": dims,
                                  "sizes": [lanes, par] if par > 1 else [lanes]}}
    return desc, prices


def load_user(arch: Arch, mac_pj: float, reprice: bool = True) -> tuple[dict, dict]:
    """A user's ZigZag accelerator YAML, validated by ZigZag, its memories re-priced by ecomac: the
    largest (or any named *dram*) at DRAM_USED_PJ per 64 bits, every other one by
    reference.sram_access_pj(its size, its port width (bandwidth_max: ZigZag counts accesses of that
    many bits)); the MAC at ecomac's netlist energy
    (reprice=False: the file's own costs, for ZigZag's own figure)."""
    import yaml

    from zigzag.parser.accelerator_validator import AcceleratorValidator

    from . import reference
    where = f"architecture file {arch.path}"
    try:
        data = yaml.safe_load(Path(arch.path).read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ValueError(f"{where}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("memories"), dict) or not data["memories"]:
        raise ValueError(f"{where}: ZigZag rejects it: it needs `memories` (a mapping) and `operational_array`")
    import logging
    logging.disable(logging.CRITICAL)
    try:
        v = AcceleratorValidator(data)
        norm = v.normalized_data
        ok = v.validate()
    except Exception as e:                                    # noqa: BLE001 - ZigZag's own checks raise anything
        raise ValueError(f"{where}: ZigZag rejects it ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    finally:
        logging.disable(logging.NOTSET)
    if not ok or norm is None:
        raise ValueError(f"{where}: ZigZag rejects it ({str(v.validator.errors)[:200]})")
    if norm["operational_array"].get("is_imc"):
        raise ValueError(f"{where}: ZigZag's in-memory (is_imc) arrays are priced by ZigZag's own IMC model, "
                         f"not by ecomac; describe the array as digital or use --arch tile-in")
    mems = norm["memories"]
    biggest = max(mems, key=lambda n: mems[n]["size"])
    prices = {}
    for name, m in mems.items():
        bw = max(p["bandwidth_max"] for p in m["ports"])     # ZigZag counts accesses of bandwidth_max bits
        if "dram" in name.lower() or name == biggest:
            e = reference.DRAM_USED_PJ * bw / DRAM_WORD_BITS
        else:
            e = reference.sram_access_pj(m["size"] / 8, bw)
        if reprice:
            m["r_cost"], m["w_cost"] = e, e
        else:
            e = m["r_cost"]
        prices[name] = {"read_pj": e, "write_pj": e, "word_bits": bw,
                        "file_read_pj": data["memories"][name].get("r_cost"),
                        "file_write_pj": data["memories"][name].get("w_cost")}
    if reprice:
        norm["operational_array"]["unit_energy"] = float(mac_pj)
    return norm, prices


def layer_mapping(arch: Arch, layer: dict) -> list[dict]:
    """ZigZag mapping for one layer: tiles unroll K over the lanes and C over the parallel tiles; a
    user's accelerator gets ZigZag's own spatial-mapping search."""
    links = {"O": "O", "W": "I2", "I": "I1"}
    if arch.kind == "yaml":
        return [{"name": "default", "memory_operand_links": links}]
    sizes = dict(zip(layer["loop_dims"], layer["loop_sizes"]))
    sm = {"D1": [f"K, {min(sizes['K'], arch.params['lanes'])}"]}
    if arch.params["parallel"] > 1:
        sm["D2"] = [f"C, {min(sizes['C'], arch.params['parallel'])}"]
    return [{"name": "default", "spatial_mapping": sm, "memory_operand_links": links}]
