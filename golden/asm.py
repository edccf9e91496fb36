"""Alphabet Set Multipliers (ASM): shift-add products over a shared pre-computer bank.

Arithmetic
----------
An alphabet set A is a set of odd integers in 1..15 that contains 1 (kept
sorted; member i of the sorted tuple has alphabet index i).  Weights are
sign + magnitude of `w_bits` bits (4, 8 or 12); the magnitude is split into
Q = w_bits / 4 quartets (quartet 0 = the 4 least significant bits).  A quartet
value q (0..15) is representable when q == 0 or q == a * 2^s with a in A and
s in 0..3; a weight is representable when every quartet of its magnitude is.
Activations x are signed two's complement of `x_bits` bits.

The hardware multiplies x once by every member of A in a pre-computer bank
(shifts and adds/subtracts only, see `bank_plan`), and each lane forms

    w * x = (-1)^sign * sum_j  [nz_j] * ((a[idx_j] * x) << s_j) << 4j

so it only selects, shifts and adds.  The product is exact: |x*w| < 2^(x_bits +
w_bits - 1), so it is the signed (x_bits + w_bits)-bit output `p` of `asm-mul`.

Encoded weight (the `w` port), n = |A|, I = ceil(log2 n) index bits (0 when
n == 1), F = I + 3 bits per quartet, encoded_bits = Q * F + 1::

    quartet j occupies bits [j*F, (j+1)*F), LSB quartet first:
        bits 1..0      s    shift amount (q = a * 2^s)
        bits I+1..2    idx  alphabet index of a (absent when n == 1)
        bit  I+2       nz   1 when the quartet is non-zero
    bit Q*F            sign (1 = negative)

The encoder emits the canonical word: a zero quartet is all-zero bits, a
non-zero quartet q has a = the odd part of q and s = its trailing zeros, and
weight 0 has sign 0, so encode(0) == 0.  `decode` accepts any word whose
non-zero quartets name an alphabet member with a * 2^s <= 15 (the bits of a
quartet with nz == 0, and the sign of a zero magnitude, are don't-cares); the
hardware output for any other word is undefined, and decode/product reject it.

Projection and quantization
---------------------------
`project` maps each integer weight to the nearest representable signed value
(the sign is kept; the set is symmetric and contains 0); a tie between two
representable magnitudes goes to the SMALLER magnitude (towards zero).
`quantize` picks one power-of-two scale 2^k per tensor, the smallest with
max|w| / 2^k <= the largest representable magnitude (no clipping; k = 0 for an
all-zero tensor), then projects each w / 2^k (a real number, not a pre-rounded
integer) onto the representable magnitudes with the same tie rule.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .fixed import accumulate

__all__ = ["parse_alphabet", "check_w_bits", "check_x_bits", "quartet_values", "representable",
           "is_representable", "project", "quantize", "dequantize", "index_bits", "quartet_field_bits",
           "encoded_bits", "product_bits", "encode", "decode", "product", "mac", "bank_plan",
           "compact_index_bits", "compact_bits", "compact_encode", "compact_decode", "compact_to_control",
           "BankStep", "ALPHABETS"]

# The four alphabet sets of the measurements.
ALPHABETS = ((1,), (1, 3), (1, 3, 5, 7), (1, 3, 5, 7, 9, 11, 13, 15))


def _fmt(alphabet) -> str:
    return "{" + ",".join(map(str, alphabet)) + "}"


def parse_alphabet(spec) -> tuple[int, ...]:
    """'1,3' / '{1,3}' / (1, 3) -> the validated, sorted tuple (1, 3).

    Members must be odd integers in 1..15, without duplicates, and 1 must be one
    of them (every quartet 2^s needs it).  Unsorted input is sorted.
    """
    if isinstance(spec, str):
        text = spec.strip().strip("{}()[]")
        items = text.split(",") if text.strip() else []
        if any(not t.strip() for t in items):     # '1,,3' or '1,3,': a member left out
            raise ValueError(f"alphabet {spec!r} has an empty member; give odd integers in 1..15 "
                             f"separated by single commas")
        try:
            members = [int(t, 0) for t in items]
        except ValueError:
            raise ValueError(f"alphabet must be a comma-separated list of odd integers in 1..15, "
                             f"got {spec!r}") from None
    else:
        try:
            members = list(spec)
        except TypeError:
            raise TypeError(f"alphabet must be a sequence of odd integers in 1..15, not {spec!r}") from None
        for m in members:
            if isinstance(m, (bool, np.bool_)) or not isinstance(m, (int, np.integer)):
                raise TypeError(f"alphabet members must be odd integers in 1..15, not {m!r}")
        members = [int(m) for m in members]
    if not members:
        raise ValueError("alphabet must not be empty (it must contain 1)")
    for m in members:
        if not 1 <= m <= 15 or m % 2 == 0:
            raise ValueError(f"alphabet members must be odd integers in 1..15, got {m}")
    dup = sorted({m for m in members if members.count(m) > 1})
    if dup:
        raise ValueError(f"alphabet has duplicate member {dup[0]}")
    if 1 not in members:
        raise ValueError(f"alphabet must contain 1, got {_fmt(sorted(members))}")
    return tuple(sorted(members))


def check_w_bits(w_bits) -> int:
    if isinstance(w_bits, (bool, np.bool_)) or not isinstance(w_bits, (int, np.integer)):
        raise TypeError(f"w_bits must be an integer in 4, 8, 12, not {w_bits!r}")
    if w_bits not in (4, 8, 12):
        raise ValueError(f"w_bits must be a multiple of 4 in 4..12 (4, 8 or 12), got {w_bits}")
    return int(w_bits)


def check_x_bits(x_bits) -> int:
    if isinstance(x_bits, (bool, np.bool_)) or not isinstance(x_bits, (int, np.integer)):
        raise TypeError(f"x_bits must be an integer in 2..24, not {x_bits!r}")
    if not 2 <= x_bits <= 24:
        raise ValueError(f"x_bits must be in 2..24, got {x_bits}")
    return int(x_bits)


def _setup(alphabet, w_bits) -> tuple[tuple[int, ...], int]:
    return parse_alphabet(alphabet), check_w_bits(w_bits)


def quartet_values(alphabet) -> np.ndarray:
    """Sorted representable quartet values (0..15)."""
    a = parse_alphabet(alphabet)
    return np.array(sorted({0} | {m << s for m in a for s in range(4) if m << s <= 15}), np.int64)


@lru_cache(maxsize=None)
def _representable(alphabet: tuple[int, ...], w_bits: int) -> np.ndarray:
    q = quartet_values(alphabet)
    mags = np.zeros(1, np.int64)
    for j in range(w_bits // 4):
        mags = np.add.outer(q << (4 * j), mags).ravel()
    out = np.unique(mags)
    out.flags.writeable = False
    return out


def representable(alphabet, w_bits: int) -> np.ndarray:
    """Sorted array of every representable weight magnitude (0 .. 2^w_bits - 1)."""
    return _representable(*_setup(alphabet, w_bits))


def _check_range(w, w_bits: int, what: str = "weight") -> np.ndarray:
    w = np.asarray(w)
    if w.dtype.kind == "f":
        if not np.all(np.isfinite(w)) or np.any(w != np.round(w)):
            bad = w.ravel()[~(np.isfinite(w.ravel()) & (w.ravel() == np.round(w.ravel())))][0]
            raise ValueError(f"{what} {bad} is not an integer")
    elif w.dtype.kind not in "iub":
        raise TypeError(f"{what}s must be integers, not {w.dtype}")
    w = w.astype(np.int64)
    top = (1 << w_bits) - 1
    out = np.abs(w) > top
    if np.any(out):
        raise ValueError(f"{what} {int(w.ravel()[np.argmax(out.ravel())])} is outside the {w_bits}-bit "
                         f"sign-magnitude range -{top}..{top}")
    return w


def is_representable(w_int, alphabet, w_bits: int) -> np.ndarray:
    """Boolean array: is each signed integer weight representable (range-checked)."""
    a, wb = _setup(alphabet, w_bits)
    w = _check_range(w_int, wb)
    reps = _representable(a, wb)
    m = np.abs(w)
    i = np.minimum(np.searchsorted(reps, m), reps.size - 1)
    return reps[i] == m


def _nearest(t, reps: np.ndarray) -> np.ndarray:
    """Nearest element of sorted `reps` to each t >= 0; ties to the smaller one."""
    hi = np.clip(np.searchsorted(reps, t, side="left"), 0, reps.size - 1)
    lo = np.maximum(hi - 1, 0)
    up, down = reps[hi], reps[lo]
    return np.where(np.abs(up - t) < np.abs(t - down), up, down)


def project(w_int, alphabet, w_bits: int) -> np.ndarray:
    """Nearest representable signed integer to each weight (ties towards zero)."""
    a, wb = _setup(alphabet, w_bits)
    w = _check_range(w_int, wb)
    mag = _nearest(np.abs(w), _representable(a, wb))
    return np.where(w < 0, -mag, mag).astype(np.int64)


def quantize(w_float, alphabet, w_bits: int) -> tuple[np.ndarray, int]:
    """Float weights -> (representable ints, k) with w ~= ints * 2^k (one k per tensor)."""
    a, wb = _setup(alphabet, w_bits)
    w = np.asarray(w_float, np.float64)
    amax = float(np.max(np.abs(w))) if w.size else 0.0
    if not np.isfinite(amax):
        raise ValueError("quantize: weights contain NaN or Inf")
    reps = _representable(a, wb)
    top = int(reps[-1])
    if amax == 0.0:
        return np.zeros(w.shape, np.int64), 0
    k = int(np.ceil(np.log2(amax) - np.log2(top)))
    # correct the floating-point log2 by a step either way (exact comparisons by ldexp)
    while np.ldexp(amax, -k) > top:
        k += 1
    while np.ldexp(amax, -(k - 1)) <= top:
        k -= 1
    mag = _nearest(np.ldexp(np.abs(w), -k), reps.astype(np.float64)).astype(np.int64)
    return np.where(w < 0, -mag, mag), k


def dequantize(ints, k: int) -> np.ndarray:
    return np.ldexp(np.asarray(ints, np.float64), k)


# ---------------------------------------------------------------- encoding

def index_bits(alphabet) -> int:
    """Width of the alphabet index field: ceil(log2 |A|), 0 for A = {1}."""
    return (len(parse_alphabet(alphabet)) - 1).bit_length()


def quartet_field_bits(alphabet) -> int:
    """Bits per encoded quartet: shift (2) + index + nonzero flag (1)."""
    return index_bits(alphabet) + 3


def encoded_bits(alphabet, w_bits: int) -> int:
    """Width of an encoded weight (the `w` port of `asm-mul`)."""
    a, wb = _setup(alphabet, w_bits)
    return (wb // 4) * quartet_field_bits(a) + 1


def product_bits(x_bits: int, w_bits: int) -> int:
    """Width of the signed product (the `p` port; the smallest legal accumulator)."""
    return check_x_bits(x_bits) + check_w_bits(w_bits)


@lru_cache(maxsize=None)
def _tables(alphabet: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(field of each quartet value 0..15 or -1, value of each field or -1 if invalid)."""
    ib = (len(alphabet) - 1).bit_length()
    enc = np.full(16, -1, np.int64)
    enc[0] = 0
    for i, a in enumerate(alphabet):
        for s in range(4):
            if a << s <= 15:
                enc[a << s] = s | (i << 2) | (1 << (ib + 2))
    dec = np.zeros(1 << (ib + 3), np.int64)
    for f in range(dec.size):
        s, i, nz = f & 3, (f >> 2) & ((1 << ib) - 1), f >> (ib + 2)
        if nz:
            dec[f] = alphabet[i] << s if i < len(alphabet) and alphabet[i] << s <= 15 else -1
    enc.flags.writeable = dec.flags.writeable = False
    return enc, dec


def encode(w_int, alphabet, w_bits: int) -> np.ndarray:
    """Signed representable weights -> encoded words (see the module docstring)."""
    a, wb = _setup(alphabet, w_bits)
    w = _check_range(w_int, wb)
    enc_q, _ = _tables(a)
    F = quartet_field_bits(a)
    mag = np.abs(w)
    out = np.zeros(w.shape, np.int64)
    bad = np.zeros(w.shape, bool)
    for j in range(wb // 4):
        f = enc_q[(mag >> (4 * j)) & 15]
        bad |= f < 0
        out |= np.maximum(f, 0) << (j * F)
    if np.any(bad):
        flat = np.argmax(bad.ravel())
        v = int(w.ravel()[flat])
        near = int(project(v, a, wb))
        raise ValueError(f"weight {v} is not representable with alphabet {_fmt(a)} (w_bits={wb}); "
                         f"nearest representable: {near}")
    out |= (w < 0).astype(np.int64) << ((wb // 4) * F)
    return out


def decode(enc, alphabet, w_bits: int) -> np.ndarray:
    """Encoded words -> signed integer weights (ValueError on a word the hardware does not define)."""
    a, wb = _setup(alphabet, w_bits)
    e = np.asarray(enc)
    if e.dtype.kind not in "iub":
        raise TypeError(f"encoded weights must be integers, not {e.dtype}")
    e = e.astype(np.int64)
    nbits = encoded_bits(a, wb)
    out_of_range = (e < 0) | (e >> nbits != 0)
    if np.any(out_of_range):
        raise ValueError(f"encoded weight {int(e.ravel()[np.argmax(out_of_range.ravel())])} is outside "
                         f"0..{(1 << nbits) - 1} ({nbits} bits for alphabet {_fmt(a)}, w_bits={wb})")
    _, dec_f = _tables(a)
    F = quartet_field_bits(a)
    mag = np.zeros(e.shape, np.int64)
    bad = np.zeros(e.shape, bool)
    for j in range(wb // 4):
        q = dec_f[(e >> (j * F)) & ((1 << F) - 1)]
        bad |= q < 0
        mag += np.maximum(q, 0) << (4 * j)
    if np.any(bad):
        raise ValueError(f"encoded weight {int(e.ravel()[np.argmax(bad.ravel())])} names a quartet "
                         f"a*2^s that is not in alphabet {_fmt(a)} or exceeds 15")
    sign = (e >> ((wb // 4) * F)) & 1
    return np.where(sign == 1, -mag, mag)


# ---- compact weight storage (HADES: alphabet sets encode weights in fewer bits) --------------
# A stored weight can be its index into the representable set instead of the lanes' control
# word: sign + ceil(log2 #magnitudes) bits (8-bit weights: {1} 25 magnitudes -> 6 bits,
# {1,3} 64 -> 7, {1,3,5,7} 144 -> 9, against 11 control bits for {1,3,5,7}). A small decoder
# next to the lanes turns it back into the control word.
#
#   compact word = sign << I | idx,  I = compact_index_bits, idx = rank of |w| among the
#   representable magnitudes (sorted, 0 first), sign = 1 for a negative weight.
# compact_to_control defines the decoder on EVERY word: idx >= #magnitudes decodes as
# magnitude 0, and a zero magnitude gives the canonical word of weight 0 (sign 0).

def compact_index_bits(alphabet, w_bits: int) -> int:
    """ceil(log2 #representable magnitudes) (0 included)."""
    return (representable(alphabet, w_bits).size - 1).bit_length()


def compact_bits(alphabet, w_bits: int) -> int:
    """Stored bits per weight in the compact (index) format: sign + index."""
    return compact_index_bits(alphabet, w_bits) + 1


def compact_encode(w_int, alphabet, w_bits: int) -> np.ndarray:
    """Signed representable weights -> compact words (ValueError naming an unrepresentable one)."""
    a, wb = _setup(alphabet, w_bits)
    encode(w_int, a, wb)                                  # the same range/representability errors
    w = np.asarray(w_int, np.int64)
    reps = representable(a, wb)
    idx = np.searchsorted(reps, np.abs(w))
    return ((w < 0).astype(np.int64) << compact_index_bits(a, wb)) | idx


def compact_decode(words, alphabet, w_bits: int) -> np.ndarray:
    """Compact words -> signed weights (every word in range is defined, see compact_to_control)."""
    a, wb = _setup(alphabet, w_bits)
    c = np.asarray(words)
    if c.dtype.kind not in "iub":
        raise TypeError(f"compact weights must be integers, not {c.dtype}")
    c = c.astype(np.int64)
    nb, ib = compact_bits(a, wb), compact_index_bits(a, wb)
    bad = (c < 0) | (c >> nb != 0)
    if np.any(bad):
        raise ValueError(f"compact weight {int(c.ravel()[np.argmax(bad.ravel())])} is outside 0..{(1 << nb) - 1} "
                         f"({nb} bits for alphabet {_fmt(a)}, w_bits={wb})")
    reps = representable(a, wb)
    idx = c & ((1 << ib) - 1)
    mag = np.where(idx < reps.size, reps[np.minimum(idx, reps.size - 1)], 0)
    return np.where((c >> ib) & 1 == 1, -mag, mag)


def compact_to_control(words, alphabet, w_bits: int) -> np.ndarray:
    """The decoder's definition: compact words -> the lanes' control words (canonical encode)."""
    return encode(compact_decode(words, alphabet, w_bits), alphabet, w_bits)


def _check_x(x, x_bits: int) -> np.ndarray:
    xb = check_x_bits(x_bits)
    x = np.asarray(x)
    if x.dtype.kind not in "iub":
        raise TypeError(f"activations must be integers, not {x.dtype}")
    x = x.astype(np.int64)
    lo, hi = -(1 << (xb - 1)), (1 << (xb - 1)) - 1
    bad = (x < lo) | (x > hi)
    if np.any(bad):
        raise ValueError(f"activation {int(x.ravel()[np.argmax(bad.ravel())])} is outside the signed "
                         f"{xb}-bit range {lo}..{hi}")
    return x


def product(x, enc, alphabet, x_bits: int, w_bits: int) -> np.ndarray:
    """Signed product of `asm-mul` (port p): exact x * decode(enc), x_bits + w_bits bits."""
    x = _check_x(x, x_bits)
    return x * decode(enc, alphabet, w_bits)


def mac(x, enc, valid=None, clear=None, alphabet=(1, 3, 5, 7), x_bits: int = 8, w_bits: int = 8,
        acc_bits: int = 24, acc0=0) -> np.ndarray:
    """Cycle model of `asm-pe-row`: acc of every lane after each clock edge.

    x: (n,) activations broadcast to every lane; enc: (n,) for one lane or
    (n, lanes); valid/clear: (n,). Same contract as fixed.accumulate per lane.
    """
    x = np.asarray(x)
    enc = np.asarray(enc)
    p = product(x[:, None] if enc.ndim == 2 else x, enc, alphabet, x_bits, w_bits)
    if p.ndim == 1:
        return accumulate(p, valid, clear, acc_bits, acc0)
    acc0 = np.broadcast_to(np.asarray(acc0, np.int64), (p.shape[1],))
    return np.stack([accumulate(p[:, i], valid, clear, acc_bits, int(acc0[i]))
                     for i in range(p.shape[1])], axis=1)


# ---------------------------------------------------------------- the pre-computer bank

class BankStep(tuple):
    """dst*x = ((lhs*x) << lshift) + sign * ((rhs*x) << rshift); sign is +1 or -1."""
    __slots__ = ()

    def __new__(cls, dst, lhs, lshift, sign, rhs, rshift):
        return super().__new__(cls, (dst, lhs, lshift, sign, rhs, rshift))

    dst = property(lambda s: s[0])
    lhs = property(lambda s: s[1])
    lshift = property(lambda s: s[2])
    sign = property(lambda s: s[3])
    rhs = property(lambda s: s[4])
    rshift = property(lambda s: s[5])

    def __str__(self):
        def term(m, k):
            t = "x" if m == 1 else f"{m}x"
            return f"({t}<<{k})" if k else t
        return f"{self.dst}x = {term(self.lhs, self.lshift)} {'+' if self.sign > 0 else '-'} " \
               f"{term(self.rhs, self.rshift)}"


def _one_adder(a: int, depth: dict[int, int]):
    """One adder making a*x from available multiples: (b*x << k) +- c*x, k >= 1.

    a is odd and b << k even, so the unshifted term c is odd; every odd a has
    this form.  `depth` maps each available multiple to its adder depth (x: 0).
    Preference: the shallowest result, then fewest operands other than x, then
    add over subtract, then the smallest b and shift.
    """
    best = None
    for b in depth:
        for c in depth:
            for k in range(1, 5):
                for sign in (1, -1):
                    if (b << k) + sign * c == a:
                        key = (max(depth[b], depth[c]), (b != 1) + (c != 1), sign == -1, b, k)
                        if best is None or key < best[0]:
                            best = (key, BankStep(a, b, k, sign, c, 0))
    return None if best is None else best[1]


@lru_cache(maxsize=None)
def _bank_plan(alphabet: tuple[int, ...]) -> tuple[BankStep, ...]:
    depth = {1: 0}
    steps = []

    def add(step):
        steps.append(step)
        depth[step.dst] = max(depth[step.lhs], depth[step.rhs]) + 1

    for a in alphabet[1:]:
        step = _one_adder(a, depth)
        if step is None:                       # e.g. 11 or 13 without 3 or 5: via a helper
            for h in (3, 5, 7, 9, 15):
                if h not in depth and _one_adder(a, {**depth, h: 1}) is not None:
                    add(_one_adder(h, {1: 0}))
                    step = _one_adder(a, depth)
                    break
        add(step)
    return tuple(steps)


def bank_plan(alphabet) -> tuple[BankStep, ...]:
    """The shift-and-add steps of the pre-computer bank, one adder/subtractor each.

    Alphabet members are computed in ascending order from x and the multiples
    already built (3x = (x<<1) + x, 7x = (x<<3) - x, 11x = (x<<3) + 3x, 13x =
    (x<<4) - 3x, ...); a helper multiple not in A is added only when a member
    needs it.  Every step is a single adder, so len(bank_plan(A)) is the bank's
    adder count.
    """
    return _bank_plan(parse_alphabet(alphabet))
