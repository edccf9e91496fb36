"""pytest runners for the ASM testbenches: one simulation per parameter set."""
import pytest

from golden.asm import ALPHABETS

from .runner import run_sim

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("alphabet", ALPHABETS, ids=lambda a: "A" + "-".join(map(str, a)))
def test_asm_mul_exhaustive_8x8(alphabet):
    run_sim("asm-mul", {"x_bits": 8, "w_bits": 8, "alphabet": alphabet}, "cocotb_tests.tb_asm")


@pytest.mark.parametrize("x_bits,w_bits,alphabet", [(5, 12, (1, 5, 11)), (12, 4, (1, 3, 13)),
                                                    (8, 12, (1, 3, 5, 7, 9, 11, 13, 15))])
def test_asm_mul_other_widths(x_bits, w_bits, alphabet):
    run_sim("asm-mul", {"x_bits": x_bits, "w_bits": w_bits, "alphabet": alphabet}, "cocotb_tests.tb_asm")


@pytest.mark.parametrize("lanes,alphabet,x_bits,w_bits,acc_bits", [
    (1, (1,), 8, 8, 24),
    (4, (1, 3), 8, 8, 16),
    (16, (1, 3, 5, 7), 8, 8, 24),
    (3, (1, 3, 5, 7, 9, 11, 13, 15), 8, 8, 20),
    (2, (1, 11), 6, 12, 18),
    (5, (1, 3, 9), 4, 4, 8),
])
def test_asm_pe_row(lanes, alphabet, x_bits, w_bits, acc_bits):
    run_sim("asm-pe-row", {"lanes": lanes, "alphabet": alphabet, "x_bits": x_bits, "w_bits": w_bits,
                           "acc_bits": acc_bits}, "cocotb_tests.tb_asm")
