"""`make bench` figures for the ALWANN search: seconds per candidate evaluation (tune the
weights, convert, calibrate, run the search split on the bit-exact kernels) for the MLP on
digits and the LeNet on MNIST, as a ratio to the float32 model's accuracy run on the same
split measured in the same run; a few candidates, not a search. The weights are seeded, not
trained (the cost of an evaluation does not depend on them). When `make experiments` has
written build/experiments/alwann_*/front.json, its measured search time is quoted too."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

# a few mappings per model: every layer on one multiplier, and a mixed one
_SPECS = ("approx:mul-array", "approx:mul-drum,k=4", "approx:mul-trunc,k=8,correction=0",
          "approx:mul-bam,vbl=6,hbl=2", "approx:mul-mitchell,frac_bits=4")


def _bench_model(arch: str, data_name: str, repeats: int = 2) -> dict:
    from net import alwann, data, models
    from net.evaluate import accuracy, calibration_batch
    torch.manual_seed(0)
    torch.set_num_threads(1)            # one core, like one worker of the search
    ds = data.load(data_name, seed=0)
    model = models.build(arch, ds.input_shape, ds.num_classes).eval()
    _, search = data.split_search(ds, min(alwann.DEFAULTS["search_fraction"],
                                          alwann.DEFAULTS["search_max"] / len(ds.y_train)), seed=0)
    x, y = search.x_train, search.y_train
    calib = calibration_batch(ds, alwann.DEFAULTS["calib"], 0)
    layers = [L["name"] for L in alwann.model_layers(model, ds.input_shape)]
    specs = tuple(_SPECS)
    space = alwann.SearchSpace(tuple(layers), (1,) * len(layers), specs, (1.0,) * len(specs), len(layers), 0)
    ctx = alwann.make_context(model, space, "histogram", calib, {"search": (x, y)},
                              alwann.DEFAULTS["batch_size"])
    mappings = [tuple([c] * len(layers)) for c in range(len(specs))]
    mappings.append(tuple(i % len(specs) for i in range(len(layers))))
    for m in mappings:                   # tuning maps and kernels warmed (a worker's steady state)
        alwann.evaluate_mapping(ctx, m)
    t0 = time.perf_counter()
    for _ in range(repeats):
        for m in mappings:
            alwann.evaluate_mapping(ctx, m)
    per_eval = (time.perf_counter() - t0) / (repeats * len(mappings))
    t0 = time.perf_counter()
    for _ in range(repeats):
        accuracy(model, x, y, alwann.DEFAULTS["batch_size"])
    fp32 = (time.perf_counter() - t0) / repeats
    return {"model": f"{arch}/{data_name}", "search_samples": int(len(y)), "mappings": len(mappings),
            "seconds_per_evaluation": round(per_eval, 4), "fp32_accuracy_seconds": round(fp32, 4),
            "ratio_to_fp32": round(per_eval / fp32, 1),
            "default_search_estimate_s_on_2_workers": round(per_eval * alwann.DEFAULTS["pop"]
                                                            * alwann.DEFAULTS["gens"] / 2, 0)}


def run(outdir) -> dict:
    out = {"evaluation": [_bench_model("mlp", "digits"), _bench_model("lenet", "mnist")]}
    exp = Path(outdir).parent / "experiments"
    searches = {}
    for f in sorted(exp.glob("alwann_*/front.json")) if exp.is_dir() else []:
        try:
            s = json.loads(f.read_text())["search"]
            searches[f.parent.name] = {k: s.get(k) for k in ("seconds", "wall_s", "evaluated",
                                                               "seconds_per_evaluation", "engine")}
        except (OSError, ValueError, KeyError):
            continue
    out["searches"] = searches or "none yet (make experiments)"
    out["note"] = ("seconds per evaluation on one thread, search split of the default search; "
                   f"{np.__name__} {np.__version__}, torch {torch.__version__}")
    return out
