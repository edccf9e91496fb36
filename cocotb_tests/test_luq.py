"""pytest runners for luq-quant (the stochastic PoT error quantizer): one simulation per parameter set."""
import pytest

from .runner import run_sim

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("exp_bits,in_bits,rand_bits", [
    (3, 6, 9),        # exhaustive: 2^6 x * 2^3 kmax * 2^9 r = 2^18
    (2, 8, 9),        # exhaustive: 2^8 * 2^4 * 2^9 = 2^21 > 2^20: random
    (1, 5, 10),       # exhaustive (E = 1: one power): 2^18
    (3, 24, 16),      # the priced width: random
    (5, 32, 16),      # wide codes: random
])
def test_luq_quant_input(exp_bits, in_bits, rand_bits):
    run_sim("luq-quant", {"exp_bits": exp_bits, "in_bits": in_bits, "rand_bits": rand_bits, "rng": "input"},
            "cocotb_tests.tb_luq")


@pytest.mark.parametrize("lfsr_bits,rand_bits,seed", [(24, 16, 1), (16, 16, 0xACE1), (8, 3, 77)])
def test_luq_quant_lfsr(lfsr_bits, rand_bits, seed):
    run_sim("luq-quant", {"exp_bits": 3, "in_bits": 24, "rand_bits": rand_bits, "rng": "lfsr",
                          "lfsr_bits": lfsr_bits, "seed": seed}, "cocotb_tests.tb_luq")
