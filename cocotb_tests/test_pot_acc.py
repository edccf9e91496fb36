"""pytest runners for the MF-MAC tree accumulators: one simulation per parameter set."""
import pytest

from .runner import run_sim

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("accumulator,exp_bits,acc_bits", [
    ("tree2", 2, 10),      # every chunk: 8^4 = 4,096
    ("tree4", 1, 4),       # every chunk: 4^8 = 65,536; a 4-bit accumulator wraps
    ("tree8", 3, 24),
    ("tree16", 3, 14),     # the widest tree (18-bit D) into a narrower accumulator: wraps
])
def test_mfmac_pe_tree(accumulator, exp_bits, acc_bits):
    run_sim("mfmac-pe", {"exp_bits": exp_bits, "acc_bits": acc_bits, "accumulator": accumulator},
            "cocotb_tests.tb_pot_acc")
