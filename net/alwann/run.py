"""The whole setup of a run (what `ecomac alwann search` calls first): load and check the
candidates, the model and the data, build the search space and the evaluation context."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from .. import ALWANN_DEFAULTS as DEFAULTS
from .candidates import EXACT_SPEC, candidates
from .context import TUNINGS, EvalContext, make_context, model_digest
from .space import SearchSpace, model_layers


@dataclass
class Setup:
    model: nn.Module
    meta: dict
    layers: list
    cands: list
    space: SearchSpace
    ctx: EvalContext
    info: dict               # what front.json's "setup" records


def prepare(model_path, data, *, tiles=None, tuning: str = DEFAULTS["tuning"], extra=(), library=None, sweep=True,
            search_fraction: float = DEFAULTS["search_fraction"], search_max: int = DEFAULTS["search_max"],
            calib_size: int = DEFAULTS["calib"], batch_size: int = DEFAULTS["batch_size"], log=None) -> Setup:
    """Load and check everything a search needs (one-line errors before any slow work)."""
    from .. import data as data_mod
    from ..evaluate import calibration_batch, check_fit
    from ..models import input_shape_of, load
    if tuning not in TUNINGS:
        raise ValueError(f"unknown tuning {tuning!r} (tunings: {', '.join(TUNINGS)})")
    if isinstance(search_fraction, bool) or not isinstance(search_fraction, (int, float)) \
            or not 0 < search_fraction < 1:
        raise ValueError(f"search fraction must be between 0 and 1 (exclusive), got {search_fraction!r}")
    for name, v in (("search_max", search_max), ("calib_size", calib_size), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    cands = candidates(extra, library, sweep)    # bad multipliers: one line before the model loads
    model, meta = load(model_path)
    if isinstance(model, torch.jit.ScriptModule):
        raise ValueError(f"model {model_path}: TorchScript cannot be converted layer by layer; give a checkpoint "
                         f"(ecomac nn train) or a whole pickled nn.Module")
    ds = data_mod.load(data, seed=0)              # the split `ecomac nn eval` uses
    check_fit(model, ds, meta)
    shape = tuple(input_shape_of(model, meta) or ds.input_shape)
    layers = model_layers(model, shape)
    L = len(layers)
    tiles = L if tiles is None else tiles
    if isinstance(tiles, bool) or not isinstance(tiles, int) or not 1 <= tiles <= L:
        raise ValueError(f"--tiles must be in 1..{L} (the model has {L} Linear/Conv2d layers: "
                         f"{', '.join(x['name'] for x in layers)}), got {tiles}")
    n_train = len(ds.y_train)
    frac = min(search_fraction, search_max / n_train)
    _, search_ds = data_mod.split_search(ds, frac, seed=0)
    calib = calibration_batch(ds, calib_size, 0)
    specs = tuple(c.spec for c in cands)
    space = SearchSpace(tuple(x["name"] for x in layers), tuple(x["macs"] for x in layers), specs,
                        tuple(c.energy_pj for c in cands), tiles, specs.index(EXACT_SPEC))
    ctx = make_context(model, space, tuning, calib,
                       {"search": (search_ds.x_train, search_ds.y_train), "test": (ds.x_test, ds.y_test)},
                       batch_size)
    info = {"model": os.path.abspath(os.fspath(model_path)), "model_digest": model_digest(model), "data": str(data),
            "tuning": tuning, "tiles": tiles, "search_samples": len(search_ds.y_train), "test_samples": len(ds.y_test),
            "search_fraction": frac, "calib_size": len(calib), "candidates": len(cands), "layers": L,
            "histograms": {n: ctx.hists[n].tolist() for n in space.layers},
            "reproduce": "ecomac alwann pick DIR --max-drop D -o HW; ecomac nn eval --model HW/tuned_model.pt "
                         f"--data {data} --mapping HW/mapping.json --calib-size {len(calib)}"}
    return Setup(model, meta, layers, cands, space, ctx, info)
