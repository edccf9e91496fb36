"""Properties of the ASM golden model (golden/asm.py): alphabets, projection, quantizer,
encoder/decoder, products, the PE-row cycle model and the pre-computer bank plan."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from golden import asm
from golden.fixed import accumulate

ALL_ODD = (1, 3, 5, 7, 9, 11, 13, 15)
# every alphabet set: 1 plus any subset of the other seven odd members
EVERY_ALPHABET = [(1,) + c for r in range(8) for c in itertools.combinations(ALL_ODD[1:], r)]
alphabets = st.sampled_from(EVERY_ALPHABET)
w_bits_st = st.sampled_from([4, 8, 12])


def brute_representable(alphabet, w_bits):
    """Independent definition: every quartet is 0 or a*2^s with a in A."""
    ok_q = {0} | {a * 2 ** s for a in alphabet for s in range(4) if a * 2 ** s <= 15}
    return [m for m in range(2 ** w_bits)
            if all((m >> (4 * j)) & 15 in ok_q for j in range(w_bits // 4))]


# ---------------------------------------------------------------- alphabets

@pytest.mark.parametrize("alphabet,quartets", [
    ((1,), [0, 1, 2, 4, 8]),
    ((1, 3), [0, 1, 2, 3, 4, 6, 8, 12]),
    ((1, 3, 5, 7), [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14]),
    (ALL_ODD, list(range(16))),
])
def test_quartet_values_match_the_issue(alphabet, quartets):
    assert asm.quartet_values(alphabet).tolist() == quartets


@pytest.mark.parametrize("spec,want", [("1,3", (1, 3)), ("{7, 1,5}", (1, 5, 7)), ([3, 1], (1, 3)),
                                       ((1,), (1,)), (np.array([1, 15]), (1, 15))])
def test_parse_alphabet_accepts_text_and_sequences(spec, want):
    assert asm.parse_alphabet(spec) == want


@pytest.mark.parametrize("spec,exc,msg", [
    ("3,5", ValueError, r"alphabet must contain 1, got \{3,5\}"),
    ("1,4", ValueError, "alphabet members must be odd integers in 1..15, got 4"),
    ("1,17", ValueError, "alphabet members must be odd integers in 1..15, got 17"),
    ((1, -1), ValueError, "alphabet members must be odd integers in 1..15, got -1"),
    ("1,3,3", ValueError, "alphabet has duplicate member 3"),
    ("", ValueError, "alphabet must not be empty"),
    ("1,x", ValueError, "comma-separated list of odd integers"),
    ((1, 2.5), TypeError, "alphabet members must be odd integers in 1..15, not 2.5"),
    ((1, True), TypeError, "not True"),
    (5, TypeError, "alphabet must be a sequence"),
])
def test_parse_alphabet_errors_are_one_line(spec, exc, msg):
    with pytest.raises(exc, match=msg) as e:
        asm.parse_alphabet(spec)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("w_bits,exc", [(6, ValueError), (16, ValueError), (0, ValueError),
                                        (2, ValueError), ("8", TypeError), (8.0, TypeError)])
def test_w_bits_must_be_4_8_or_12(w_bits, exc):
    with pytest.raises(exc, match="w_bits must be"):
        asm.representable((1,), w_bits)


@settings(max_examples=60, deadline=None)
@given(alphabets, w_bits_st)
def test_representable_matches_brute_force(alphabet, w_bits):
    if w_bits == 12 and len(alphabet) > 3:
        w_bits = 8     # brute force over 4096 magnitudes is fine, keep the run short anyway
    assert asm.representable(alphabet, w_bits).tolist() == brute_representable(alphabet, w_bits)


def test_representable_counts_for_the_four_sets():
    # a product of per-quartet counts: |quartets|^(w_bits/4)
    for alphabet in asm.ALPHABETS:
        nq = asm.quartet_values(alphabet).size
        assert asm.representable(alphabet, 8).size == nq ** 2
        assert asm.representable(alphabet, 12).size == nq ** 3
    assert asm.representable(ALL_ODD, 8).tolist() == list(range(256))


# ---------------------------------------------------------------- projection / quantization

@settings(max_examples=200, deadline=None)
@given(alphabets, w_bits_st, st.data())
def test_projection_is_a_nearest_representable_value_ties_towards_zero(alphabet, w_bits, data):
    top = 2 ** w_bits - 1
    w = np.array(data.draw(st.lists(st.integers(-top, top), min_size=1, max_size=40)))
    p = asm.project(w, alphabet, w_bits)
    reps = np.array(brute_representable(alphabet, w_bits))
    signed = np.concatenate([-reps, reps])
    assert np.all(asm.is_representable(p, alphabet, w_bits))
    dist = np.abs(w[:, None] - signed[None, :]).min(axis=1)
    assert np.array_equal(np.abs(w - p), dist)
    # ties: the smaller magnitude wins; the sign is never flipped
    assert np.all(np.abs(p) <= np.abs(w) + dist)
    tie = np.array([np.isin(abs(v) + d, reps) and np.isin(abs(v) - d, reps) and d > 0
                    for v, d in zip(w, dist)], bool)
    assert np.all(np.abs(p[tie]) < np.abs(w[tie]))
    assert np.all((p == 0) | (np.sign(p) == np.sign(w)))


@settings(max_examples=50, deadline=None)
@given(alphabets, w_bits_st)
def test_projection_is_identity_on_representable_weights(alphabet, w_bits):
    reps = asm.representable(alphabet, w_bits)
    assert np.array_equal(asm.project(reps, alphabet, w_bits), reps)
    assert np.array_equal(asm.project(-reps, alphabet, w_bits), -reps)


def test_projection_tie_example():
    # 5 lies halfway between 4 and 6 with {1,3}: towards zero
    assert asm.project([5, -5, 10, 11], (1, 3), 8).tolist() == [4, -4, 8, 12]


floats = hnp.arrays(np.float64, st.integers(1, 64),
                    elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))


@settings(max_examples=100, deadline=None)
@given(floats, alphabets, w_bits_st)
def test_quantize_uses_the_smallest_unclipped_power_of_two_scale(w, alphabet, w_bits):
    q, k = asm.quantize(w, alphabet, w_bits)
    reps = asm.representable(alphabet, w_bits)
    assert np.all(asm.is_representable(q, alphabet, w_bits))
    amax = np.abs(w).max()
    if amax == 0:
        assert k == 0 and not q.any()
        return
    top = reps[-1]
    assert np.ldexp(amax, -k) <= top < np.ldexp(amax, 1 - k)
    # each element is at a minimal distance from w / 2^k among the representable values
    t = np.ldexp(w, -k)
    signed = np.concatenate([-reps, reps]).astype(np.float64)
    best = np.abs(t[:, None] - signed[None, :]).min(axis=1)
    assert np.allclose(np.abs(t - q), best, rtol=0, atol=1e-9 * max(1.0, top))


@settings(max_examples=50, deadline=None)
@given(floats, alphabets, st.integers(-20, 20))
def test_quantize_is_scale_equivariant_by_powers_of_two(w, alphabet, e):
    q, k = asm.quantize(w, alphabet, 8)
    q2, k2 = asm.quantize(w * 2.0 ** e, alphabet, 8)
    assert np.array_equal(q, q2)
    if np.any(w):
        assert k2 == k + e


def test_quantize_full_alphabet_is_uniform_rounding():
    w = np.array([0.0, 0.26, -1.0, 0.74, 0.5])
    q, k = asm.quantize(w, ALL_ODD, 8)
    assert k == -7               # 1.0 / 2^-7 = 128 <= 255 < 256
    assert q.tolist() == [0, 33, -128, 95, 64]


def test_quantize_rejects_nan():
    with pytest.raises(ValueError, match="NaN or Inf"):
        asm.quantize([1.0, np.inf], (1,), 8)


# ---------------------------------------------------------------- encoding

def decode_by_layout(enc, alphabet, w_bits):
    """Independent reading of the documented bit layout, one word at a time."""
    ib = (len(alphabet) - 1).bit_length()
    F = ib + 3
    Q = w_bits // 4
    out = []
    for e in np.asarray(enc).ravel().tolist():
        mag = 0
        for j in range(Q):
            f = (e >> (j * F)) & ((1 << F) - 1)
            s, idx, nz = f & 3, (f >> 2) & ((1 << ib) - 1), (f >> (ib + 2)) & 1
            if nz:
                mag += (alphabet[idx] << s) << (4 * j)
        out.append(-mag if (e >> (Q * F)) & 1 else mag)
    return np.array(out)


@pytest.mark.parametrize("alphabet", asm.ALPHABETS)
def test_encode_roundtrip_every_8bit_representable_weight(alphabet):
    reps = asm.representable(alphabet, 8)
    w = np.concatenate([-reps, reps])
    enc = asm.encode(w, alphabet, 8)
    assert np.array_equal(asm.decode(enc, alphabet, 8), w)
    assert np.array_equal(decode_by_layout(enc, alphabet, 8), w)
    assert np.all((enc >= 0) & (enc < 2 ** asm.encoded_bits(alphabet, 8)))
    # canonical: distinct weights get distinct words, except -0 which is 0
    assert np.unique(enc).size == 2 * reps.size - 1
    assert asm.encode(0, alphabet, 8) == 0


@settings(max_examples=80, deadline=None)
@given(alphabets, w_bits_st, st.data())
def test_encode_decode_roundtrip_any_alphabet(alphabet, w_bits, data):
    reps = asm.representable(alphabet, w_bits)
    idx = data.draw(st.lists(st.integers(0, reps.size - 1), min_size=1, max_size=30))
    signs = data.draw(st.lists(st.booleans(), min_size=len(idx), max_size=len(idx)))
    w = np.where(signs, -reps[idx], reps[idx])
    enc = asm.encode(w, alphabet, w_bits)
    assert np.array_equal(asm.decode(enc, alphabet, w_bits), w)
    assert np.array_equal(decode_by_layout(enc, alphabet, w_bits), w)


@pytest.mark.parametrize("alphabet,w_bits,width", [((1,), 8, 7), ((1, 3), 8, 9), ((1, 3, 5, 7), 8, 11),
                                                   (ALL_ODD, 8, 13), ((1, 3, 5), 4, 6), ((1,), 12, 10)])
def test_encoded_bits(alphabet, w_bits, width):
    assert asm.encoded_bits(alphabet, w_bits) == width


def test_encode_errors_name_the_first_bad_weight():
    with pytest.raises(ValueError, match=r"weight 11 is not representable with alphabet \{1,3\} "
                                         r"\(w_bits=8\); nearest representable: 12"):
        asm.encode([3, 11, 5], (1, 3), 8)
    with pytest.raises(ValueError, match="weight -256 is outside the 8-bit sign-magnitude range -255..255"):
        asm.encode([1, -256], (1, 3), 8)
    with pytest.raises(ValueError, match="weight 16 is outside the 4-bit"):
        asm.project([16], (1,), 4)
    with pytest.raises(ValueError, match="weight 2.5 is not an integer"):
        asm.encode([2.5], (1,), 8)


def test_decode_rejects_words_the_hardware_does_not_define():
    A = (1, 3, 5, 7)
    # quartet 0: nz=1, idx=3 (7), s=2 -> 28 > 15
    word = 2 | (3 << 2) | (1 << 4)
    with pytest.raises(ValueError, match=f"encoded weight {word} names a quartet"):
        asm.decode([word], A, 8)
    with pytest.raises(ValueError, match=r"encoded weight 2048 is outside 0..2047 \(11 bits"):
        asm.decode([2048], A, 8)
    # a 3-member alphabet has an unused index code
    with pytest.raises(ValueError, match="names a quartet"):
        asm.decode([(3 << 2) | (1 << 4)], (1, 3, 5), 4)
    # don't-cares: bits of a zero quartet and the sign of a zero magnitude
    assert asm.decode([0b1111, 1 << 10], A, 8).tolist() == [0, 0]


# ---------------------------------------------------------------- products and the PE row

@settings(max_examples=100, deadline=None)
@given(alphabets, w_bits_st, st.integers(2, 24), st.data())
def test_product_is_exact_for_representable_weights(alphabet, w_bits, x_bits, data):
    reps = asm.representable(alphabet, w_bits)
    n = 20
    x = np.array(data.draw(st.lists(st.integers(-2 ** (x_bits - 1), 2 ** (x_bits - 1) - 1),
                                    min_size=n, max_size=n)))
    w = reps[data.draw(st.lists(st.integers(0, reps.size - 1), min_size=n, max_size=n))]
    w = np.where(x % 2 == 0, w, -w)
    p = asm.product(x, asm.encode(w, alphabet, w_bits), alphabet, x_bits, w_bits)
    assert np.array_equal(p, x * w)
    # it fits the signed x_bits + w_bits output port
    assert np.all(np.abs(p) < 2 ** (asm.product_bits(x_bits, w_bits) - 1))


def test_product_rejects_out_of_range_activations():
    with pytest.raises(ValueError, match="activation 128 is outside the signed 8-bit range -128..127"):
        asm.product([128], [0], (1,), 8, 8)
    with pytest.raises(ValueError, match="x_bits must be in 2..24, got 25"):
        asm.product([0], [0], (1,), 25, 8)


def test_mac_matches_integer_accumulation_per_lane():
    rng = np.random.default_rng(4)
    A = (1, 3)
    n, lanes = 500, 5
    reps = asm.representable(A, 8)
    x = rng.integers(-128, 128, n)
    w = reps[rng.integers(0, reps.size, (n, lanes))] * rng.choice([-1, 1], (n, lanes))
    valid = rng.random(n) < 0.8
    clear = rng.random(n) < 0.05
    got = asm.mac(x, asm.encode(w, A, 8), valid, clear, A, 8, 8, acc_bits=16)
    assert got.shape == (n, lanes)
    for i in range(lanes):
        assert np.array_equal(got[:, i], accumulate(x * w[:, i], valid, clear, 16))
    one = asm.mac(x, asm.encode(w[:, 2], A, 8), valid, clear, A, 8, 8, acc_bits=16)
    assert np.array_equal(one, got[:, 2])


# ---------------------------------------------------------------- the pre-computer bank

@pytest.mark.parametrize("alphabet", EVERY_ALPHABET, ids=lambda a: "-".join(map(str, a)))
def test_bank_plan_builds_every_member_with_one_adder_per_step(alphabet):
    plan = asm.bank_plan(alphabet)
    have = {1}
    for step in plan:
        assert step.lhs in have and step.rhs in have, f"{step}: operand used before it is built"
        assert step.sign in (1, -1) and step.lshift >= 0 and step.rshift >= 0
        assert (step.lhs << step.lshift) + step.sign * (step.rhs << step.rshift) == step.dst
        have.add(step.dst)
    assert set(alphabet) <= have
    helpers = have - set(alphabet)
    # a helper only when a member needs it; never more adders than members + 1
    assert len(plan) == len(alphabet) - 1 + len(helpers) and len(helpers) <= 1


def test_bank_plan_of_the_full_alphabet_is_two_adders_deep():
    depth = {1: 0}
    for s in asm.bank_plan(ALL_ODD):
        depth[s.dst] = max(depth[s.lhs], depth[s.rhs]) + 1
    assert max(depth.values()) == 2 and len(asm.bank_plan(ALL_ODD)) == 7
