"""pytest runners for the tile testbench: every tile kind x every datapath, plus edge shapes."""
import pytest

from .runner import run_sim

pytestmark = pytest.mark.sim

KINDS = ("tile-vn", "tile-near", "tile-in")
BASE = {"lanes": 3, "depth": 5}
DATAPATHS = {
    "int": {"datapath": "int", "x_bits": 6, "w_bits": 5, "acc_bits": 12},        # odd w, wraps
    "mfmac": {"datapath": "mfmac", "exp_bits": 3, "acc_bits": 16},                # wraps
    "asm": {"datapath": "asm", "x_bits": 5, "w_bits": 8, "alphabet": (1, 3), "acc_bits": 16},
}


@pytest.mark.parametrize("datapath", DATAPATHS)
@pytest.mark.parametrize("kind", KINDS)
def test_tile(kind, datapath):
    params = {**BASE, **DATAPATHS[datapath]}
    if kind == "tile-vn":
        params["bus_bits"] = 8           # rows of 12..27 bits: 2..4 beats, the last one partial
    run_sim(kind, params, "cocotb_tests.tb_tile")


@pytest.mark.parametrize("kind,params", [
    ("tile-vn", {"lanes": 1, "depth": 1, "datapath": "int", "bus_bits": 3}),      # K=1, 3 beats
    ("tile-near", {"lanes": 2, "depth": 1, "datapath": "asm", "w_bits": 4, "alphabet": (1,), "acc_bits": 12}),
    ("tile-in", {"lanes": 1, "depth": 2, "datapath": "mfmac", "exp_bits": 2, "acc_bits": 8}),
    ("tile-in", {"lanes": 4, "depth": 3, "datapath": "asm", "alphabet": (1, 3, 5, 7, 9, 11, 13, 15),
                 "w_bits": 12, "x_bits": 4}),
    ("tile-vn", {"lanes": 4, "depth": 4, "datapath": "mfmac", "bus_bits": 64}),  # one beat
    # even w_bits: the signed top radix-4 digit takes all four codes (an odd width, as in
    # DATAPATHS["int"], sign-extends into it so its "10" = -2x code is never used)
    ("tile-in", {"lanes": 3, "depth": 4, "datapath": "int", "x_bits": 6, "w_bits": 8, "acc_bits": 16}),
])
def test_tile_edges(kind, params):
    run_sim(kind, params, "cocotb_tests.tb_tile")
