"""Weight tuning (net/tuning.py) against a brute-force reference: plain loops over w, w2 and
every signed activation a, the sign-magnitude product taken from the multiplier's table by hand."""
import numpy as np
import pytest

from net import tuning
from net.datapath import parse

# a few weight codes per multiplier: near the extremes, small and mid magnitudes of both signs
W_CODES = (-126, -77, -1, 2, 64, 126)


def _brute_map(table, weights_of_a, w_codes):
    """{w: w'} by the definition: w' = argmin over w2 in -127..127 of sum_a g(a) |a*w - M(a, w2)|,
    ties to the closest code, then the lower one. M is the sign-magnitude product on the unsigned
    table."""
    T = table.tolist()
    out = {}
    for w in w_codes:
        best = None
        for w2 in range(-127, 128):
            cost = 0
            for a in range(-128, 128):
                g = weights_of_a[a + 128]
                if g == 0:
                    continue
                m = T[abs(a)][abs(w2)]
                p = -m if (a < 0) != (w2 < 0) else m
                cost += g * abs(a * w - p)
            key = (cost, abs(w2 - w), w2)
            if best is None or key < best:
                best = key
        out[w] = best[2]
    return out


@pytest.fixture(scope="module")
def random_lut(tmp_path_factory):
    rng = np.random.default_rng(13)
    a = np.arange(256)[:, None] * np.arange(256)[None, :]
    t = np.clip(a + rng.integers(-300, 300, size=(256, 256)), 0, 65535).astype(np.uint16)
    t[0, :] = rng.integers(0, 40, 256)      # non-zero products of zero: the sign of 0 matters
    p = tmp_path_factory.mktemp("lut") / "noisy.npy"
    np.save(p, t)
    return f"lut:{p}"


@pytest.mark.parametrize("spec", ["approx:mul-mitchell,frac_bits=3", "approx:mul-trunc,k=9,correction=1", "LUT"])
def test_uniform_tuning_equals_brute_force(spec, random_lut):
    spec = random_lut if spec == "LUT" else spec
    dp = parse(spec)
    ref = _brute_map(dp.table(), [1] * 256, W_CODES)
    tmap = tuning.tune_map(dp)
    assert {w: int(tmap[w + 128]) for w in W_CODES} == ref


def test_histogram_tuning_equals_brute_force_over_signed_activations(random_lut):
    """A histogram over signed activations, folded into |a| counts, tunes as the signed sum does
    (the cost is odd-symmetric in a); sparse, skewed counts like a ReLU layer's."""
    rng = np.random.default_rng(5)
    g = np.zeros(256, np.int64)
    g[128:128 + 40] = rng.integers(0, 1000, 40)           # mostly small positive activations
    g[rng.integers(0, 256, 12)] += rng.integers(1, 50, 12)
    codes = np.repeat(np.arange(-128, 128), g)
    h = tuning.activation_histogram(codes)
    assert h.sum() == g.sum() and h.shape == (129,)
    for spec in ("approx:mul-drum,k=3", random_lut):
        dp = parse(spec)
        ref = _brute_map(dp.table(), g.tolist(), W_CODES)
        tmap = tuning.tune_map(dp, h)
        assert {w: int(tmap[w + 128]) for w in W_CODES} == ref


def test_exact_multiplier_keeps_every_weight():
    assert np.array_equal(tuning.tune_map("approx:mul-array"), tuning.CODES)


@pytest.mark.parametrize("spec", ["approx:mul-trunc,k=9,correction=1", "approx:mul-mitchell,frac_bits=3"])
def test_fixed_codes_stay_and_tuned_float_weights_requantize_exactly(spec):
    """0 and +-127 stay (this trunc moves 127 and mitchell -127 when free); the tuned float weights
    quantize per channel back to exactly the tuned codes with the same scales."""
    dp = parse(spec)
    tmap = tuning.tune_map(dp)
    for c in tuning.FIXED:
        assert tmap[c + 128] == c
    free = tuning.tuning_cost(dp)[[1, 255]][:, tuning.CANDIDATES + 128].argmin(axis=1) + tuning.CANDIDATES[0]
    assert tuple(free) != (-127, 127)          # the unconstrained optimum would move an anchor
    assert tmap.min() >= -128 and np.all(np.abs(tmap[1:]) <= 127)
    rng = np.random.default_rng(2)
    w = rng.normal(size=(6, 3, 5, 5)) * rng.uniform(0.1, 3, size=(6, 1, 1, 1))
    w[2] = 0.0                                 # an all-zero channel
    tuned = tuning.tuned_float_weights(dp, w, "uniform")
    codes, scale = dp.quantize(w, "w", axis=0)
    codes2, scale2 = dp.quantize(tuned.astype(np.float64), "w", axis=0)
    assert np.array_equal(codes2, tmap[codes + 128])
    assert np.any(codes2 != codes)
    assert np.allclose(scale2, scale, rtol=1e-6)


def test_tuned_code_never_costs_more_and_is_applied_as_a_gather():
    dp = parse("approx:mul-bam,vbl=6,hbl=1")
    cost = tuning.tuning_cost(dp)
    tmap = tuning.tune_map(dp)
    idx = np.arange(256)
    assert np.all(cost[idx, tmap + 128] <= cost[idx, idx])
    assert np.any(tmap != tuning.CODES)          # this multiplier does move some weights
    w = np.random.default_rng(1).integers(-127, 128, size=(7, 5))
    tuned = tuning.tune_weights(dp, w, "uniform")
    assert np.array_equal(tuned, tmap[w + 128])
    assert np.array_equal(tuning.tune_weights(dp, w, "none"), w)


def test_tuning_bad_input_one_line():
    with pytest.raises(ValueError, match=r"^weight tuning applies to approximate multipliers \(approx:, lut:\), not 'int8'$"):
        tuning.tune_map("int8")
    with pytest.raises(ValueError, match=r"^unknown tuning 'best' \(tunings: none, uniform, histogram\)$"):
        tuning.tune_weights("approx:mul-array", [1], "best")
    with pytest.raises(ValueError, match=r"^histogram tuning needs the layer's activation histogram$"):
        tuning.tune_weights("approx:mul-array", [1], "histogram")
    with pytest.raises(ValueError, match=r"^an activation histogram has 129 counts"):
        tuning.tune_map("approx:mul-array", np.ones(128, np.int64))
    with pytest.raises(ValueError, match=r"^weight codes must be signed 8-bit integers \(-128..127\)$"):
        tuning.apply_map(tuning.CODES, [200])
