"""net.quant: the torch quantizers equal golden.datapath's NumPy ones code for code and scale for
scale - random tensors, exact ties, clipping, zeros, tiny and huge magnitudes, per-channel slices,
the calibrated (observer) form - and values() equals Datapath.values."""
import numpy as np
import pytest
import torch

from golden.datapath import parse as golden_parse
from net import quant

SPECS = ["int8", "approx:mul-drum", "mfmac", "mfmac,exp_bits=1", "mfmac,exp_bits=5", "asm", "asm,alphabet=1,w_bits=4",
         "asm,alphabet=1/3,w_bits=12,x_bits=5", "asm,alphabet=1/3/5/7/9/11/13/15"]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def _tensors(rng):
    """Random normal, exact integer ties (k + 1/2 of a 127-scale), values at PoT rounding
    thresholds (2^(n + 1/2) and its float neighbours), zeros, a one-element tensor, tiny and huge."""
    thr = np.sqrt(2.0) * 2.0 ** np.arange(-8, 8)
    near = np.concatenate([thr, np.nextafter(thr, 0), np.nextafter(thr, np.inf), 0.5 * 2.0 ** np.arange(-8, 8)])
    ties = (np.arange(-127, 128) + 0.5) / 127.0
    return [rng.standard_normal((7, 13)), np.append(ties, 1.0), np.append(near, -near), np.zeros((3, 4)),
            np.array([[-2.5]]), rng.standard_normal((4, 5)) * 1e-30, rng.standard_normal((4, 5)) * 1e30,
            np.array([1e-40, -3e-39, 0.0], np.float32).astype(np.float64), rng.standard_normal((2, 3, 4, 5)).astype(np.float32)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("role", ["x", "w"])
def test_quantize_equals_golden(spec, role, device):
    dp = golden_parse(spec)
    rng = np.random.default_rng(1)
    for t in _tensors(rng):
        axes = [None] + ([0, t.ndim - 1] if t.ndim > 1 else [0])
        for axis in axes:
            want_c, want_s = dp.quantize(t, role, axis=axis)
            got_c, got_s = quant.quantize(dp, torch.from_numpy(np.asarray(t)).to(device), role, axis=axis)
            assert got_c.dtype == torch.int64 and got_c.device.type == device
            assert np.array_equal(got_c.cpu().numpy(), want_c), (spec, role, axis, t.ravel()[:4])
            assert np.array_equal(np.broadcast_to(got_s.cpu().numpy(), np.shape(want_s)), want_s), (spec, role, axis)
            assert np.array_equal(quant.values(dp, got_c, role).cpu().numpy(), dp.values(want_c, role))


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("role", ["x", "w"])
def test_calibrated_quantizer_is_golden_on_the_clipped_tensor(spec, role):
    """quantize_calibrated(t, amax) = the golden quantizer of clip(t, +-amax) with amax appended
    (the tensor whose max |value| is amax): what an observer's frozen scale means."""
    dp = golden_parse(spec)
    rng = np.random.default_rng(2)
    t = rng.standard_normal((6, 11)) * 2
    for amax in (0.7, 1.5, 3.0, float(np.abs(t).max()), 1e-3):
        flat = np.clip(t.reshape(-1), -amax, amax)
        c, s = dp.quantize(np.append(flat, amax), role)
        got_c, got_s = quant.quantize_calibrated(dp, torch.from_numpy(t), amax, role)
        assert np.array_equal(got_c.numpy(), c[:-1].reshape(t.shape)) and float(got_s) == s
        assert float(quant.scale_of(dp, amax, role)) == s


def test_fp32_and_refusals():
    t = torch.tensor([1.5, -2.0])
    c, s = quant.quantize("fp32", t)
    assert c.dtype == torch.float32 and torch.equal(c, t) and float(s) == 1.0
    with pytest.raises(ValueError, match="datapath int8: cannot quantize a tensor holding NaN or Inf"):
        quant.quantize("int8", torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="role must be 'x' or 'w', got 'y'"):
        quant.quantize("int8", t, "y")
