"""The evaluation of one mapping: weights tuned to each layer's multiplier, the model converted and
calibrated as `ecomac nn eval` does, accuracy and loss on a split. `EvalContext` holds everything
a worker needs (sent once)."""
from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import tuning as _tuning
from .candidates import EXACT_SPEC
from .space import SearchSpace

TUNINGS = _tuning.TUNINGS


def _digest(*arrays_or_text) -> str:
    h = hashlib.sha256()
    for a in arrays_or_text:
        if isinstance(a, np.ndarray):
            h.update(str(a.dtype).encode() + str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        else:
            h.update(str(a).encode())
        h.update(b"\0")
    return h.hexdigest()


def model_digest(model: nn.Module) -> str:
    sd = model.state_dict()
    return _digest(type(model).__name__, *[x for k in sorted(sd) for x in (k, sd[k].detach().cpu().numpy())])


@dataclass
class EvalContext:
    """Everything an evaluation needs; pickled once per worker."""
    key: str                       # fingerprint of model + library + data + tuning (worker caches)
    model: nn.Module
    layers: tuple
    specs: tuple
    tuning: str
    hists: dict                    # layer -> 129 counts of |input code| (exact network, calibration batch)
    calib: np.ndarray              # the calibration batch (net.evaluate.calibration_batch, as `nn eval`)
    splits: dict                   # "search" / "test" -> (x, y)
    batch_size: int = 500


def tuned_model(model: nn.Module, layer_specs: dict, tuning: str, hists: dict, cache: dict | None = None) -> nn.Module:
    """A copy of `model` whose mapped layers' float weights are tuned to their multipliers
    (net.tuning.tuned_float_weights; tuning 'none' = a plain copy). cache: (layer, spec, tuning) ->
    tuned weights, reused across mappings."""
    m = copy.deepcopy(model)
    if tuning == "none":
        return m
    mods = dict(m.named_modules())
    for name, spec in layer_specs.items():
        k = (name, spec, tuning)
        w = None if cache is None else cache.get(k)
        if w is None:
            w = torch.from_numpy(_tuning.tuned_float_weights(
                spec, mods[name].weight.detach().cpu().numpy(), tuning, hists.get(name)))
            if cache is not None:
                cache[k] = w
        with torch.no_grad():
            mods[name].weight.copy_(w)
    return m


def mapped_model(model: nn.Module, layer_specs: dict, tuning: str, hists: dict, calib: np.ndarray,
                 cache: dict | None = None) -> nn.Module:
    """The evaluated network: the tuned model converted by net.layers.convert with the per-layer specs
    and calibrated on `calib` (exactly what `ecomac nn eval --model TUNED --mapping M` runs)."""
    from ..layers import convert
    return convert(tuned_model(model, layer_specs, tuning, hists, cache), layer_specs, calib=calib).eval()


_WORKER_STATE: dict = {}       # per process: ctx.key -> {"weights": tuned-weight cache}


def evaluate_mapping(ctx: EvalContext, mapping: tuple, split: str = "search", tuning: str | None = None) -> tuple:
    """(top-1 accuracy %, mean cross-entropy) of the mapped, tuned model on ctx.splits[split]; the
    accuracy is computed as net.evaluate.accuracy does (100 * correct / n)."""
    from torch.nn import functional as F
    tuning = ctx.tuning if tuning is None else tuning
    state = _WORKER_STATE.setdefault(ctx.key, {"weights": {}})
    specs = {n: ctx.specs[c] for n, c in zip(ctx.layers, mapping)}
    m = mapped_model(ctx.model, specs, tuning, ctx.hists, ctx.calib, state["weights"])
    x, y = ctx.splits[split]
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(y), ctx.batch_size):
            out = m(torch.from_numpy(np.ascontiguousarray(x[i:i + ctx.batch_size], np.float32)))
            yb = torch.from_numpy(np.asarray(y[i:i + ctx.batch_size], np.int64))
            correct += int((out.argmax(-1) == yb).sum())
            loss += float(F.cross_entropy(out.double(), yb, reduction="sum"))
    return 100.0 * correct / len(y), loss / len(y)


def activation_histograms(model: nn.Module, layers, calib: np.ndarray) -> dict:
    """|input code| counts (0..128) of every layer in the exact 8-bit network (mul-array on every
    layer) over the calibration batch."""
    from ..layers import emulated_layers
    exact = mapped_model(model, {n: EXACT_SPEC for n in layers}, "none", {}, calib)
    hists: dict = {}
    with torch.no_grad():
        for i in range(0, len(calib), 256):
            exact(torch.from_numpy(np.ascontiguousarray(calib[i:i + 256], np.float32)))
            for n, layer in emulated_layers(exact).items():
                h = _tuning.activation_histogram(layer.last_x_codes)
                hists[n] = h if i == 0 else hists[n] + h
    return hists


def make_context(model: nn.Module, space: SearchSpace, tuning: str, calib: np.ndarray, splits: dict,
                 batch_size: int = 500) -> EvalContext:
    """Measure the layers' activation histograms (exact network) on `calib`; bundle what workers need."""
    if tuning not in TUNINGS:
        raise ValueError(f"unknown tuning {tuning!r} (tunings: {', '.join(TUNINGS)})")
    model = model.eval()
    hists = activation_histograms(model, space.layers, calib)
    key = _digest(model_digest(model), *space.specs, tuning, calib, *[hists[n] for n in space.layers],
                  *[a for s in sorted(splits) for a in splits[s]])
    return EvalContext(key, model, space.layers, space.specs, tuning, hists, calib, splits, batch_size)
