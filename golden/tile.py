"""Tile-level model of the compute tiles `tile-vn`, `tile-near` and `tile-in`.

A tile holds a weight matrix W (lanes x depth) and computes y = W.x for every input
vector x (depth elements) it is streamed; y[l] wraps at acc_bits like every ecomac
accumulator. The three tiles give the same y; they differ in how the weights reach
the arithmetic, which this model counts:

  * memory writes : weight-memory word writes done by the weight-load port
  * memory reads  : weight-memory word reads done while computing
  * bus beats     : transfers over the tile-vn memory-to-PE bus (bus_bits each)
  * bank writes / bank reads (tile-in): accesses of the small bank of x multiples

The counts depend only on the number of row loads and of accepted x elements (the
tiles read a weight row only for an element that is being consumed, never ahead),
so they are exact whenever the tile is idle, whatever the valid/ready gaps were.

Per datapath, port words are:
  int   : x and w two's complement (x_bits, w_bits)
  mfmac : x and w PoT codes of exp_bits + 1 bits (golden/pot.py)
  asm   : x two's complement (x_bits); w the encoded word of golden/asm.py
          (encoded_bits(alphabet, w_bits) bits), the weight being sign-magnitude;
          with weight_storage="index" the compact word instead (golden.asm.compact_encode:
          sign + index into the representable magnitudes, compact_bits bits), decoded to
          the control word next to the lanes (rtl.asm.AsmWeightDecoder, one per lane)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import asm, pot
from .fixed import to_signed, to_unsigned, wrap

__all__ = ["KINDS", "DATAPATHS", "TileSpec", "spec", "encode_weights", "encode_inputs",
           "products", "mvm", "counts"]

KINDS = ("vn", "near", "in")
DATAPATHS = ("int", "mfmac", "asm")
WEIGHT_STORAGES = ("control", "index")
MAX_LANES = 64
MAX_DEPTH = 4096


def _int(name, value, lo, hi):
    allowed = f"{lo}..{hi}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer in {allowed}, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {allowed}, got {value}")
    return int(value)


@dataclass(frozen=True)
class TileSpec:
    """Validated tile parameters with the widths they imply."""
    kind: str
    lanes: int
    depth: int
    datapath: str
    x_bits: int               # int/asm: operand width; mfmac: code width (exp_bits + 1)
    w_bits: int               # int: two's complement; asm: sign-magnitude; mfmac: code width
    exp_bits: int
    alphabet: tuple[int, ...]
    acc_bits: int
    bus_bits: int             # tile-vn only (0 otherwise)
    weight_storage: str = "control"   # asm: "control" words or compact "index" words in memory

    @property
    def x_signed(self) -> bool:
        return self.datapath != "mfmac"

    @property
    def w_width(self) -> int:
        """Stored bits per weight (the memory cell width per lane)."""
        if self.datapath == "asm":
            if self.weight_storage == "index":
                return asm.compact_bits(self.alphabet, self.w_bits)
            return asm.encoded_bits(self.alphabet, self.w_bits)
        return self.w_bits

    @property
    def row_bits(self) -> int:
        return self.lanes * self.w_width

    @property
    def beats(self) -> int:
        """tile-vn bus beats per weight row (the last one may be partly used)."""
        return -(-self.row_bits // self.bus_bits) if self.kind == "vn" else 0

    @property
    def memory_bits(self) -> int:
        return self.depth * self.row_bits

    # the tile-in bank of x multiples: entries, bits per entry, reads per lane per element
    @property
    def bank(self) -> tuple[int, int, int]:
        if self.datapath == "int":
            # {x, 3x}; 0 and 2x are wiring; one radix-4 digit of w selects per read
            return 2, self.x_bits + 2, -(-self.w_bits // 2)
        if self.datapath == "mfmac":
            # x as sign + one-hot magnitude; the weight exponent shifts it in the periphery
            return 1, pot.max_exp(self.exp_bits) + 2, 1
        # a*x for every member a of the alphabet, one read per 4-bit quartet of w
        return len(self.alphabet), self.x_bits + 4, self.w_bits // 4


def spec(kind: str, lanes: int = 4, depth: int = 8, datapath: str = "int", x_bits: int = 0,
         w_bits: int = 0, exp_bits: int = 3, alphabet="1,3,5,7", acc_bits: int = 24,
         bus_bits: int = 64, weight_storage: str = "control") -> TileSpec:
    """Validate tile parameters (one-line errors) and resolve the automatic widths.

    x_bits / w_bits = 0 picks the datapath's natural width: 8 for int and asm,
    exp_bits + 1 (the PoT code) for mfmac, which accepts no other width.
    """
    if kind not in KINDS:
        raise ValueError(f"tile kind must be one of {', '.join(KINDS)}, got {kind!r}")
    lanes = _int("lanes", lanes, 1, MAX_LANES)
    depth = _int("depth", depth, 1, MAX_DEPTH)
    if not isinstance(datapath, str):
        raise TypeError(f"datapath must be one of {', '.join(DATAPATHS)}, not {datapath!r}")
    if datapath not in DATAPATHS:
        raise ValueError(f"datapath must be one of {', '.join(DATAPATHS)}, got {datapath!r}")
    x_bits = _int("x_bits", x_bits, 0, 24)
    w_bits = _int("w_bits", w_bits, 0, 16)
    acc_bits = _int("acc_bits", acc_bits, 2, 64)
    bus_bits = _int("bus_bits", bus_bits, 1, 4096) if kind == "vn" else 0
    alpha = ()
    if datapath == "mfmac":
        exp_bits = _int("exp_bits", exp_bits, 1, 5)
        code = exp_bits + 1
        for name, v in (("x_bits", x_bits), ("w_bits", w_bits)):
            if v not in (0, code):
                raise ValueError(f"datapath mfmac streams PoT codes of exp_bits+1 = {code} bits: "
                                 f"{name} must be 0 (auto) or {code}, got {v}")
        x_bits = w_bits = code
        need = pot.product_bits(exp_bits)
        if acc_bits < need:
            raise ValueError(f"acc_bits must be >= {need} for datapath mfmac with exp_bits={exp_bits}, "
                             f"got {acc_bits}")
    elif datapath == "int":
        x_bits = x_bits or 8
        w_bits = w_bits or 8
        for name, v in (("x_bits", x_bits), ("w_bits", w_bits)):
            if not 2 <= v <= 16:
                raise ValueError(f"{name} must be in 2..16 for datapath int, got {v}")
        need = 2 * max(x_bits, w_bits)
        if acc_bits < need:
            raise ValueError(f"acc_bits must be >= {need} (2 * max(x_bits, w_bits)) for datapath int, "
                             f"got {acc_bits}")
    else:
        alpha = asm.parse_alphabet(alphabet)
        x_bits = asm.check_x_bits(x_bits or 8)
        w_bits = asm.check_w_bits(w_bits or 8)
        need = asm.product_bits(x_bits, w_bits)
        if acc_bits < need:
            raise ValueError(f"acc_bits must be >= {need} (x_bits + w_bits) for datapath asm, got {acc_bits}")
    if datapath != "mfmac":
        exp_bits = 0
    if weight_storage not in WEIGHT_STORAGES:
        raise ValueError(f"weight_storage must be one of {', '.join(WEIGHT_STORAGES)}, got {weight_storage!r}")
    if weight_storage == "index" and datapath != "asm":
        raise ValueError(f"weight_storage=index applies to datapath asm only, got datapath {datapath}")
    return TileSpec(kind, lanes, depth, datapath, x_bits, w_bits, exp_bits, alpha, acc_bits, bus_bits,
                    weight_storage)


def _as_int_array(a, what):
    a = np.asarray(a)
    if a.dtype.kind not in "iub":
        raise TypeError(f"{what} must be integers, not {a.dtype}")
    return a.astype(np.int64)


def _check_signed(v, bits, what):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    bad = (v < lo) | (v > hi)
    if np.any(bad):
        raise ValueError(f"{what} {int(v.ravel()[np.argmax(bad.ravel())])} is outside the signed "
                         f"{bits}-bit range {lo}..{hi}")


def _pot_codes(v, exp_bits, what):
    """Integer values that are 0 or +-2^n (n <= max_exp) -> PoT codes."""
    mag = np.abs(v)
    top = pot.max_exp(exp_bits)
    n = np.where(mag > 0, np.floor(np.log2(np.maximum(mag, 1))).astype(np.int64), 0)
    ok = (mag == 0) | ((mag == (np.int64(1) << np.clip(n, 0, 62))) & (n <= top))
    if not np.all(ok):
        bad = int(v.ravel()[np.argmax(~ok.ravel())])
        raise ValueError(f"{what} {bad} is not representable as a PoT code with exp_bits={exp_bits} "
                         f"(0 or +-2^n, n in 0..{top})")
    e = np.where(mag == 0, 0, n + 1)
    return pot.encode((v < 0) & (mag != 0), e, exp_bits)


def encode_weights(s: TileSpec, W) -> np.ndarray:
    """Integer weights (lanes x depth) -> the words the weight-load port takes.

    int: two's complement; mfmac: 0 or +-2^n; asm: representable for the alphabet
    (sign-magnitude). Anything else is a one-line ValueError.
    """
    W = _as_int_array(W, "weights")
    if W.shape != (s.lanes, s.depth):
        raise ValueError(f"weights must have shape (lanes, depth) = ({s.lanes}, {s.depth}), got {W.shape}")
    if s.datapath == "int":
        _check_signed(W, s.w_bits, "weight")
        return to_unsigned(W, s.w_bits)
    if s.datapath == "mfmac":
        return _pot_codes(W, s.exp_bits, "weight")
    if s.weight_storage == "index":
        return asm.compact_encode(W, s.alphabet, s.w_bits)
    return asm.encode(W, s.alphabet, s.w_bits)


def encode_inputs(s: TileSpec, X) -> np.ndarray:
    """Integer activations (vectors x depth) -> x_data words (mfmac: PoT codes)."""
    X = _as_int_array(X, "inputs")
    if X.ndim != 2 or X.shape[1] != s.depth:
        raise ValueError(f"inputs must have shape (vectors, depth={s.depth}), got {X.shape}")
    if s.datapath == "mfmac":
        return _pot_codes(X, s.exp_bits, "input")
    _check_signed(X, s.x_bits, "input")
    return to_unsigned(X, s.x_bits)


def products(s: TileSpec, wcodes, xcodes) -> np.ndarray:
    """Signed products of port words (broadcasting), as the datapath computes them."""
    w = np.asarray(wcodes, np.int64)
    x = np.asarray(xcodes, np.int64)
    if s.datapath == "int":
        return to_signed(x, s.x_bits) * to_signed(w, s.w_bits)
    if s.datapath == "mfmac":
        return pot.product(x, w, s.exp_bits)
    if s.weight_storage == "index":
        return to_signed(x, s.x_bits) * asm.compact_decode(w, s.alphabet, s.w_bits)
    return to_signed(x, s.x_bits) * asm.decode(w, s.alphabet, s.w_bits)


def mvm(s: TileSpec, wcodes, xcodes) -> np.ndarray:
    """y for every streamed vector: (vectors, lanes), wrapped at acc_bits.

    wcodes: (lanes, depth) port words of W; xcodes: (vectors, depth) port words.
    A wrapping accumulator gives the wrapped exact sum, so one sum per output.
    """
    w = np.asarray(wcodes, np.int64)
    x = np.asarray(xcodes, np.int64)
    p = products(s, w[None, :, :], x[:, None, :])          # vectors x lanes x depth
    with np.errstate(over="ignore"):
        return wrap(p.sum(axis=2), s.acc_bits)


def counts(s: TileSpec, row_loads: int, elements: int) -> dict:
    """Memory/bus/bank access counts after `row_loads` weight-row writes and
    `elements` accepted x elements.

    tile-vn: a row write fills the `beats` bus-word slices of the row; each element
    fetches its row over the bus, one slice per beat (one memory read each).
    tile-near: one row-wide read per element. tile-in: each lane's weights are a
    column sub-array beside its selector, so a row write or read is `lanes`
    sub-array accesses; each element writes the bank once and every lane reads one
    bank entry per weight digit (int), quartet (asm) or code (mfmac).
    """
    if s.kind == "vn":
        out = {"mem_writes": row_loads * s.beats, "mem_reads": elements * s.beats,
               "bus_beats": elements * s.beats}
    elif s.kind == "near":
        out = {"mem_writes": row_loads, "mem_reads": elements, "bus_beats": 0}
    else:
        _, _, reads_per_lane = s.bank
        out = {"mem_writes": row_loads * s.lanes, "mem_reads": elements * s.lanes, "bus_beats": 0,
               "bank_writes": elements, "bank_reads": elements * s.lanes * reads_per_lane}
    out.setdefault("bank_writes", 0)
    out.setdefault("bank_reads", 0)
    return out
