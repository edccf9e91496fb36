"""Accuracy on real data beside energy per inference, per datapath (what `ecomac nn eval` prints).

    accuracy(model, x, y, batch_size=256, progress=False) -> top-1 accuracy in percent
    check_fit(model, dataset, meta=None)                  data shape / label range against the model
    prepare(model, ds, meta=None)                         the canonical model (net.graph.lift, BatchNorm
                                                          folded), checked against the data
    model_net(model, input_shape)                         every product as a synth.network Net
    inference_energy(net, spec_or_mapping)                per-inference energy on one datapath, or a
                                                          per-layer {layer: spec} assignment (sum of layers)
    standard_specs(best)                                  the specs of `--datapath all`
    evaluate(model, dataset, specs, mapping=None, ...)    one row per datapath (ROW_KEYS)

Method (post-training quantization, no retraining): the float model is lifted (net.graph: every
matrix product a Linear / Conv / Matmul module, BatchNorm folded into its convolution) and converted
with net.graph.convert (weights per output channel, activation scales calibrated as the max-abs over a
calibration batch of `calib_size` training samples drawn by np.random.default_rng(seed)), then run
on the dataset's test split. Energy per inference is synth.network.net_energy of every product of
the model (net.graph.census on one sample, batch 1; a product no datapath covers, or one a mapping
leaves out, is priced at fp32 and counted in `float_macs`): arithmetic (the datapath's synthesized MAC
per MAC) plus memory traffic (SRAM + DRAM) in the datapath's operand format — the same model as
`ecomac energy net`. Layers without products (activations, pooling) are not charged.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np
import torch
from torch import nn

from . import graph, importer, loader
from .datapath import parse
from .device import model_device

__all__ = ["ROW_KEYS", "ALL_FIXED", "accuracy", "check_fit", "model_net", "inference_energy", "standard_specs",
           "evaluate", "load_mapping", "calibration_batch"]

ROW_KEYS = ("datapath", "accuracy_pct", "drop_pp", "macs", "energy_pj", "arithmetic_pj", "memory_pj",
            "saving_vs_fp32_pct", "saving_vs_int8_pct", "float_macs", "energy_arch", "energy_batch")
# `--datapath all`: these, then each approximate family's lowest-energy point within MRE 2% and 5%
ALL_FIXED = ("fp32", "int8", "mfmac", "asm,alphabet=1", "asm,alphabet=1/3", "asm,alphabet=1/3/5/7")


def _bar(total, desc, progress):
    from tqdm import tqdm
    # a bar only on a terminal; logs get the one summary line per datapath instead
    return tqdm(total=total, desc=desc, disable=not (progress and sys.stderr.isatty()), file=sys.stderr,
                leave=False, unit="img")


def accuracy(model: nn.Module, x, y, batch_size: int = 256, progress: bool = False, desc: str = "eval") -> float:
    """Top-1 accuracy (percent) of `model` in eval mode on float x, integer y, in batches."""
    x = np.asarray(x, np.float32)
    y = np.asarray(y)
    if len(y) == 0:
        raise ValueError("accuracy: empty data set")
    was = getattr(model, "training", False)
    model.eval()
    dev = model_device(model) if isinstance(model, nn.Module) else torch.device("cpu")
    correct = 0
    try:
        with torch.no_grad(), _bar(len(y), desc, progress) as bar:
            for i in range(0, len(y), batch_size):
                out = model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size])).to(dev))
                correct += int((out.argmax(-1).cpu().numpy() == y[i:i + batch_size]).sum())
                bar.update(len(y[i:i + batch_size]))
    finally:
        model.train(was)
    return 100.0 * correct / len(y)


def _out_classes(model, sample) -> int:
    dev = model_device(model) if isinstance(model, nn.Module) else torch.device("cpu")
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(sample, np.float32)).to(dev))
    return int(out.shape[-1])


def check_fit(model: nn.Module, ds, meta: dict | None = None) -> int:
    """Raise one line unless `ds` fits `model` (input shape, label range); return the class count."""
    from .models import input_shape_of
    want = input_shape_of(model, meta)
    if want is not None and tuple(want) != tuple(ds.input_shape):
        raise ValueError(f"data {ds.name} has samples of shape {tuple(ds.input_shape)}, the model takes "
                         f"{tuple(want)}")
    try:
        n_out = _out_classes(model, ds.x_test[:1])
    except (RuntimeError, ValueError, IndexError, TypeError) as e:
        raise ValueError(f"data {ds.name} (samples of shape {tuple(ds.input_shape)}) does not fit the model "
                         f"({str(e).splitlines()[0][:120]})") from None
    top = int(max(ds.y_train.max(initial=0), ds.y_test.max(initial=0)))
    if top >= n_out:
        raise ValueError(f"data {ds.name}: labels out of range: label {top} but the model has {n_out} classes "
                         f"(labels 0..{n_out - 1})")
    return n_out


def prepare(model: nn.Module, ds, meta: dict | None = None) -> nn.Module:
    """The canonical model (net.loader.canonical: lifted, BatchNorm folded) after the data's sample shape
    is checked against the one the model declares; then check_fit on it."""
    from .models import input_shape_of
    want = input_shape_of(model, meta)
    if want is not None and tuple(want) != tuple(ds.input_shape):
        raise ValueError(f"data {ds.name} has samples of shape {tuple(ds.input_shape)}, the model takes "
                         f"{tuple(want)}")
    canon = loader.canonical(model, ds.x_test[:1])
    check_fit(canon, ds, meta)
    return canon


def model_net(model: nn.Module, input_shape, name: str = "model"):
    """synth.network.Net of every product of `model` traced on one sample of `input_shape`."""
    from synth.network import parse_net
    imp = importer.from_torch(model, (1, *tuple(input_shape)), name)
    return parse_net(imp.net, name)


def _energy_one(net, spec: str, cache: dict, arch: str = "stream", batch: int | None = None) -> dict:
    from synth.zigzag import network_energy
    if spec not in cache:
        cache[spec] = network_energy(net, spec, arch, batch)
    return cache[spec]


def inference_energy(net, assignment, cache: dict | None = None, arch: str = "stream",
                     batch: int | None = None) -> dict:
    """{macs, energy_pj, arithmetic_pj, memory_pj} of one inference: `assignment` is one spec for every
    layer, or {layer name: spec} (layers not named run on fp32), summed per layer; on architecture
    `arch` at batch `batch` (synth.zigzag.network_energy; default: the stream model)."""
    cache = {} if cache is None else cache
    if isinstance(assignment, dict):
        names = [layer.name for layer in net.layers]
        per = {}
        for spec in set(assignment.values()) | {"fp32"}:
            per[spec] = {r["name"]: r for r in _energy_one(net, spec, cache, arch, batch)["layers"]}
        rows = [per[assignment.get(n.split("#")[0], "fp32")][n] for n in names]
    else:
        rows = _energy_one(net, assignment, cache, arch, batch)["layers"]
    first = next(iter(cache.values()))
    return {"macs": sum(r["macs"] for r in rows), "float_macs": sum(r["macs"] for r in rows if r["datapath"] == "fp32"),
            "arch": first["arch"], "batch": first["batch"],
            **{k: math.fsum(r[k] for r in rows) for k in ("energy_pj", "arithmetic_pj", "memory_pj")}}


def standard_specs(best: list[dict]) -> list[str]:
    """`--datapath all`: ALL_FIXED, then the approx spec of every item of
    synth.approx_library.best_points (each family's lowest-energy point within each MRE limit),
    duplicates dropped (a point may be best for both limits)."""
    out = list(ALL_FIXED)
    for item in best:
        row = item.get("row")
        if row is None:
            continue
        params = ",".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in row["params"].items()
                          if k != "bits")
        spec = f"approx:{row['design']}" + (f",{params}" if params else "")
        if spec not in out:
            out.append(spec)
    return out


def load_mapping(obj, model: nn.Module, source: str = "mapping") -> dict:
    """Validate a {layer name: spec} mapping against the products of the (canonical) model."""
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"{source}: must be a JSON object {{layer name: datapath spec}} with at least one layer")
    targets = list(graph.products(model))
    for n, spec in obj.items():
        if n not in targets:
            shown = ", ".join(targets[:12]) + (f", ... ({len(targets)} in all)" if len(targets) > 12 else "")
            raise ValueError(f"{source}: unknown layer {n!r} (products: {shown})")
        if not isinstance(spec, str):
            raise ValueError(f"{source}: layer {n!r}: the datapath must be a spec string, got {spec!r}")
        try:
            parse(spec)
        except ValueError as e:
            raise ValueError(f"{source}: layer {n!r}: {e}") from None
    return dict(obj)


def calibration_batch(ds, size: int = 512, seed: int = 0) -> np.ndarray:
    """`size` training samples drawn without replacement by np.random.default_rng(seed), in order."""
    n = len(ds.y_train)
    idx = np.sort(np.random.default_rng(seed).choice(n, min(n, size), replace=False))
    return ds.x_train[idx]


def evaluate(model: nn.Module, ds, specs=(), mapping: dict | None = None, *, meta: dict | None = None,
             calib_size: int = 512, seed: int = 0, batch_size: int = 256, progress: bool = True,
             mapping_label: str = "mapping", log=None, device=None, energy_arch: str = "stream",
             energy_batch: int | None = None) -> list[dict]:
    """One row per datapath in `specs` (and one for `mapping`, a {layer: spec} assignment): ROW_KEYS
    plus eval_s (seconds to convert + run the test split). The FP32 accuracy and the fp32/int8
    energies are always measured (the drop and the savings are relative to them); energies on
    `energy_arch` at batch `energy_batch` (synth.zigzag.network_energy). device: where the models
    run (net.device; None: where `model` is)."""
    specs = list(specs)
    if not specs and mapping is None:
        raise ValueError("evaluate: give at least one datapath or a mapping")
    for s in specs:
        parse(s)            # every spec's one-line error before any work
    model = prepare(model, ds, meta)
    if mapping is not None:
        mapping = load_mapping(mapping, model, mapping_label)
    net = model_net(model, ds.input_shape, getattr(ds, "name", "model"))
    if device is not None and isinstance(model, nn.Module) and not isinstance(model, torch.jit.ScriptModule):
        model = model.to(device)
    calib = calibration_batch(ds, calib_size, seed)
    log = log or (lambda s: print(s, file=sys.stderr) if progress else None)
    ecache: dict = {}
    from synth.zigzag import check_arch
    check_arch(energy_arch, energy_batch)            # one line before any work
    base = {b: inference_energy(net, b, ecache, energy_arch, energy_batch) for b in ("fp32", "int8")}
    t0 = time.perf_counter()
    fp32_acc = accuracy(model, ds.x_test, ds.y_test, batch_size, progress, "fp32")
    fp32_s = time.perf_counter() - t0
    jobs = [(s, s) for s in specs] + ([(mapping_label, mapping)] if mapping is not None else [])
    rows = []
    for label, assignment in jobs:
        t0 = time.perf_counter()
        if label == "fp32" or (not isinstance(assignment, dict) and parse(assignment).is_float):
            acc, secs = fp32_acc, fp32_s
        else:
            q = graph.convert(model, assignment, calib=calib)
            acc = accuracy(q, ds.x_test, ds.y_test, batch_size, progress, label[:24])
            secs = time.perf_counter() - t0
        e = inference_energy(net, assignment, ecache, energy_arch, energy_batch)
        rows.append({"datapath": label, "accuracy_pct": acc, "drop_pp": fp32_acc - acc, "macs": e["macs"],
                     "energy_pj": e["energy_pj"], "arithmetic_pj": e["arithmetic_pj"], "memory_pj": e["memory_pj"],
                     "saving_vs_fp32_pct": 100.0 * (1 - e["energy_pj"] / base["fp32"]["energy_pj"]),
                     "saving_vs_int8_pct": 100.0 * (1 - e["energy_pj"] / base["int8"]["energy_pj"]),
                     "float_macs": e["float_macs"] if assignment != "fp32" else e["macs"],
                     "energy_arch": e["arch"], "energy_batch": e["batch"], "eval_s": secs})
        log(f"{label}: accuracy {acc:.2f}% ({fp32_acc - acc:+.2f} pp vs fp32), {e['energy_pj'] / 1e3:.1f} nJ "
            f"per inference, {secs:.1f} s")
    return rows


# ---- experiments (`make experiments`): FP32 training over seeds, then post-training quantization -------------
SUMMARY_KEYS = ("accuracy_pct", "drop_pp")


def summarize(runs: list[list[dict]]) -> list[dict]:
    """Rows of several seeds -> one row per datapath: accuracy/drop mean and sample std (ddof 1),
    the energy fields (identical across seeds: the layer list does not change) and mean eval_s."""
    out = []
    for i, first in enumerate(runs[0]):
        same = [rows[i] for rows in runs]
        if any(r["datapath"] != first["datapath"] for r in same):
            raise ValueError("summarize: the seeds' rows list different datapaths")
        row = {k: first[k] for k in ROW_KEYS if k not in SUMMARY_KEYS and k in first}   # older rows lack some keys
        for k in SUMMARY_KEYS:
            v = np.array([r[k] for r in same], np.float64)
            row[f"{k}_mean"] = float(v.mean())
            row[f"{k}_std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        row["eval_s_mean"] = float(np.mean([r["eval_s"] for r in same]))
        out.append(row)
    return out


def experiment(arch: str, data: str, seeds, epochs: int, specs, *, progress: bool = True, log=None) -> dict:
    """Train `arch` on `data` in FP32 once per seed (net.train.train; the data split is seed 0's for
    every run, the seed sets the initialization, sample order and calibration batch), evaluate every
    spec on each trained model (post-training quantization) and summarize over the seeds."""
    from . import data as data_mod
    from . import models
    from .train import train
    log = log or (lambda s: print(s, file=sys.stderr) if progress else None)
    ds = data_mod.load(data, seed=0)
    runs, trained = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        model = models.build(arch, ds.input_shape, ds.num_classes)
        t0 = time.perf_counter()
        model, hist = train(model, ds, epochs=epochs, seed=seed, progress=progress and sys.stderr.isatty())
        train_s = time.perf_counter() - t0
        log(f"{arch} on {data}, seed {seed}: FP32 test accuracy {hist['test_accuracy_pct']:.2f}% "
            f"after {epochs} epochs ({train_s:.0f} s)")
        t0 = time.perf_counter()
        rows = evaluate(model, ds, specs, seed=seed, progress=progress, log=log)
        trained.append({"seed": seed, "train_s": train_s, "eval_s": time.perf_counter() - t0,
                        "fp32_test_accuracy_pct": hist["test_accuracy_pct"]})
        runs.append(rows)
    canon = loader.canonical(model, ds.x_test[:1])
    return {"arch": arch, "data": data, "seeds": list(seeds), "epochs": epochs, "datapaths": list(specs),
            "macs_by_kind": graph.census(canon, ds.input_shape).macs_by_kind(),
            "test_samples": int(len(ds.y_test)), "train_samples": int(len(ds.y_train)),
            "runs": [{**t, "rows": r} for t, r in zip(trained, runs)], "summary": summarize(runs)}
