"""Properties of the tile-level golden model: y against plain integer algebra, encodings, counts."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden import asm, pot
from golden import tile as gtile
from golden.fixed import to_signed, wrap

KINDS = gtile.KINDS


@st.composite
def problems(draw):
    """A random tile spec, integer W and X (values, not port words) of that datapath."""
    datapath = draw(st.sampled_from(gtile.DATAPATHS))
    kind = draw(st.sampled_from(KINDS))
    lanes, depth = draw(st.integers(1, 6)), draw(st.integers(1, 9))
    seed = draw(st.integers(0, 2**32 - 1))
    r = np.random.default_rng(seed)
    if datapath == "int":
        xb, wb = draw(st.integers(2, 12)), draw(st.integers(2, 12))
        acc = draw(st.integers(2 * max(xb, wb), 40))
        s = gtile.spec(kind, lanes, depth, "int", xb, wb, acc_bits=acc, bus_bits=draw(st.integers(1, 70)))
        W = r.integers(-(1 << (wb - 1)), 1 << (wb - 1), (lanes, depth))
        X = r.integers(-(1 << (xb - 1)), 1 << (xb - 1), (5, depth))
    elif datapath == "mfmac":
        E = draw(st.integers(1, 4))
        s = gtile.spec(kind, lanes, depth, "mfmac", exp_bits=E, acc_bits=draw(st.integers(pot.product_bits(E), 40)))
        vals = np.concatenate([[0], 1 << np.arange(pot.max_exp(E) + 1)])
        W = vals[r.integers(0, vals.size, (lanes, depth))] * r.choice([-1, 1], (lanes, depth))
        X = vals[r.integers(0, vals.size, (5, depth))] * r.choice([-1, 1], (5, depth))
    else:
        alpha = draw(st.sampled_from(asm.ALPHABETS))
        wb, xb = draw(st.sampled_from([4, 8, 12])), draw(st.integers(2, 12))
        s = gtile.spec(kind, lanes, depth, "asm", xb, wb, alphabet=alpha, acc_bits=draw(st.integers(xb + wb, 40)))
        reps = asm.representable(alpha, wb)
        W = reps[r.integers(0, reps.size, (lanes, depth))] * r.choice([-1, 1], (lanes, depth))
        X = r.integers(-(1 << (xb - 1)), 1 << (xb - 1), (5, depth))
    return s, W, X


@settings(max_examples=150, deadline=None)
@given(problems())
def test_mvm_is_the_wrapped_integer_matrix_product(prob):
    s, W, X = prob
    y = gtile.mvm(s, gtile.encode_weights(s, W), gtile.encode_inputs(s, X))
    # plain Python integers: no wrap until the end
    want = [[int(sum(int(a) * int(b) for a, b in zip(W[l], x))) for l in range(s.lanes)] for x in X]
    assert np.array_equal(y, wrap(np.array(want, dtype=object), s.acc_bits).astype(np.int64))


@settings(max_examples=100, deadline=None)
@given(problems())
def test_weight_words_decode_back_to_the_weights(prob):
    s, W, _ = prob
    words = gtile.encode_weights(s, W)
    assert words.min() >= 0 and words.max() < 1 << s.w_width
    if s.datapath == "int":
        back = to_signed(words, s.w_bits)
    elif s.datapath == "mfmac":
        back = pot.decode(words, s.exp_bits)
    else:
        back = asm.decode(words, s.alphabet, s.w_bits)
    assert np.array_equal(back, W)


def test_mfmac_products_of_every_code_pair_match_pot():
    s = gtile.spec("near", 1, 1, "mfmac", exp_bits=3)
    c = np.arange(16)
    x, w = np.meshgrid(c, c)
    assert np.array_equal(gtile.products(s, w, x), pot.decode(x, 3) * pot.decode(w, 3))


@given(st.integers(0, 50), st.integers(0, 500), st.integers(1, 64), st.integers(1, 256))
def test_counts_follow_the_access_pattern(loads, elements, lanes, bus):
    vn = gtile.spec("vn", lanes, 16, "int", bus_bits=bus)
    beats = -(-lanes * 8 // bus)                          # 8-bit weights
    c = gtile.counts(vn, loads, elements)
    assert c == {"mem_writes": loads * beats, "mem_reads": elements * beats, "bus_beats": elements * beats,
                 "bank_writes": 0, "bank_reads": 0}
    near = gtile.counts(gtile.spec("near", lanes, 16, "int"), loads, elements)
    assert near == {"mem_writes": loads, "mem_reads": elements, "bus_beats": 0, "bank_writes": 0, "bank_reads": 0}
    tin = gtile.counts(gtile.spec("in", lanes, 16, "int"), loads, elements)
    # 8-bit weights are 4 radix-4 digits: 4 bank reads per lane and element
    assert tin == {"mem_writes": loads * lanes, "mem_reads": elements * lanes, "bus_beats": 0,
                   "bank_writes": elements, "bank_reads": elements * lanes * 4}


def test_bank_shapes():
    assert gtile.spec("in", 4, 4, "int", x_bits=8, w_bits=7).bank == (2, 10, 4)
    assert gtile.spec("in", 4, 4, "mfmac", exp_bits=3).bank == (1, 8, 1)
    assert gtile.spec("in", 4, 4, "asm", x_bits=8, w_bits=12, alphabet=(1, 3)).bank == (2, 12, 3)


def test_auto_widths():
    s = gtile.spec("near", datapath="mfmac", exp_bits=2)
    assert (s.x_bits, s.w_bits, s.w_width) == (3, 3, 3)
    s = gtile.spec("vn", datapath="asm", alphabet="1,3,5,7", lanes=64, bus_bits=64)
    assert (s.x_bits, s.w_bits, s.w_width, s.beats) == (8, 8, 11, 11)
    assert gtile.spec("in", datapath="int").x_bits == 8


# ---- the data-movement energy model (synth/movement.py) -------------------------------------
from synth import movement  # noqa: E402
from synth.reference import sram_access_pj  # noqa: E402


def test_vn_with_a_zero_length_bus_moves_what_near_moves():
    """Energy is linear in access width: 8 bus beats of 64 bits cost one 512-bit row read."""
    vn = gtile.spec("vn", 64, 256, "int", bus_bits=64)
    near = gtile.spec("near", 64, 256, "int")
    zero = movement.MovementModel(bus_mm=0.0)
    assert movement.movement(vn, zero)["total_pj"] == pytest.approx(movement.movement(near)["total_pj"])
    bus = movement.movement(vn)["parts"]["bus_pj"]
    assert bus == pytest.approx(256 * 64 * 8 * movement.WIRE_PJ_PER_BIT_MM * movement.BUS_MM)


def test_in_memory_sub_arrays_and_bank():
    s = gtile.spec("in", 64, 256, "asm", alphabet=(1, 3, 5, 7))
    mv = movement.movement(s)
    # 64 column sub-arrays of 256 x 11 bits, one 11-bit read each per element
    assert mv["parts"]["weight_reads_pj"] == pytest.approx(256 * 64 * sram_access_pj(256 * 11 / 8, 11))
    # bank: 4 entries of 12 bits, written once per element, read twice (2 quartets) per lane
    assert mv["parts"]["bank_writes_pj"] == pytest.approx(256 * sram_access_pj(6, 48))
    assert mv["parts"]["bank_reads_pj"] == pytest.approx(256 * 64 * 2 * sram_access_pj(6, 12))
    near = movement.movement(gtile.spec("near", 64, 256, "asm", alphabet=(1, 3, 5, 7)))
    assert mv["parts"]["weight_reads_pj"] < near["parts"]["weight_reads_pj"]
    floor = movement.MovementModel(min_sram_bytes=1 << 20)
    # floored at 1 MB, every weight read costs the 1 MB energy per bit for the 64 x 11 bits of a row
    assert movement.movement(s, floor)["parts"]["weight_reads_pj"] == pytest.approx(
        256 * sram_access_pj(1 << 20, 64 * 11))


def test_arithmetic_of_a_pe_row_is_its_pes():
    """Static model: a row of 2 int-mac PEs costs 2 int-mac per step (the probe adds no logic)."""
    from synth.energy import design_energy
    s = gtile.spec("near", 2, 4, "int", acc_bits=24)
    a = movement.arithmetic(s, mode="static")
    pe = design_energy("int-mac", {"bits": 8, "acc_bits": 24}, mode="static")
    assert a["pj_per_mac"] == pytest.approx(pe["energy_pj"], rel=0.02)
    assert a["mvm_pj"] == pytest.approx(a["pj_per_step"] * 4)


# ---- compact ASM weight storage (weight_storage=index) -------------------------------------
def test_index_storage_widths_and_products():
    import numpy as np
    from golden import asm as gasm
    from golden import tile as gt
    for alpha, bits in (((1,), 6), ((1, 3), 7), ((1, 3, 5, 7), 9)):
        s = gt.spec("near", 4, 6, "asm", alphabet=alpha, weight_storage="index")
        c = gt.spec("near", 4, 6, "asm", alphabet=alpha)
        assert s.w_width == bits and c.w_width == gasm.encoded_bits(alpha, 8)
        rng = np.random.default_rng(1)
        reps = gasm.representable(alpha, 8)
        W = reps[rng.integers(0, reps.size, (4, 6))] * rng.choice([-1, 1], (4, 6))
        X = rng.integers(-128, 128, (3, 6))
        y = gt.mvm(s, gt.encode_weights(s, W), gt.encode_inputs(s, X))
        assert np.array_equal(y, gt.mvm(c, gt.encode_weights(c, W), gt.encode_inputs(c, X)))
        assert np.array_equal(y, X @ W.T)


def test_index_storage_errors():
    import pytest as _pytest
    from golden import tile as gt
    with _pytest.raises(ValueError, match="weight_storage must be one of control, index, got 'rom'"):
        gt.spec("near", datapath="asm", weight_storage="rom")
    with _pytest.raises(ValueError, match="weight_storage=index applies to datapath asm only, got datapath int"):
        gt.spec("near", datapath="int", weight_storage="index")
