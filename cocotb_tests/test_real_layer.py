"""The RTL closes the loop on a real layer: a small conv net is trained on the digits of
sklearn.load_digits (500 images, 40 full-batch steps, fixed seed: about a second), its second convolution (8 -> 8
channels, 3x3, padding 1: K = 72) is quantized by each datapath's own quantizers (activations
= the first layer's real outputs on real digits), and one 4 x 4 output tile (4 output
positions x 4 output channels) of net.kernels.conv2d is run through the datapath's RTL
(mfmac-array as a whole tile; int-mac and approx-mac one output per stream): the RTL's
accumulators equal the emulator's bit for bit. The operands go to the testbench in an .npz
in the simulation's build directory."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from net import kernels
from net.datapath import parse
from rtl.export import generate

from .runner import SIM_DIR, _slug, run_sim

pytestmark = pytest.mark.sim

TILE = 4                       # outputs per side: 4 positions x 4 output channels


@lru_cache(maxsize=1)
def _trained_layer():
    """(conv2 input activations N x 8 x 8 x 8, conv2 weights 8 x 8 x 3 x 3, train accuracy %)."""
    import torch
    from sklearn.datasets import load_digits
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                         # tiny work: threads only add contention
    d = load_digits()
    x = torch.tensor(d.images[:500] / 16.0, dtype=torch.float32)[:, None]
    y = torch.tensor(d.target[:500])
    conv1, conv2 = torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1)
    model = torch.nn.Sequential(conv1, torch.nn.ReLU(), conv2, torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 10))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(40):                              # full batch: 500 images of 8 x 8
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean()) * 100
        act = torch.relu(conv1(x[:4])).numpy()       # conv2's real input on real digits
    torch.set_num_threads(threads)
    return act.astype(np.float64), conv2.weight.detach().numpy().astype(np.float64), acc


def _tile(spec: str):
    """The datapath's codes of the tile (rows x K, K x cols) and the emulator's outputs."""
    act, weight, _ = _trained_layer()
    dp = parse(spec)
    xc, _ = dp.quantize(act, "x")
    wc, _ = dp.quantize(weight, "w")
    Y = kernels.conv2d(dp, xc, wc, stride=1, padding=1)           # N x Cout x 8 x 8
    cols = kernels.im2col(xc, 3, 3, 1, 1)                          # rows: (n, i, j)
    # the tile: 4 output positions of image 1 at the centre (row 3, columns 2..5), channels 0..3
    pos = [(1, 3, j) for j in range(2, 2 + TILE)]
    idx = [n * 64 + i * 8 + j for n, i, j in pos]
    X = cols[idx]
    W = wc.reshape(wc.shape[0], -1).T[:, :TILE]
    want = np.array([[Y[n, c, i, j] for c in range(TILE)] for n, i, j in pos])
    return X, W, want


def _run(design: str, params: dict, spec: str):
    X, W, want = _tile(spec)
    assert X.shape == (TILE, 72) and W.shape == (72, TILE)
    assert np.count_nonzero(X) > 32 and np.count_nonzero(W) > 64     # a real, busy tile
    assert np.array_equal(want, kernels.matmul(spec, X, W))          # the tile is the layer's
    _, sheet = generate(design, params)
    build = SIM_DIR / _slug(design, sheet["parameters"])
    build.mkdir(parents=True, exist_ok=True)
    ops = build / "real_layer_operands.npz"
    np.savez(ops, x=X, w=W, want=want)
    run_sim(design, params, "cocotb_tests.tb_real_layer", env={"ECOMAC_OPERANDS": str(ops)})


def test_digits_layer_is_trained():
    assert _trained_layer()[2] > 80                   # a working feature extractor (chance: 10%)


def test_mfmac_array_tile():
    _run("mfmac-array", {"rows": TILE, "cols": TILE, "exp_bits": 3, "acc_bits": 24}, "mfmac")


@pytest.mark.parametrize("spec", ["int8", "approx:mul-drum,k=4", "approx:mul-mitchell,frac_bits=7"])
def test_mac_tile(spec):
    design, params = parse(spec).mac_design
    _run(design, params, spec)
