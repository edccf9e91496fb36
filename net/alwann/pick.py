"""pick: the hardware (tile designs) and the tuned model a user takes away from a front point."""
from __future__ import annotations

import io
import math

import numpy as np
import torch
from torch import nn

from ..datapath import parse
from .context import model_digest, tuned_model


def pick_point(doc: dict, max_drop: float) -> dict:
    """The lowest-energy front point whose test drop is at most max_drop pp (one line if none)."""
    if isinstance(max_drop, bool) or not isinstance(max_drop, (int, float)) or not math.isfinite(max_drop) \
            or max_drop < 0:
        raise ValueError(f"--max-drop must be a non-negative number of percentage points, got {max_drop!r}")
    if not doc["front"]:
        raise ValueError("the front is empty")
    ok = [r for r in doc["front"] if r["drop_pp"] <= max_drop + 1e-9]
    if not ok:
        least = min(r["drop_pp"] for r in doc["front"])
        raise ValueError(f"no front point drops at most {max_drop:g} pp (the smallest drop is {least:.3g} pp)")
    return min(ok, key=lambda r: (r["relative_multiplier_energy"], r["drop_pp"]))


def tile_designs(point: dict) -> list[dict]:
    """[{spec, design, params}] of the point's tiles: approx-mac around each approximate family;
    a lut circuit keeps its own Verilog (design None)."""
    out = []
    for spec in point["tiles"]:
        dp = parse(spec)
        if dp.kind == "approx":
            design, params = dp.mac_design
            out.append({"spec": spec, "design": design, "params": params})
        else:
            out.append({"spec": spec, "design": None, "params": {"file": dp.params["file"], "top": dp.params["top"]}})
    return out


def load_setup_model(doc: dict):
    """The search's model (from the path front.json names), checked against its digest."""
    from ..models import load
    setup = doc["setup"]
    model, meta = load(setup["model"])
    if model_digest(model) != setup["model_digest"]:
        raise ValueError(f"model {setup['model']} has changed since the search (its weights differ); "
                         f"search again or restore the model file")
    return model, meta


def tuned_point_model(model: nn.Module, doc: dict, point: dict) -> nn.Module:
    """The model with the point's weights tuned (what `nn eval --mapping` runs bit for bit)."""
    setup = doc["setup"]
    hists = {n: np.asarray(h, np.int64) for n, h in setup.get("histograms", {}).items()}
    return tuned_model(model, point["mapping"], setup["tuning"], hists)


def save_model(model: nn.Module, path, meta: dict) -> None:
    """net.models.save for the shipped architectures, else the whole module (torch.save), atomically."""
    from ..models import ARCHS, save
    try:
        save(model, path, meta)
        return
    except ValueError:
        if getattr(model, "input_shape", None) is not None and type(model).__name__.lower() in ARCHS:
            raise
    from synth.cache import atomic_write
    buf = io.BytesIO()
    torch.save(model, buf)
    atomic_write(path, buf.getvalue())
