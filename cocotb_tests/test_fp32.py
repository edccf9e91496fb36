"""pytest runners for the FP32 baselines: one simulation per design."""
import pytest

from .runner import run_sim

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("design", ["fp32-mul", "fp32-add", "fp32-mac"])
def test_fp32(design):
    run_sim(design, {}, "cocotb_tests.tb_fp32")
