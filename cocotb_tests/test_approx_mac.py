"""pytest runners for `approx-mac`: one simulation per parameter set, all 2^16 signed pairs
for bits = 8 with two multiplier families (the second with a narrow accumulator that wraps)."""
import pytest

from .runner import run_sim

pytestmark = pytest.mark.sim

CASES = [
    {"multiplier": "mul-drum", "k": 4, "bits": 8, "acc_bits": 24},
    {"multiplier": "mul-mitchell", "frac_bits": 3, "bits": 8, "acc_bits": 18},
]


@pytest.mark.parametrize("params", CASES, ids=[p["multiplier"] for p in CASES])
def test_approx_mac(params):
    run_sim("approx-mac", params, "cocotb_tests.tb_approx_mac")
