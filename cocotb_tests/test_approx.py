"""pytest runners for the approximate-multiplier testbench: one simulation per parameter set,
N = 8 exhaustive (65,536 pairs), at least two parameter values per family."""
import pytest

from .runner import run_sim

pytestmark = pytest.mark.sim

CASES = [
    ("mul-array", {"bits": 8}),
    ("mul-array", {"bits": 4}),
    ("mul-exact", {"bits": 8}),
    ("mul-trunc", {"bits": 8, "k": 6, "correction": False}),
    ("mul-trunc", {"bits": 8, "k": 9, "correction": True}),
    ("mul-bam", {"bits": 8, "vbl": 7, "hbl": 0}),
    ("mul-bam", {"bits": 8, "vbl": 9, "hbl": 2}),
    ("mul-drum", {"bits": 8, "k": 3}),
    ("mul-drum", {"bits": 8, "k": 5}),
    ("mul-mitchell", {"bits": 8, "frac_bits": 7}),
    ("mul-mitchell", {"bits": 8, "frac_bits": 3}),
]


@pytest.mark.parametrize("design,params", CASES, ids=[f"{d}-{'-'.join(f'{k}{v}' for k, v in p.items())}"
                                                      for d, p in CASES])
def test_approx_exhaustive(design, params):
    run_sim(design, params, "cocotb_tests.tb_approx")


def test_array_32_random():
    """The 32-bit exact array (the energy calibration's 32-bit multiply) on 2^16 random pairs."""
    run_sim("mul-array", {"bits": 32}, "cocotb_tests.tb_approx")
