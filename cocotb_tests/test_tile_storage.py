"""pytest runners for the tiles with compact ASM weight storage (weight_storage=index): the
weight memory holds sign + index words, one AsmWeightDecoder per lane turns them into the
lanes' control words; tb_tile checks y, back-pressure and the access counters as for every tile."""
import pytest

from .runner import run_sim

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("kind,params", [
    ("tile-vn", {"lanes": 3, "depth": 5, "x_bits": 5, "alphabet": (1, 3), "acc_bits": 16, "bus_bits": 8}),
    ("tile-near", {"lanes": 2, "depth": 3, "alphabet": (1,), "acc_bits": 16}),
    ("tile-in", {"lanes": 3, "depth": 4, "x_bits": 6, "alphabet": (1, 3, 5, 7), "acc_bits": 20}),
])
def test_tile_compact_weights(kind, params):
    run_sim(kind, {**params, "datapath": "asm", "w_bits": 8, "weight_storage": "index"}, "cocotb_tests.tb_tile")
