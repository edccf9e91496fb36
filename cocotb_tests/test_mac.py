"""pytest runners for the MAC testbenches: one simulation per parameter set."""
import pytest

from .runner import run_sim

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("exp_bits,acc_bits", [(3, 24), (3, 14), (2, 8), (1, 4), (4, 32)])
def test_mfmac_pe(exp_bits, acc_bits):
    run_sim("mfmac-pe", {"exp_bits": exp_bits, "acc_bits": acc_bits}, "cocotb_tests.tb_mac")


@pytest.mark.parametrize("exp_bits,acc_bits", [(3, 24), (1, 4), (5, 64)])
def test_mfmac_pe_pipelined(exp_bits, acc_bits):
    run_sim("mfmac-pe", {"exp_bits": exp_bits, "acc_bits": acc_bits, "pipeline": True}, "cocotb_tests.tb_mac")


@pytest.mark.parametrize("exp_bits,acc_bits", [(3, 24), (1, 2), (2, 7), (5, 64)])
def test_mfmac_pe_split_accumulator(exp_bits, acc_bits):
    """pipeline=2: the accumulator's halves add on successive clocks (odd widths split unevenly)."""
    run_sim("mfmac-pe", {"exp_bits": exp_bits, "acc_bits": acc_bits, "pipeline": 2}, "cocotb_tests.tb_mac")


@pytest.mark.parametrize("bits,acc_bits", [(8, 24), (4, 8), (12, 32)])
def test_int_mac(bits, acc_bits):
    run_sim("int-mac", {"bits": bits, "acc_bits": acc_bits}, "cocotb_tests.tb_mac")


@pytest.mark.parametrize("rows,cols,exp_bits,acc_bits", [(4, 4, 3, 24), (2, 5, 2, 10), (3, 1, 4, 32), (8, 8, 3, 16)])
def test_mfmac_array(rows, cols, exp_bits, acc_bits):
    run_sim("mfmac-array", {"rows": rows, "cols": cols, "exp_bits": exp_bits, "acc_bits": acc_bits},
            "cocotb_tests.tb_mfmac_array")
