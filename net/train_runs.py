"""The training experiments of `make experiments` (`ecomac nn train-experiments`): the config sets
(every mode with its ablations, the ALS-POTQ ablation, HADES), one experiment = every config over
seeds with FP32 paired by seed (same initialization and data order), summaries with the paired drops'
standard errors, and the merge of runs split over processes. The loop itself: net/train.py."""
from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch

from .train import train, to_float, training_energy, accuracy_pct

# (label, mode, datapath, options): mode "train" from scratch, "ptq" = the FP32 model of the same seed
# on the datapath without training, "finetune" = FP32 model + ft_epochs on the datapath (on FP32 itself:
# the control that tells what the extra epochs alone give).
APPROX_A = "approx:mul-drum,k=4"
APPROX_B = "approx:mul-mitchell,frac_bits=3"
EXPERIMENT_CONFIGS = (
    ("FP32", "train", None, {}),
    ("FP32 fine-tune (control)", "finetune", None, {}),
    ("int8 QAT", "train", "int8", {}),
    ("ALS-POTQ (PoT errors)", "train", "mfmac", {}),
    ("ALS-POTQ without WBC", "train", "mfmac", {"wbc": False}),
    ("ALS-POTQ without PRC", "train", "mfmac", {"prc": False}),
    ("PoT PTQ only", "ptq", "mfmac", {}),
    ("ALS-POTQ, errors exp_bits=4", "train", "mfmac", {"errors": "mfmac,exp_bits=4"}),
    ("ALS-POTQ, float errors", "train", "mfmac", {"errors": "fp32"}),
    ("ASM {1} 8-bit", "train", "asm,alphabet=1", {}),
    ("ASM {1,3} 8-bit", "train", "asm,alphabet=1/3", {}),
    ("ASM {1,3,5,7} 8-bit", "train", "asm,alphabet=1/3/5/7", {}),
    (f"{APPROX_A} PTQ", "ptq", APPROX_A, {}),
    (f"{APPROX_A} fine-tune STE", "finetune", APPROX_A, {"grad": "ste"}),
    (f"{APPROX_A} fine-tune table grad", "finetune", APPROX_A, {"grad": "table"}),
    (f"{APPROX_B} PTQ", "ptq", APPROX_B, {}),
    (f"{APPROX_B} fine-tune STE", "finetune", APPROX_B, {"grad": "ste"}),
    (f"{APPROX_B} fine-tune table grad", "finetune", APPROX_B, {"grad": "table"}),
)
EXTRA_4BIT = (
    ("ASM {1} 4-bit", "train", "asm,alphabet=1,w_bits=4", {}),
    ("ASM {1,3} 4-bit", "train", "asm,alphabet=1/3,w_bits=4", {}),
    ("ASM {1,3,5,7} 4-bit", "train", "asm,alphabet=1/3/5/7,w_bits=4", {}),
)


# the smaller set for the expensive model (LeNet on 28x28 MNIST): ablations and 4-bit rows run on the MLP
CORE_CONFIGS = tuple(c for c in EXPERIMENT_CONFIGS
                     if c[0] in ("FP32", "FP32 fine-tune (control)", "int8 QAT", "ALS-POTQ (PoT errors)", "PoT PTQ only", "ASM {1} 8-bit",
                                 "ASM {1,3} 8-bit", f"{APPROX_A} PTQ", f"{APPROX_A} fine-tune STE",
                                 f"{APPROX_A} fine-tune table grad"))
# the ALS-POTQ ablation (train_ARCH_DATA_potq.json, 5 seeds): the error quantizer - nearest (golden/pot.py),
# the former stochastic rounding (golden/pot.py's scale, may clip) and LUQ (golden/luq.py, unbiased) - each
# with and without WBC and PRC, and the split of the loss: PoT forward with float errors, float forward
# with PoT errors
_M = "mfmac"
_LUQ = {"err_rounding": "luq"}
_SR = {"err_rounding": "stochastic"}
POTQ_ABLATION = (
    ("FP32", "train", None, {}),
    ("PoT PTQ only", "ptq", _M, {}),
    ("errors nearest", "train", _M, {}),
    ("errors nearest, no WBC", "train", _M, {"wbc": False}),
    ("errors nearest, no PRC", "train", _M, {"prc": False}),
    ("errors stochastic", "train", _M, _SR),
    ("errors stochastic, no WBC", "train", _M, {**_SR, "wbc": False}),
    ("errors stochastic, no PRC", "train", _M, {**_SR, "prc": False}),
    ("errors LUQ", "train", _M, _LUQ),
    ("errors LUQ, no WBC", "train", _M, {**_LUQ, "wbc": False}),
    ("errors LUQ, no PRC", "train", _M, {**_LUQ, "prc": False}),
    ("errors LUQ, linear-nearest forward", "train", _M, {**_LUQ, "fwd_rounding": "linear"}),
    ("errors LUQ, linear-nearest forward, no PRC", "train", _M, {**_LUQ, "fwd_rounding": "linear", "prc": False}),
    ("split: PoT forward, float errors", "train", _M, {"errors": "fp32"}),
    ("split: float forward, LUQ errors", "train", _M, {**_LUQ, "fwd_rounding": "fp32"}),
    ("split: float forward, nearest errors", "train", _M, {"fwd_rounding": "fp32"}),
)
POTQ_CORE = tuple(c for c in POTQ_ABLATION if c[0] in ("FP32", "errors nearest", "errors LUQ"))
# HADES (train_ARCH_DATA_hades.json): FP32 pretrained for `epochs`, then every row fine-tuned `ft_epochs` from it
# with the same Adam (alphabet-aware on the ASM rows); "FP32" is the same fine-tune in float, the baseline of the
# drops (same epochs, optimizer, initialization and data order). HADES_GOAL rows run every seed, the others seeds
# 0..HADES_MORE_SEEDS[arch]-1 (net.experiments)
HADES_GOAL = ("ASM {1,3} 8-bit fine-tune", "ASM {1,3} 4-bit fine-tune")
HADES_CONFIGS = (
    ("FP32 pretrain", "train", None, {}),
    ("FP32", "finetune", None, {}),
    ("ASM {1,3} 8-bit fine-tune", "finetune", "asm,alphabet=1/3", {}),
    ("ASM {1,3} 4-bit fine-tune", "finetune", "asm,alphabet=1/3,w_bits=4", {}),
    ("ASM {1} 8-bit fine-tune", "finetune", "asm,alphabet=1", {}),
    ("ASM {1,3,5,7} 8-bit fine-tune", "finetune", "asm,alphabet=1/3/5/7", {}),
    ("ASM {1} 4-bit fine-tune", "finetune", "asm,alphabet=1,w_bits=4", {}),
    ("ASM {1,3,5,7} 4-bit fine-tune", "finetune", "asm,alphabet=1/3/5/7,w_bits=4", {}),
)
CONFIG_SETS = {"full": EXPERIMENT_CONFIGS + EXTRA_4BIT, "core": CORE_CONFIGS, "potq": POTQ_ABLATION,
               "potq-core": POTQ_CORE, "hades": HADES_CONFIGS}


def _ptq_model(fp32_model, datapath):
    from .datapath import parse
    dp = parse(datapath)
    if dp.kind == "mfmac":
        from .potq import ptq
        return ptq(fp32_model, dp)
    from .qat import ptq
    return ptq(fp32_model, dp)


def summarize_runs(runs: dict, configs) -> list[dict]:
    """Per config: accuracy mean/std over the seeds run, drop vs the same seed's FP32."""
    rows = []
    for label, mode, spec, opts in configs:
        acc, drop, secs = [], [], []
        for seed_runs in runs.values():
            r = seed_runs.get(label)
            if r is None:
                continue
            acc.append(r["test_accuracy_pct"])
            drop.append(seed_runs["FP32"]["test_accuracy_pct"] - r["test_accuracy_pct"])
            secs.append(r["seconds"])
        if not acc:
            continue
        first = next(s[label] for s in runs.values() if label in s)
        rows.append({"label": label, "mode": mode, "datapath": spec or "fp32", "options": opts,
                     "seeds": len(acc), "accuracy_pct_mean": float(np.mean(acc)),
                     "accuracy_pct_std": float(np.std(acc)), "drop_pp_mean": float(np.mean(drop)),
                     "drop_pp_std": float(np.std(drop)),
                     # the standard error of the mean paired drop (sample std / sqrt(seeds))
                     "drop_pp_se": float(np.std(drop, ddof=1) / np.sqrt(len(drop))) if len(drop) > 1 else float("nan"), "seconds_mean": float(np.mean(secs)),
                     **{k: first[k] for k in ("energy_per_step_pj", "energy_per_epoch_pj") if k in first}})
    return rows


def experiment(arch: str, data: str, *, seeds=(0, 1, 2), epochs: int = 15, ft_epochs: int = 2,
               lr: float = 2.0 ** -8, ft_lr: float = 2.0 ** -10, batch_size: int = 64, configs=EXPERIMENT_CONFIGS,
               train_limit: int | None = None, on_seed=None, progress: bool = False, log=None,
               seed_limits: dict | None = None) -> dict:
    """Train/evaluate every config for every seed: {arch, data, ..., runs: {seed: {label: result}},
    summary}. on_seed(result) is called after each seed (to write partial results). seed_limits
    {label: N}: that config runs on seeds 0..N-1 only (by value, so that a run split over processes
    with --seed runs what one run does; its summary row counts its seeds)."""
    from . import data as data_mod
    from . import models
    ds = data_mod.load(data, seed=0)
    if train_limit is not None and train_limit < len(ds.y_train):
        ds = type(ds)(ds.name, ds.x_train[:train_limit], ds.y_train[:train_limit], ds.x_test, ds.y_test,
                      ds.num_classes, ds.input_shape)
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    res = {"arch": arch, "data": data, "train_samples": len(ds.y_train), "test_samples": len(ds.y_test),
           "epochs": epochs, "ft_epochs": ft_epochs, "lr": lr, "ft_lr": ft_lr, "batch_size": batch_size,
           "optimizer": "adam", "seeds": [], "runs": {}}
    if seed_limits:
        res["seed_limits"] = dict(seed_limits)
    energy_cache = {}
    steps = (len(ds.y_train) + batch_size - 1) // batch_size
    for seed in seeds:
        seed_runs = {}
        fp32_model = None
        for label, mode, spec, opts in configs:
            if label in (seed_limits or {}) and seed >= seed_limits[label]:
                continue
            t0 = time.perf_counter()
            torch.manual_seed(seed)
            model = models.build(arch, ds.input_shape, ds.num_classes)
            hist = None
            if mode == "train":
                model, hist = train(model, ds, datapath=spec, epochs=epochs, seed=seed, lr=lr,
                                    batch_size=batch_size, progress=progress, **opts)
                if spec is None:
                    fp32_model = to_float(model)
                acc = hist["test_accuracy_pct"]
                tr = hist["train_accuracy_pct"]
            elif mode == "ptq":
                m = _ptq_model(fp32_model, spec)
                acc = accuracy_pct(m, ds.x_test, ds.y_test)
                tr = accuracy_pct(m, ds.x_train, ds.y_train)
            else:
                model, hist = train(model, ds, datapath=spec, epochs=ft_epochs, seed=seed, lr=ft_lr,
                                    batch_size=batch_size, init=fp32_model.state_dict(), progress=progress, **opts)
                acc, tr = hist["test_accuracy_pct"], hist["train_accuracy_pct"]
            r = {"test_accuracy_pct": acc, "train_accuracy_pct": tr, "seconds": time.perf_counter() - t0}
            if hist is not None:
                r["history"] = hist["epochs"]
                key = (spec, json.dumps({k: v for k, v in opts.items() if k not in ("wbc", "prc", "grad", "anneal")},
                                        sort_keys=True))
                if key not in energy_cache:
                    energy_cache[key] = training_energy(model, ds.input_shape, spec, opts.get("errors"),
                                                        batch_size, steps,
                                                        **{k: v for k, v in opts.items() if k != "errors"})
                r.update({k: energy_cache[key][k] for k in ("energy_per_step_pj", "energy_per_epoch_pj")})
            seed_runs[label] = r
            log(f"{arch}/{data} seed {seed}: {label}: test {acc:.2f}% ({r['seconds']:.1f} s)")
        res["runs"][str(seed)] = seed_runs
        res["seeds"].append(seed)
        res["summary"] = summarize_runs(res["runs"], configs)
        if on_seed is not None:
            on_seed(res)
    return res


def merge_experiments(parts: list[dict]) -> dict:
    """One experiment result from runs of the same (arch, data, settings) over disjoint seeds
    (e.g. split over processes): runs merged, seeds sorted, summary recomputed, wall times summed."""
    if not parts:
        raise ValueError("merge_experiments: nothing to merge")
    keys = ("arch", "data", "epochs", "ft_epochs", "lr", "ft_lr", "batch_size", "train_samples")
    first = parts[0]
    for p in parts[1:]:
        diff = [k for k in keys if p.get(k) != first.get(k)]
        if diff:
            raise ValueError(f"merge_experiments: results differ in {diff[0]} ({first.get(diff[0])} vs {p.get(diff[0])})")
    out = {k: v for k, v in first.items() if k not in ("runs", "seeds", "summary", "wall_s")}
    runs = {}
    for p in parts:
        dup = set(runs) & set(p["runs"])
        if dup:
            raise ValueError(f"merge_experiments: seed {sorted(dup)[0]} appears twice")
        runs.update(p["runs"])
    out["runs"] = {k: runs[k] for k in sorted(runs, key=int)}
    out["seeds"] = sorted(int(k) for k in runs)
    labels = list(dict.fromkeys(label for r in runs.values() for label in r))
    # the first config set holding every label (labels such as FP32 recur with other modes across sets)
    cfg = {c[0]: c for c in next((w for w in CONFIG_SETS.values() if set(labels) <= {c[0] for c in w}),
                                 [c for w in reversed(list(CONFIG_SETS.values())) for c in w])}
    out["summary"] = summarize_runs(out["runs"], [cfg[label] for label in labels if label in cfg])
    out["wall_s"] = sum(p.get("wall_s", 0.0) for p in parts)
    return out
