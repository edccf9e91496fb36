"""A datapath: the one definition of "how a MAC computes" that energy, emulation, training,
search and the CLI all take from here.

Spec strings (one parser, `parse`; every error is one line naming the spec)::

    fp32                                   IEEE binary32 MAC (the float baseline)
    int8[,acc_bits=N]                      exact signed 8-bit MAC (int-mac bits=8)
    mfmac[,exp_bits=E][,acc_bits=N][,accumulator=serial|tree2|tree4|tree8|tree16]
                                           ALS-POTQ MF-MAC on (1+E)-bit PoT codes (mfmac-pe;
                                           the accumulator tree changes the circuit, not the sum)
    asm[,alphabet=1/3/5/7][,w_bits=W][,x_bits=X][,lanes=L][,acc_bits=N]
                                           alphabet set multiplier row (asm-pe-row); the
                                           alphabet's members are separated by '/', so they
                                           cannot clash with the commas between parameters
    approx:FAMILY[,NAME=VALUE...][,acc_bits=N]
                                           signed 8-bit sign-magnitude MAC on an unsigned
                                           approximate multiplier of golden/approx.py (approx-mac)
    lut:FILE[,top=NAME][,acc_bits=N]       the same sign-magnitude MAC around any 8x8 unsigned
                                           multiplier given as a table (FILE.bin: tf-approximate's
                                           65,536 little-endian uint16, index a*256 + b; FILE.npy:
                                           a 256x256 or 65,536 array) or as a circuit (FILE.v,
                                           characterized by exhaustive simulation one layer up,
                                           synth/characterize.py)

acc_bits defaults to 24 (every ecomac PE's default; the product's width where that is wider:
mfmac exp_bits >= 4) and is the two's-complement width at
which each output's accumulation wraps, exactly as the RTL's register does.

Operand codes (integers the MAC sees; `quantize` makes them from floats, `values` reads
their integer value, `check_codes` validates user-given ones):

    int8, approx, lut   x and w: signed 8-bit integers -128..127
    asm                 x: signed x_bits-bit integers; w: signed integers whose magnitude
                        the alphabet can represent at w_bits (golden/asm.py), |w| <= 2^w_bits - 1
    mfmac               x and w: PoT codes (golden/pot.py: sign in bit E, exponent field below)
    fp32                float32 values themselves

Quantizers map a float tensor t to (codes, scale) with t ~= values(codes) * scale:
int8/approx/lut/asm-x: symmetric, scale = max|t| / 127 (a float; per tensor or per slice
along `axis`); mfmac: golden.pot.quantize, scale = 2^k (a power of two: the MF-MAC's
adaptive per-tensor scale); asm-w: golden.asm.quantize onto the alphabet's set, scale = 2^k.
Scales never enter the MAC: the dequantization Y * sx * sw is applied to the integer
accumulations, so a per-output-channel weight scale (axis = the output axis) is legal for
every integer datapath.

`product(x, w)` is the golden product of one pair of codes (broadcast over arrays) and
`matmul_definition(X, W)` the straightforward definition of a layer's product: every pair's
golden product, summed, wrapped at acc_bits. Fast kernels (net/kernels.py) are proven equal
to it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import approx, approx_mac, asm, pot, pot_acc
from .fixed import wrap

__all__ = ["Datapath", "parse", "KINDS", "MAX_ACC_BITS", "load_table", "ALL_SPECS"]

KINDS = ("fp32", "int8", "mfmac", "asm", "approx", "lut")
MAX_ACC_BITS = 62          # int64 arithmetic holds every wrapped sum exactly
DEFAULT_ACC_BITS = 24
ALL_SPECS = ("fp32", "int8", "mfmac", "asm", "approx:FAMILY[,NAME=VALUE...]", "lut:FILE[,top=NAME]")

# parameters each kind takes (acc_bits for all but fp32), with defaults
_KIND_PARAMS = {
    "fp32": {},
    "int8": {"acc_bits": DEFAULT_ACC_BITS},
    "mfmac": {"exp_bits": 3, "acc_bits": DEFAULT_ACC_BITS, "accumulator": "serial"},
    "asm": {"alphabet": (1, 3, 5, 7), "w_bits": 8, "x_bits": 8, "lanes": 16, "acc_bits": DEFAULT_ACC_BITS},
    "approx": {"acc_bits": DEFAULT_ACC_BITS},          # + the family's own parameters
    "lut": {"top": None, "acc_bits": DEFAULT_ACC_BITS},
}


def _int(spec: str, name: str, text: str, lo: int, hi: int) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise ValueError(f"datapath {spec!r}: {name} must be an integer in {lo}..{hi}, got {text!r}") from None
    if not lo <= v <= hi:
        raise ValueError(f"datapath {spec!r}: {name} must be in {lo}..{hi}, got {v}")
    return v


def load_table(path) -> np.ndarray:
    """An 8x8 unsigned multiplier's product table: a 256x256 int64 array T[a, b].

    .bin: tf-approximate's format (65,536 little-endian uint16, index a*256 + b);
    .npy: a 256x256 array or 65,536 values in that order. One-line ValueError otherwise."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"table {path} is a directory, not a table file")
    if not p.is_file():
        raise ValueError(f"table {path} does not exist")
    if p.suffix == ".npy":
        try:
            t = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise ValueError(f"table {path}: not a readable .npy file ({str(e).splitlines()[0]})") from None
        if t.dtype.kind not in "iu":
            raise ValueError(f"table {path}: must hold integers, got dtype {t.dtype}")
        if t.size != 65536:
            raise ValueError(f"table {path}: an 8x8 multiplier table has 65,536 entries (256x256), got shape {t.shape}")
        t = t.astype(np.int64).reshape(256, 256)
    elif p.suffix == ".bin":
        raw = p.read_bytes()
        if len(raw) != 2 * 65536:
            raise ValueError(f"table {path}: a tf-approximate table has 131,072 bytes (65,536 uint16), got {len(raw):,}")
        t = np.frombuffer(raw, dtype="<u2").astype(np.int64).reshape(256, 256)
    else:
        raise ValueError(f"table {path}: unknown format {p.suffix or '(no suffix)'!r} (allowed: .bin, .npy, .v)")
    if t.min() < 0 or t.max() >= 1 << 16:
        raise ValueError(f"table {path}: products must be unsigned 16-bit values 0..65535")
    return t


@dataclass(frozen=True, eq=False)
class Datapath:
    """One parsed datapath spec. Build with `parse(spec)`; never mutated."""
    spec: str                         # as given
    kind: str
    params: dict = field(default_factory=dict)   # every parameter, defaults filled in
    table_array: np.ndarray | None = field(default=None, repr=False)   # approx/lut: T[|x|, |w|]

    # ---- identity ----------------------------------------------------------------------
    @property
    def canonical(self) -> str:
        """The spec with every parameter spelled out (stable: a key for caches and files)."""
        items = []
        for k, v in self.params.items():
            if k in ("family", "file") or v is None:
                continue
            if k == "alphabet":
                v = "/".join(map(str, v))
            elif isinstance(v, bool):
                v = int(v)
            items.append(f"{k}={v}")
        head = {"approx": f"approx:{self.params.get('family')}",
                "lut": f"lut:{self.params.get('file')}"}.get(self.kind, self.kind)
        return ",".join([head] + items)

    def __str__(self) -> str:
        return self.spec

    @property
    def acc_bits(self) -> int | None:
        return self.params.get("acc_bits")

    @property
    def is_float(self) -> bool:
        return self.kind == "fp32"

    @property
    def family_params(self) -> dict:
        """approx: the family's own parameters (bits excluded)."""
        if self.kind != "approx":
            return {}
        return {k: self.params[k] for k in approx_mac.FAMILY_PARAMS[self.params["family"]]}

    @property
    def operand_bits(self) -> dict:
        """Bits of a stored operand code per role (x, w): what memory traffic is charged."""
        if self.kind == "fp32":
            return {"x": 32, "w": 32}
        if self.kind == "mfmac":
            b = 1 + self.params["exp_bits"]
            return {"x": b, "w": b}
        if self.kind == "asm":
            return {"x": self.params["x_bits"], "w": 1 + self.params["w_bits"]}
        return {"x": 8, "w": 8}

    @property
    def mac_design(self) -> tuple[str, dict] | None:
        """(registered RTL design, its parameters) that computes this datapath's MAC, or None
        for a bare table (no circuit)."""
        p = self.params
        if self.kind == "fp32":
            return "fp32-mac", {}
        if self.kind == "int8":
            return "int-mac", {"bits": 8, "acc_bits": p["acc_bits"]}
        if self.kind == "mfmac":
            tree = {} if p["accumulator"] == "serial" else {"accumulator": p["accumulator"]}
            return "mfmac-pe", {"exp_bits": p["exp_bits"], "acc_bits": p["acc_bits"], **tree}
        if self.kind == "asm":
            return "asm-pe-row", {k: p[k] for k in ("x_bits", "w_bits", "alphabet", "lanes", "acc_bits")}
        if self.kind == "approx":
            return "approx-mac", {"multiplier": p["family"], "bits": 8, "acc_bits": p["acc_bits"],
                                  **self.family_params}
        return None   # lut: a Verilog circuit is priced from its characterized netlist (synth layer)

    # ---- operand codes -----------------------------------------------------------------
    def code_range(self, role: str) -> tuple[int, int]:
        """Inclusive (lo, hi) of the integer codes for role 'x' or 'w' (not fp32)."""
        if self.kind == "mfmac":
            return 0, (1 << (1 + self.params["exp_bits"])) - 1
        if self.kind == "asm":
            if role == "x":
                b = self.params["x_bits"]
                return -(1 << (b - 1)), (1 << (b - 1)) - 1
            top = (1 << self.params["w_bits"]) - 1
            return -top, top
        return -128, 127

    def check_codes(self, codes, role: str, what: str | None = None) -> np.ndarray:
        """Validate user-given codes (integer dtype, in range, representable): int64 array."""
        what = what or ("X" if role == "x" else "W")
        a = np.asarray(codes)
        if self.kind == "fp32":
            if a.dtype.kind not in "fiu":
                raise ValueError(f"{what}: the fp32 datapath takes numbers, got dtype {a.dtype}")
            return a.astype(np.float32)
        if a.dtype.kind not in "iu":
            raise ValueError(f"{what}: {self.kind} operand codes must be integers, got dtype {a.dtype}")
        a = a.astype(np.int64)
        lo, hi = self.code_range(role)
        if a.size and (a.min() < lo or a.max() > hi):
            bad = a[(a < lo) | (a > hi)].flat[0]
            raise ValueError(f"{what}: {self.kind} {role}-codes must be in {lo}..{hi}, found {bad}")
        if self.kind == "asm" and role == "w" and a.size:
            ok = asm.is_representable(a, self.params["alphabet"], self.params["w_bits"])
            if not ok.all():
                bad = a[~ok].flat[0]
                alph = "{" + ",".join(map(str, self.params["alphabet"])) + "}"
                raise ValueError(f"{what}: weight {bad} is not representable by alphabet {alph} at "
                                 f"w_bits={self.params['w_bits']} (see `ecomac asm values`)")
        return a

    def values(self, codes, role: str = "x") -> np.ndarray:
        """Integer value of each code (mfmac: +-2^(e-1); others: the code itself)."""
        if self.kind == "fp32":
            return np.asarray(codes, np.float32)
        if self.kind == "mfmac":
            return pot.decode(codes, self.params["exp_bits"])
        return np.asarray(codes, np.int64)

    def quantize(self, t, role: str = "x", axis: int | None = None):
        """Float tensor -> (codes, scale): t ~= values(codes) * scale.

        axis: None = one scale per tensor; an int = one scale per slice along that axis
        (scale then has t's shape with every other axis of size 1). mfmac and asm-w scales
        are powers of two."""
        t = np.asarray(t, np.float64)
        if not np.all(np.isfinite(t)):
            raise ValueError(f"datapath {self.spec}: cannot quantize a tensor holding NaN or Inf")
        if role not in ("x", "w"):
            raise ValueError(f"role must be 'x' or 'w', got {role!r}")
        if self.kind == "fp32":
            return t.astype(np.float32), 1.0
        if axis is not None:
            ax = axis % t.ndim
            moved = np.moveaxis(t, ax, 0)
            parts = [self.quantize(moved[i], role) for i in range(moved.shape[0])]
            codes = np.moveaxis(np.stack([c for c, _ in parts]), 0, ax)
            shape = [1] * t.ndim
            shape[ax] = t.shape[ax]
            return codes, np.array([s for _, s in parts], np.float64).reshape(shape)
        if self.kind == "mfmac":
            codes, k = pot.quantize(t, self.params["exp_bits"])
            return codes.astype(np.int64), float(np.ldexp(1.0, k))
        if self.kind == "asm" and role == "w":
            ints, k = asm.quantize(t, self.params["alphabet"], self.params["w_bits"])
            return ints.astype(np.int64), float(np.ldexp(1.0, k))
        lo, hi = self.code_range(role)
        amax = float(np.max(np.abs(t))) if t.size else 0.0
        scale = amax / hi if amax > 0 else 1.0
        return np.clip(np.round(t / scale), -hi, hi).astype(np.int64), scale

    # ---- the golden product ------------------------------------------------------------
    def table(self) -> np.ndarray | None:
        """approx/lut: the unsigned multiplier's 256x256 table T[|x|, |w|] (int64)."""
        return self.table_array

    def product(self, x, w) -> np.ndarray:
        """Golden signed product of code pairs (broadcast): what one MAC adds."""
        if self.kind == "fp32":
            return np.asarray(x, np.float32) * np.asarray(w, np.float32)
        x = np.asarray(x, np.int64)
        w = np.asarray(w, np.int64)
        if self.kind == "mfmac":
            return pot.product(x, w, self.params["exp_bits"])
        if self.kind in ("int8", "asm"):
            return x * w
        # approx / lut: sign-magnitude around the unsigned table (golden.approx_mac's mapping)
        sx, mx = approx_mac.magnitudes(x, 8)
        sw, mw = approx_mac.magnitudes(w, 8)
        m = self.table_array[mx, mw]
        return np.where(sx ^ sw, -m, m)

    def matmul_definition(self, X, W) -> np.ndarray:
        """Y = X.W by the definition: Y[m, n] = wrap(sum_k product(X[m, k], W[k, n])).

        X: M x K codes, W: K x N codes. int64 (fp32: float32 summed in float64, then
        rounded - the baseline, not fp32-mac's order). Memory M*K*N: for tests and small
        layers, the reference the fast kernels are proven against."""
        X = np.asarray(X)
        W = np.asarray(W)
        if X.ndim != 2 or W.ndim != 2 or X.shape[1] != W.shape[0]:
            raise ValueError(f"matmul: X must be M x K and W K x N, got {X.shape} and {W.shape}")
        p = self.product(X[:, :, None], W[None, :, :])
        if self.kind == "fp32":
            return p.astype(np.float64).sum(axis=1).astype(np.float32)
        return wrap(p.sum(axis=1, dtype=np.int64), self.params["acc_bits"]).astype(np.int64)


# ---- the parser ----------------------------------------------------------------------------
def _split(spec: str) -> tuple[str, list[tuple[str, str]]]:
    head, *items = [t.strip() for t in spec.split(",")]
    pairs, seen = [], set()
    for it in items:
        name, sep, value = it.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ValueError(f"datapath {spec!r}: expected NAME=VALUE after {head!r}, got {it!r}")
        if name in seen:
            raise ValueError(f"datapath {spec!r}: parameter {name} is given twice")
        seen.add(name)
        pairs.append((name, value))
    return head, pairs


def _unknown(spec: str, name: str, allowed) -> ValueError:
    takes = ", ".join(allowed) or "none"
    return ValueError(f"datapath {spec!r}: unknown parameter {name!r} (parameters: {takes})")


def parse(spec, *, table_loader=None) -> Datapath:
    """Parse a datapath spec (see the module doc); a Datapath passes through unchanged.

    table_loader(path, top) -> 256x256 table: how a `lut:FILE.v` circuit becomes a table
    (the network level passes synth.characterize's); without it a .v file is refused."""
    if isinstance(spec, Datapath):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"datapath must be a non-empty spec string (datapaths: {', '.join(ALL_SPECS)})")
    spec = spec.strip()
    head, pairs = _split(spec)
    if head.startswith("approx:"):
        return _parse_approx(spec, head[len("approx:"):].strip(), pairs)
    if head.startswith("lut:"):
        return _parse_lut(spec, head[len("lut:"):].strip(), pairs, table_loader)
    if head not in _KIND_PARAMS or head in ("approx", "lut"):
        raise ValueError(f"unknown datapath {head!r} (datapaths: {', '.join(ALL_SPECS)})")
    params = dict(_KIND_PARAMS[head])
    for name, value in pairs:
        if name not in params:
            raise _unknown(spec, name, params)
        if name == "alphabet":
            params[name] = _alphabet(spec, value)
        elif name == "w_bits":
            params[name] = _int(spec, name, value, 4, 12)
            if params[name] not in (4, 8, 12):
                raise ValueError(f"datapath {spec!r}: w_bits must be 4, 8 or 12, got {params[name]}")
        elif name == "x_bits":
            params[name] = _int(spec, name, value, 2, 16)
        elif name == "lanes":
            params[name] = _int(spec, name, value, 1, 64)
        elif name == "exp_bits":
            params[name] = _int(spec, name, value, 1, 5)
        elif name == "accumulator":
            try:
                params[name] = pot_acc.check_accumulator(value)
            except ValueError as e:
                raise ValueError(f"datapath {spec!r}: {e}") from None
        elif name == "acc_bits":
            params[name] = _int(spec, name, value, 2, MAX_ACC_BITS)
    _check_acc(spec, head, params, given="acc_bits" in dict(pairs))
    return Datapath(spec, head, params)


def _alphabet(spec: str, value: str) -> tuple[int, ...]:
    """'1/3/5/7' -> (1, 3, 5, 7): members separated by '/', validated by golden.asm."""
    items = value.split("/")
    if any(not t.strip() for t in items):
        raise ValueError(f"datapath {spec!r}: alphabet {value!r} has an empty member "
                         f"(odd integers in 1..15 separated by single '/', e.g. 1/3/5/7)")
    try:
        members = [int(t, 0) for t in items]
    except ValueError:
        raise ValueError(f"datapath {spec!r}: alphabet must be odd integers in 1..15 separated by '/' "
                         f"(e.g. 1/3/5/7), got {value!r}") from None
    try:
        return asm.parse_alphabet(members)
    except (ValueError, TypeError) as e:
        raise ValueError(f"datapath {spec!r}: {e}") from None


def _min_acc_bits(kind: str, params: dict) -> int:
    if kind == "mfmac":
        return pot.product_bits(params["exp_bits"])
    if kind == "asm":
        return asm.product_bits(params["x_bits"], params["w_bits"])
    if kind in ("int8",):
        return 16
    return approx_mac.product_bits(8)


def _check_acc(spec: str, kind: str, params: dict, given: bool) -> None:
    """acc_bits must hold one product; when not given it defaults to 24 or, for wider
    products (mfmac exp_bits >= 4, wide asm), to the product's width."""
    if kind == "fp32":
        return
    need = _min_acc_bits(kind, params)
    if not given:
        params["acc_bits"] = max(DEFAULT_ACC_BITS, need)
    if params["acc_bits"] < need:
        raise ValueError(f"datapath {spec!r}: acc_bits must be at least {need} (one product's width), "
                         f"got {params['acc_bits']}")


def _parse_approx(spec: str, family: str, pairs) -> Datapath:
    if not family:
        raise ValueError(f"datapath {spec!r}: needs a multiplier family after 'approx:' "
                         f"(families: {', '.join(approx_mac.FAMILY_PARAMS)})")
    if family not in approx_mac.FAMILY_PARAMS:
        raise ValueError(f"datapath {spec!r}: unknown multiplier family {family!r} "
                         f"(families: {', '.join(approx_mac.FAMILY_PARAMS)})")
    own = approx_mac.FAMILY_PARAMS[family]
    known = {k for ps in approx_mac.FAMILY_PARAMS.values() for k in ps}
    acc_given = False
    params = {"family": family, "acc_bits": DEFAULT_ACC_BITS}
    given = {}
    for name, value in pairs:
        if name in ("multiplier", "bits"):
            raise ValueError(f"datapath {spec!r}: {name} is fixed by the datapath (8-bit operands, "
                             f"the multiplier is the family named after 'approx:')")
        if name == "acc_bits":
            params["acc_bits"] = _int(spec, name, value, 2, MAX_ACC_BITS)
            acc_given = True
        elif name in own:
            if name == "correction":
                if value.lower() not in ("0", "1", "true", "false"):
                    raise ValueError(f"datapath {spec!r}: correction must be 0 or 1, got {value!r}")
                given[name] = value.lower() in ("1", "true")
            else:
                try:
                    given[name] = int(value, 0)
                except ValueError:
                    raise ValueError(f"datapath {spec!r}: {name} must be an integer, got {value!r}") from None
        elif name in known:
            raise ValueError(f"datapath {spec!r}: {name} does not apply to multiplier {family} "
                             f"(its parameters: {', '.join(own + ('acc_bits',))})")
        else:
            raise _unknown(spec, name, own + ("acc_bits",))
    defaults = _family_defaults(family)
    full = {**defaults, **given}
    try:
        approx.check_params(family, {"bits": 8, **full})
    except (ValueError, TypeError) as e:
        raise ValueError(f"datapath {spec!r}: {e}") from None
    params = {"family": family, **full, "acc_bits": params["acc_bits"]}
    _check_acc(spec, "approx", params, acc_given)
    t = approx.table(family, bits=8, **full).astype(np.int64)
    return Datapath(spec, "approx", params, t)


def _family_defaults(family: str) -> dict:
    """approx-mac's defaults for the family's own parameters."""
    return {k: approx_mac.PARAM_DEFAULTS[k] for k in approx_mac.FAMILY_PARAMS[family]}


def _parse_lut(spec: str, path: str, pairs, table_loader) -> Datapath:
    if not path:
        raise ValueError(f"datapath {spec!r}: needs a file after 'lut:' (a .bin/.npy table or a .v circuit)")
    params = {"file": path, "top": None, "acc_bits": DEFAULT_ACC_BITS}
    acc_given = False
    for name, value in pairs:
        if name == "acc_bits":
            params["acc_bits"] = _int(spec, name, value, 2, MAX_ACC_BITS)
            acc_given = True
        elif name == "top":
            params["top"] = value
        else:
            raise _unknown(spec, name, ("top", "acc_bits"))
    _check_acc(spec, "lut", params, acc_given)
    p = Path(path)
    try:
        if p.suffix == ".v" or p.suffix == ".sv":
            if p.is_dir():
                raise ValueError(f"{path} is a directory, not a Verilog file")
            if not p.is_file():
                raise ValueError(f"{path} does not exist")
            if table_loader is None:
                raise ValueError("a Verilog circuit needs characterization (use the network level's parse)")
            t = np.asarray(table_loader(path, params["top"]), np.int64)
            if t.size != 65536:
                side = int(round(np.sqrt(t.size)))
                raise ValueError(f"circuit {path} is a {side.bit_length() - 1}x{side.bit_length() - 1}-bit "
                                 f"multiplier; lut: takes an 8x8 one (256x256 products)")
            t = t.reshape(256, 256)
        else:
            if params["top"] is not None:
                raise ValueError("top= applies to a Verilog circuit (.v), not to a table")
            t = load_table(path)
    except ValueError as e:
        msg = str(e)
        raise ValueError(msg if msg.startswith(f"datapath {spec!r}") else f"datapath {spec!r}: {msg}") from None
    return Datapath(spec, "lut", params, t)
