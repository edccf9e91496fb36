"""ALS-POTQ on the RTL: one training step of the MLP on real digits (net.potq, PoT weights,
activations and errors) and one 4 x 4 tile of its backward-data product dX = E . W (fc2: 4 samples x
4 input features, K = 64 output features) run through `mfmac-array`: the array's accumulators equal
the training step's integer accumulations and golden/pot.py's definition, bit for bit. The tile's
operands go to the testbench in an .npz in this test's own build directory (one per parameter set)."""
from __future__ import annotations

import numpy as np
import pytest

from golden import pot
from rtl.export import generate

from .runner import SIM_DIR, _slug, run_verilog

pytestmark = pytest.mark.sim

TILE = 4


def _step_tile(errors: str):
    """(E tile rows x K, W tile K x cols, the step's dX_int tile) of one ALS-POTQ training step."""
    import torch

    from net import data, models, potq
    from net.train import make_mode
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ds = data.load("digits")
        torch.manual_seed(0)
        mode = make_mode("mfmac", errors)
        model = mode.convert(models.build("mlp", ds.input_shape, ds.num_classes))
        layer = mode.layers["fc2"]
        potq.record(layer)
        x, y = torch.from_numpy(ds.x_train[:32]), torch.from_numpy(ds.y_train[:32])
        torch.nn.functional.cross_entropy(model(x), y).backward()
    finally:
        torch.set_num_threads(threads)
    r = layer.core.last
    eq, wq, dx = r["eq"], r["wq_e"], r["dx_int"]
    rows = np.argsort(-(eq != 0).sum(axis=1), kind="stable")[:TILE]        # the busiest samples
    cols = np.argsort(-(wq != 0).sum(axis=0), kind="stable")[:TILE]        # and input features
    return eq[rows], wq[:, cols], dx[np.ix_(rows, cols)], mode.dp_err


@pytest.mark.parametrize("errors", ["mfmac", "mfmac,exp_bits=4,acc_bits=32"])
def test_backward_data_tile_on_mfmac_array(errors):
    E, W, want, dpe = _step_tile(errors)
    eb, acc = dpe.params["exp_bits"], dpe.acc_bits
    assert E.shape == (TILE, 64) and W.shape == (64, TILE)
    assert np.count_nonzero(E) > 64 and np.count_nonzero(W) > 128 and np.count_nonzero(want) == TILE * TILE
    assert np.array_equal(want, dpe.matmul_definition(E, W))             # the step's tile is the definition's
    assert np.array_equal(want, pot.matmul(E, W, eb, acc))
    design, params = "mfmac-array", {"rows": TILE, "cols": TILE, "exp_bits": eb, "acc_bits": acc}
    text, sheet = generate(design, params)
    build = SIM_DIR / ("potq-tile-" + _slug(design, sheet["parameters"]))
    build.mkdir(parents=True, exist_ok=True)
    src = build / f"{sheet['module']}.v"
    src.write_text(text)
    ops = build / "potq_tile_operands.npz"
    np.savez(ops, e=E, w=W, want=want)
    import json
    run_verilog([src], sheet["module"], "cocotb_tests.tb_potq_tile", build,
                {"ECOMAC_PARAMS": json.dumps(sheet["parameters"]), "ECOMAC_DESIGN": design,
                 "ECOMAC_OPERANDS": str(ops)})
