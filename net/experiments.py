"""The training experiments of `make experiments` (`ecomac nn train-experiments`): which model
trains on which data, for how many epochs, over which seeds and mode sets (net/train.py
CONFIG_SETS: FP32, int8 QAT, ALS-POTQ with/without WBC and PRC, PoT PTQ, ASM alphabets,
approximate multipliers PTQ / fine-tuned with STE and with the table gradient; the ALS-POTQ ablation;
HADES alphabet-aware fine-tuning), each one's result written as train_ARCH_DATA[_potq|_hades].json
(after every seed, so a stopped run keeps what it had).

Imports nothing heavy at module level (the CLI reads the names below to build its parser);
torch loads when a run starts.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from . import ARCHS

__all__ = ["TRAIN_EXPERIMENTS", "TRAIN_SEEDS", "POTQ_EXPERIMENTS", "HADES_EXPERIMENTS", "ALL_EXPERIMENTS", "train_experiments", "select_experiments",
           "EVAL_EXPERIMENTS", "MORE_EVAL_EXPERIMENTS", "EVAL_SEEDS", "select_eval_experiments",
           "standard_datapaths", "expand_datapaths", "eval_experiments", "json_default"]

# `make experiments` (`ecomac nn experiments`): (arch, data, FP32 epochs) — each shipped model on its
# data set (about 10 min on 2 idle cores); the other two pairs run when named (--only lenet:digits)
EVAL_EXPERIMENTS = (("mlp", "digits", 30), ("lenet", "mnist", 5),
                    # the seeds' architectures (docs/networks.md): BatchNorm folded, depthwise convs and
                    # attention products on the datapath like every other product
                    ("resnet", "mnist", 5), ("mobilenet", "mnist", 10), ("vit", "mnist", 20),
                    ("resnet", "digits", 20), ("mobilenet", "digits", 30), ("vit", "digits", 30))
MORE_EVAL_EXPERIMENTS = (("lenet", "digits", 20), ("mlp", "mnist", 10))
EVAL_SEEDS = (0, 1, 2)

# (arch, data, epochs, fine-tune epochs, batch, net.train_runs.CONFIG_SETS key, train-sample limit): the MLP on
# digits runs every mode and the ablations; LeNet on MNIST (about 100x the work per image on 2 shared
# cores) the core modes for one epoch
TRAIN_EXPERIMENTS = (("mlp", "digits", 15, 2, 64, "full", None), ("lenet", "mnist", 1, 1, 32, "core", None))
TRAIN_SEEDS = (0, 1, 2)
# the ALS-POTQ ablation (net.train_runs.POTQ_ABLATION; named ARCH:DATA:potq, written to train_ARCH_DATA_potq.json):
# 5 seeds by default (a 0.5 pp goal needs the standard error of >= 5 paired seeds); an architecture the model
# zoo ships (net.models) joins by a row here
POTQ_EXPERIMENTS = (("mlp", "digits", 15, 2, 64, "potq", None), ("lenet", "mnist", 2, 1, 32, "potq-core", None)) + tuple(
    row for row in (("resnet", "mnist", 2, 1, 64, "potq-core", None), ("vit", "mnist", 15, 1, 64, "potq-core", None))
    if row[0] in ARCHS)         # once the model zoo ships them (graph conversion: every product, attention too)
POTQ_SEEDS = (0, 1, 2, 3, 4)
# HADES (net.train_runs.HADES_CONFIGS; named ARCH:DATA:hades, written to train_ARCH_DATA_hades.json): FP32 pretrained
# for `epochs`, every alphabet fine-tuned `ft_epochs` from it beside the same FP32 fine-tune; the goal rows
# ({1,3}: net.train_runs.HADES_GOAL) on HADES_SEEDS, the other alphabets on seeds 0..HADES_MORE_SEEDS[arch]-1 (the
# epochs and seed counts fit about an hour and a half on a loaded 2-core machine: docs/training-results.md has
# the timings)
HADES_EXPERIMENTS = (("mobilenet", "mnist", 3, 1, 32, "hades", None), ("resnet", "mnist", 1, 1, 32, "hades", None))
HADES_SEEDS = {"mobilenet": tuple(range(10)), "resnet": tuple(range(5))}     # MobileNet {1,3} 4-bit needed 10
HADES_MORE_SEEDS = {"mobilenet": 3, "resnet": 2}
ALL_EXPERIMENTS = TRAIN_EXPERIMENTS + POTQ_EXPERIMENTS + HADES_EXPERIMENTS


def _suffix(which: str) -> str:
    return ":potq" if which.startswith("potq") else (":hades" if which == "hades" else "")


def _name(t) -> str:
    return f"{t[0]}:{t[1]}" + _suffix(t[5])


def _default_seeds(which: str, arch: str) -> tuple[int, ...]:
    """An experiment's own seeds: 3, 5 for the ALS-POTQ ablation, HADES_SEEDS[arch] for HADES."""
    suffix = _suffix(which)
    return POTQ_SEEDS if suffix == ":potq" else (HADES_SEEDS[arch] if suffix == ":hades" else TRAIN_SEEDS)


def _seed_limits(which: str, arch: str) -> dict | None:
    """{label: N} of the rows that run on seeds 0..N-1 only (HADES: the non-goal alphabets)."""
    if which != "hades":
        return None
    from .train_runs import HADES_CONFIGS, HADES_GOAL
    return {c[0]: HADES_MORE_SEEDS[arch] for c in HADES_CONFIGS if c[2] is not None and c[0] not in HADES_GOAL}


def select_experiments(only=None, seeds: int | None = None, seed=None) -> tuple[list[tuple], tuple[int, ...] | None]:
    """The experiments to run (`only`: "ARCH:DATA", "ARCH:DATA:potq" or "ARCH:DATA:hades" names, default
    all) and their seeds (`seed`: exactly these, else 0..seeds-1; None: each experiment's own, 3, or 5 for
    the ALS-POTQ ablation, 5-10 for HADES), validated with one-line errors before any work."""
    known = {_name(t): t for t in ALL_EXPERIMENTS}
    bad = [o for o in only or [] if o not in known]
    if bad:
        raise ValueError(f"--only {bad[0]!r}: not an experiment (experiments: {', '.join(known)})")
    if seeds is not None and not 1 <= seeds <= 10:
        raise ValueError(f"--seeds must be in 1..10, got {seeds}")
    bad = [s for s in seed or [] if not 0 <= s < 2**32]
    if bad:
        raise ValueError(f"--seed must be in 0..2^32-1, got {bad[0]}")
    todo = [known[o] for o in only] if only else list(ALL_EXPERIMENTS)
    return todo, tuple(seed) if seed else (tuple(range(seeds)) if seeds is not None else None)


def train_experiments(out, only=None, seeds: int | None = None, seed=None, command: str = "",
                      log=None) -> list[dict]:
    """Run the selected experiments (select_experiments) into folder `out`: each one's result
    (net.train_runs.experiment, plus wall_s and `command`, what made it) goes to
    out/train_ARCH_DATA.json after every seed; log(line) after each experiment (default: stderr).
    Returns the results."""
    from synth.cache import atomic_write

    from . import train_runs
    todo, seeds_run = select_experiments(only, seeds, seed)
    log = log or (lambda s: print(s, file=sys.stderr))
    out = Path(out)
    results = []
    for arch, name, epochs, ft, batch, which, limit in todo:
        t0 = time.perf_counter()
        path = out / f"train_{arch}_{name}{_suffix(which).replace(':', '_')}.json"
        seeds_exp = seeds_run or _default_seeds(which, arch)

        def write(res, path=path, t0=t0):
            res["wall_s"] = time.perf_counter() - t0
            res["command"] = command
            atomic_write(path, json.dumps(res, indent=2) + "\n")
        configs = train_runs.CONFIG_SETS[which]
        limits = _seed_limits(which, arch)
        extra = {"seed_limits": limits} if limits else {}
        res = train_runs.experiment(arch, name, seeds=seeds_exp, epochs=epochs, ft_epochs=ft, batch_size=batch,
                               configs=configs, train_limit=limit, on_seed=write, **extra)
        write(res)
        log(f"{arch} on {name}: {len(configs)} configs x {len(res['seeds'])} seeds in {res['wall_s']:.0f} s "
            f"-> {path}")
        results.append(res)
    return results


# ---- post-training evaluation over datapaths (`ecomac nn experiments`) ----------------------------
def select_eval_experiments(only=None) -> list[tuple]:
    """The (arch, data, epochs) evaluations to run (`only`: "ARCH:DATA" names, default the shipped
    pairs), validated with a one-line error before any work."""
    if not only:
        return list(EVAL_EXPERIMENTS)
    known = {f"{a}:{d}": (a, d, e) for a, d, e in EVAL_EXPERIMENTS + MORE_EVAL_EXPERIMENTS}
    bad = [o for o in only if o not in known]
    if bad:
        raise ValueError(f"--only {bad[0]!r}: not an experiment (experiments: {', '.join(known)})")
    return [known[o] for o in only]


def standard_datapaths(progress=None) -> list[str]:
    """The datapaths `--datapath all` stands for: the fixed ones and the best approximate points
    of the approximate-multiplier sweep (progress(note) after each swept point)."""
    from synth.approx_library import best_points, sweep
    from synth.multipliers import sweep_points

    from .evaluate import standard_specs
    return standard_specs(best_points(sweep(sweep_points(), workers=2, progress=progress)))


def expand_datapaths(given, progress=None) -> list[str]:
    """`given` datapath specs with "all" expanded (standard_datapaths), each once, in order."""
    out = []
    for s in given or []:
        for spec in (standard_datapaths(progress) if s.strip() == "all" else [s.strip()]):
            if spec not in out:
                out.append(spec)
    return out


def eval_experiments(out, todo, specs, command: str, seeds=EVAL_SEEDS, log=None) -> list[dict]:
    """Train each (arch, data, epochs) of `todo` in FP32 over `seeds` and evaluate every datapath of
    `specs` (net.evaluate.experiment); each result is written to OUT/nn_eval_ARCH_DATA.json as
    soon as it is done, with `command` (how to remake it) and its wall time; log(line) after each."""
    from synth.cache import atomic_write

    from .evaluate import experiment
    results = []
    for arch, name, epochs in todo:
        t0 = time.perf_counter()
        res = experiment(arch, name, tuple(seeds), epochs, specs)
        res["wall_s"] = time.perf_counter() - t0
        res["command"] = command
        path = Path(out) / f"nn_eval_{arch}_{name}.json"
        atomic_write(path, json.dumps(res, indent=2, default=json_default) + "\n")
        if log is not None:
            log(f"{arch} on {name}: {len(specs)} datapaths x {len(seeds)} seeds in {res['wall_s']:.0f} s -> {path}")
        results.append(res)
    return results


QUICK_EVAL = ("mlp", "digits", 10)      # the report's quick network run (`make`): one seed, few epochs
QUICK_SEEDS = (0,)


def quick_eval(specs, log=None) -> dict:
    """The report's quick run: QUICK_EVAL trained in FP32 with QUICK_SEEDS, every spec of `specs`
    evaluated post-training (net.evaluate.experiment), with its wall time."""
    from .evaluate import experiment
    arch, name, epochs = QUICK_EVAL
    t0 = time.perf_counter()
    res = experiment(arch, name, QUICK_SEEDS, epochs, specs, progress=False, log=log)
    res["wall_s"] = time.perf_counter() - t0
    return res


def json_default(o):
    """json.dumps(default=): NumPy scalars as Python numbers, sets and tuples as lists, else str."""
    import numpy as np
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)
