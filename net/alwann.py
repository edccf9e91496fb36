"""ALWANN: layer-wise assignment of approximate multipliers by NSGA-II, with weight tuning.

An accelerator has T tiles, each built from one approximate 8x8 multiplier (inside the
sign-magnitude approx-mac); every Linear/Conv2d layer runs on one tile. The search picks the
tiles' multipliers and the layer-to-tile map that trade accuracy for multiplier energy.

Candidates (`candidates`): every point of `ecomac approx sweep` (synth.multipliers.sweep_points,
33 points at N = 8) plus any `approx:` or `lut:FILE.v` spec the user names; the exact mul-array is
always one. Each candidate's energy E is its multiplier's activity energy per multiply
(synth.multipliers.characterize: `energy_pj`, the sweep's figure; a `lut:` circuit is priced by
characterizing its Verilog). Candidates are ordered by rising E so that neighbouring gene values
are similar multipliers (crossover and mutation act on integers).

Chromosome (ALWANN's): T multiplier genes (candidate index per tile) then one tile gene per layer
(tile index). `SearchSpace.decode` turns it into the per-layer candidate tuple (the mapping);
different chromosomes with the same mapping share one evaluation (the cache is keyed by mapping).

Objectives (both minimized): 100 - top-1 accuracy (%) on a *search* split carved out of the
training split (net.data.split_search; the test split is only used for the final table), and
the relative multiplier energy  sum_l MACs_l * E(c_l) / sum_l MACs_l * E(mul-array).

Evaluation of a mapping (`evaluate_mapping`): each mapped layer's float weights are tuned to its
multiplier (net/tuning.py: none, uniform, or weighted by the histogram of the layer's input codes
measured on the calibration batch through the exact network; the tuned codes times the layer's
per-channel scales are ordinary float weights that quantize back to exactly those codes), then
the model is converted by net.layers.convert with the per-layer specs, calibrated on the same
batch `ecomac nn eval` uses (net.evaluate.calibration_batch of the full training split, 512
samples, seed 0), and its accuracy measured by net.evaluate.accuracy. A search point is thus
reproduced bit for bit by `ecomac nn eval --model TUNED.pt --mapping MAPPING.json` (`pick`
writes both). Products run on the bit-exact integer kernels and the float parts are per-sample,
so an evaluation is deterministic: the same mapping gives the same accuracy in any process, on
any number of threads, on a Dask worker or here.

Engines (`Engine`): in this process (workers=1), a pool of worker processes (spawned; each loads
the context once), or a Dask cluster (`scheduler=ADDRESS`, dask.distributed.Client; the context
is scattered to every worker once). Results come back in submission order, so the search is the
same whatever ran it.

NSGA-II (pymoo 0.6): integer genes with SBX crossover and polynomial mutation rounded back to
integers (pymoo's RoundingRepair), duplicate elimination, seeded. The initial population holds
every candidate applied to all layers (as many as fit, spread over the energy order) and random
chromosomes for the rest. After every generation a checkpoint (the pickled algorithm with its
random generator, the evaluation cache, the generation, fingerprints of the model, the candidate
library, the data and the options) is written atomically; `resume` continues from it and gives
the same front as an uninterrupted run.

The front: the points no other evaluated point beats on both search objectives.
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pymoo.config import Config as _PymooConfig
from pymoo.core.problem import Problem
from torch import nn

from . import ALWANN_DEFAULTS, ALWANN_OBJECTIVES
from . import tuning as _tuning
from .datapath import parse

__all__ = ["Candidate", "candidates", "sweep_specs", "user_candidate", "load_library", "model_layers",
           "SearchSpace", "EvalContext", "make_context", "tuned_model", "mapped_model", "evaluate_mapping",
           "activation_histograms", "Engine", "AlwannProblem", "search", "SearchResult", "front_of", "fingerprints",
           "initial_population", "OBJECTIVES", "objective_value", "finish", "goal_summary", "front_table", "tuning_table", "write_front", "read_front",
           "plot_front", "pick_point", "tile_designs", "load_setup_model", "tuned_point_model", "save_model",
           "Setup", "prepare", "verify_checkpoint", "connect", "check_scheduler", "DEFAULTS", "TUNINGS", "CHECKPOINT", "EXACT_SPEC", "short_spec", "model_digest"]

_PymooConfig.warnings["not_compiled"] = False      # pymoo's pure-Python paths are all this search needs
TUNINGS = _tuning.TUNINGS
EXACT_SPEC = "approx:mul-array"
CHECKPOINT = "checkpoint.pkl"
DEFAULTS = ALWANN_DEFAULTS
_FORMAT = "ecomac-alwann-mapping"
_CKPT_VERSION = 1


# ---- candidates -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    spec: str                 # datapath spec (approx:FAMILY,... or lut:FILE.v[,top=NAME])
    label: str                # short name for tables and plots
    energy_pj: float          # the multiplier's energy per multiply (activity model)
    design: str | None        # approx family (the approx-mac's multiplier) or None for a lut circuit
    params: dict = field(default_factory=dict, hash=False, compare=False)   # family parameters (bits excluded)
    mre_pct: float | None = None

    def to_json(self) -> dict:
        return {"spec": self.spec, "label": self.label, "energy_pj": self.energy_pj, "design": self.design,
                "params": self.params, "mre_pct": self.mre_pct}


def _family_spec(design: str, params: dict) -> str:
    items = [f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in params.items() if k != "bits"]
    return ",".join([f"approx:{design}"] + items)


def _label(design: str, params: dict) -> str:
    items = " ".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in params.items() if k != "bits")
    return f"{design.removeprefix('mul-')}{(' ' + items) if items else ''}"


def sweep_specs() -> list[str]:
    """The `ecomac approx sweep` points (N = 8) as approx: datapath specs."""
    from synth.multipliers import sweep_points
    return [_family_spec(d, p) for d, p in sweep_points(bits=8)]


def _approx_candidate(dp) -> Candidate:
    from synth.multipliers import characterize
    fam = dp.params["family"]
    own = dp.family_params
    row = characterize(fam, {"bits": 8, **own})
    return Candidate(_family_spec(fam, own), _label(fam, own), float(row["energy_pj"]), fam,
                     {k: (int(v) if isinstance(v, bool) else v) for k, v in own.items()}, float(row["mre_pct"]))


def _circuit_candidate(spec: str, dp) -> Candidate:
    path, top = dp.params["file"], dp.params.get("top")
    try:
        from synth.characterize import characterize_verilog
    except ImportError:
        raise ValueError(f"multiplier {spec!r}: pricing a Verilog circuit needs synth/characterize.py, "
                         f"which this tree does not have") from None
    row = characterize_verilog([path], top=top)
    if "energy_pj" not in row:
        raise ValueError(f"multiplier {spec!r}: its characterization gives no energy_pj")
    label = f"lut:{Path(path).name}" + (f":{top}" if top else "")
    mre = row.get("mre_pct")
    return Candidate(dp.spec, label, float(row["energy_pj"]), None, {}, None if mre is None else float(mre))


def user_candidate(spec) -> Candidate:
    """A candidate from a user's spec: approx:FAMILY[,NAME=VALUE...] or lut:FILE.v[,top=NAME]
    (a bare table has no circuit, so no energy: refused). acc_bits stays the MAC's default."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"multiplier spec must be a non-empty string like approx:mul-drum,k=4 or lut:FILE.v, "
                         f"got {spec!r}")
    dp = parse(spec)        # its one-line errors (unknown family, missing file, ...)
    if dp.kind not in ("approx", "lut"):
        raise ValueError(f"multiplier {spec!r} is not an approximate multiplier (use approx:FAMILY[,NAME=VALUE...] "
                         f"or lut:FILE.v[,top=NAME])")
    if dp.acc_bits != 24:
        raise ValueError(f"multiplier {spec!r}: acc_bits is the tiles' (24), not a multiplier's choice")
    if dp.kind == "approx":
        return _approx_candidate(dp)
    if Path(dp.params["file"]).suffix not in (".v", ".sv"):
        raise ValueError(f"multiplier {spec!r}: a bare table has no circuit to price; give the multiplier's "
                         f"Verilog (lut:FILE.v[,top=NAME])")
    return _circuit_candidate(spec, dp)


def load_library(path) -> list[str]:
    """A library file: a JSON list of multiplier specs (strings). One-line errors."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"library {path} does not exist" if not p.exists() else f"library {path} is not a file")
    try:
        obj = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"library {path}: not valid JSON ({getattr(e, 'msg', 'not text')})") from None
    if not isinstance(obj, list) or not obj:
        raise ValueError(f"library {path}: must be a non-empty JSON list of multiplier specs "
                         f"(e.g. [\"approx:mul-drum,k=4\", \"lut:mult.v,top=mul8\"])")
    for i, s in enumerate(obj):
        if not isinstance(s, str) or not s.strip():
            raise ValueError(f"library {path}: entry {i} must be a spec string (approx:FAMILY[,NAME=VALUE...] or "
                             f"lut:FILE.v[,top=NAME]), got {json.dumps(s)[:60]}")
    return [s.strip() for s in obj]


def candidates(extra=(), library=None, sweep: bool = True) -> list[Candidate]:
    """The sweep's points (sweep=True) + `extra` specs + a library file's specs, deduplicated, by
    rising energy (ties by spec). The exact mul-array is always among them."""
    specs = sweep_specs() if sweep else []
    user = list(extra or ())
    if library is not None:
        user += load_library(library)
    out, seen = [], set()
    for s in specs + [EXACT_SPEC]:
        c = _approx_candidate(parse(s))
        if c.spec not in seen:
            seen.add(c.spec)
            out.append(c)
    for s in user:
        try:
            c = user_candidate(s)
        except ValueError as e:
            msg = str(e)
            raise ValueError(msg if s in msg else f"multiplier {s!r}: {msg}") from None
        if c.spec not in seen:
            seen.add(c.spec)
            out.append(c)
    return sorted(out, key=lambda c: (c.energy_pj, c.spec))


# ---- the model's layers -----------------------------------------------------------------------
def model_layers(model: nn.Module, input_shape) -> list[dict]:
    """[{name, kind, macs (per sample), net_layer (synth.network layer dict)}] of every Linear/Conv2d,
    in execution order (found with forward hooks on one zero sample)."""
    found = []
    hooks = []

    def hook(name):
        def f(mod, inp, out):
            x = inp[0]
            if isinstance(mod, nn.Linear):
                tokens = int(np.prod(x.shape[1:-1])) if x.dim() > 2 else 1
                found.append({"name": name, "kind": "linear", "macs": mod.in_features * mod.out_features * tokens,
                              "net_layer": {"kind": "linear", "name": name, "in": mod.in_features,
                                            "out": mod.out_features, "tokens": tokens}})
            else:
                kh, kw = mod.kernel_size
                ho, wo = out.shape[-2:]
                found.append({"name": name, "kind": "conv",
                              "macs": mod.out_channels * mod.in_channels * kh * kw * int(ho) * int(wo),
                              "net_layer": {"kind": "conv", "name": name, "in_ch": mod.in_channels,
                                            "out_ch": mod.out_channels, "kernel": [kh, kw], "H": int(x.shape[-2]),
                                            "W": int(x.shape[-1]), "stride": int(mod.stride[0]),
                                            "padding": int(mod.padding[0])}})
        return f

    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            hooks.append(m.register_forward_hook(hook(name)))
    try:
        was = model.training
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), dtype=torch.float32))
        model.train(was)
    finally:
        for h in hooks:
            h.remove()
    names = [f["name"] for f in found]
    if len(set(names)) != len(names):
        raise ValueError("the model runs a Linear/Conv2d layer more than once per inference; ALWANN maps each "
                         "layer to one tile, so every layer must run once")
    if not found:
        raise ValueError("the model has no Linear or Conv2d layer to map onto multipliers")
    return found


# ---- the search space -------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchSpace:
    layers: tuple          # layer names, execution order
    macs: tuple            # MACs per sample per layer
    specs: tuple           # candidate specs (energy order)
    energies: tuple        # candidate multiplier energies (pJ)
    tiles: int
    exact: int             # index of mul-array among the candidates

    @property
    def n_var(self) -> int:
        return self.tiles + len(self.layers)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        xl = np.zeros(self.n_var, int)
        xu = np.array([len(self.specs) - 1] * self.tiles + [self.tiles - 1] * len(self.layers), int)
        return xl, xu

    def decode(self, x) -> tuple:
        """Chromosome -> mapping: the candidate index of every layer (multiplier gene of its tile)."""
        x = np.asarray(x).astype(np.int64).ravel()
        if x.shape != (self.n_var,):
            raise ValueError(f"a chromosome has {self.n_var} genes ({self.tiles} tiles + {len(self.layers)} layers), "
                             f"got {x.shape[0]}")
        xl, xu = self.bounds()
        if np.any(x < xl) or np.any(x > xu):
            raise ValueError("chromosome gene out of range")
        mult, tile = x[:self.tiles], x[self.tiles:]
        return tuple(int(mult[t]) for t in tile)

    def uniform(self, c: int) -> np.ndarray:
        """A chromosome putting candidate c on every tile (every layer on candidate c)."""
        return np.array([c] * self.tiles + [i % self.tiles for i in range(len(self.layers))], int)

    def relative_energy(self, mapping) -> float:
        num = math.fsum(m * self.energies[c] for m, c in zip(self.macs, mapping))
        den = math.fsum(m * self.energies[self.exact] for m in self.macs)
        return num / den

    def layer_specs(self, mapping) -> dict:
        return {n: self.specs[c] for n, c in zip(self.layers, mapping)}


# ---- evaluation context (what every worker needs, sent once) ----------------------------------
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
    from .layers import convert
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
    from .layers import emulated_layers
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


# ---- engines ----------------------------------------------------------------------------------
def _init_worker(ctx: EvalContext) -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # Ctrl-C reaches the parent; it stops the pool
    torch.set_num_threads(1)                          # one core per worker (results do not depend on it)
    _WORKER_STATE["ctx"] = ctx


def _pool_job(job) -> tuple:
    mapping, split, tuning = job
    return evaluate_mapping(_WORKER_STATE["ctx"], mapping, split, tuning)


def _dask_job(ctx: EvalContext, mapping, split, tuning) -> tuple:
    return evaluate_mapping(ctx, tuple(mapping), split, tuning)


def connect(address: str, timeout: float = 5.0):
    """A dask.distributed Client of the scheduler at `address`; one line if it cannot be reached
    within `timeout` seconds."""
    import logging
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("--scheduler needs the dask.distributed package (pip install distributed)") from None
    if not isinstance(address, str) or not address.strip():
        raise ValueError("scheduler address must be non-empty, e.g. tcp://host:8786")
    quiet = [logging.getLogger(n) for n in ("distributed", "distributed.client", "distributed.comm")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.CRITICAL)
    try:
        return Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise ValueError(f"cannot reach the Dask scheduler at {address!r} within {timeout:g} s ({first})") from None
    finally:
        for q, lv in zip(quiet, levels):
            q.setLevel(lv)


def check_scheduler(address: str, timeout: float = 5.0) -> None:
    """Fail early (one line) when the scheduler cannot be reached; before any slow work."""
    connect(address, timeout).close()


class Engine:
    """Runs evaluations (mapping, split, tuning) -> (accuracy %, mean loss): here (workers=1), in a pool of
    worker processes, or on a Dask cluster (scheduler address). Use as a context manager."""

    def __init__(self, ctx: EvalContext, workers: int = 2, scheduler: str | None = None,
                 connect_timeout: float = 5.0):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.ctx, self.workers, self.scheduler = ctx, workers, scheduler
        self._pool = self._client = self._ctx_future = None
        if scheduler is not None:
            self._connect(scheduler, connect_timeout)
        elif workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(ctx,))

    @property
    def description(self) -> str:
        if self._client is not None:
            return f"Dask scheduler {self.scheduler} ({len(self._client.scheduler_info().get('workers', {}))} workers)"
        return f"{self.workers} worker processes" if self._pool else "this process"

    def _connect(self, address: str, timeout: float) -> None:
        self._client = connect(address, timeout)
        self._ctx_future = self._client.scatter(self.ctx, broadcast=True, hash=False)

    def run(self, jobs: list) -> list[tuple]:
        """jobs: [(mapping, split, tuning or None)] -> (accuracy %, mean loss) each, in order."""
        jobs = [(tuple(int(c) for c in m), s, t) for m, s, t in jobs]
        if not jobs:
            return []
        if self._client is not None:
            futs = [self._client.submit(_dask_job, self._ctx_future, m, s, t, pure=False) for m, s, t in jobs]
            return [(float(a), float(b)) for a, b in self._client.gather(futs)]
        if self._pool is not None:
            return [(float(a), float(b)) for a, b in self._pool.map(_pool_job, jobs)]
        return [evaluate_mapping(self.ctx, m, s, t) for m, s, t in jobs]

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            procs = list((getattr(self._pool, "_processes", None) or {}).values())
            self._pool.shutdown(wait=not cancel, cancel_futures=True)
            if cancel:
                for p in procs:
                    try:
                        p.terminate()
                        p.join(3)
                        if p.is_alive():
                            p.kill()
                    except (OSError, ValueError, AttributeError, AssertionError):
                        pass
            self._pool = None
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self.close(cancel=exc_type is not None)
        return False


# ---- the pymoo problem ------------------------------------------------------------------------
def _pymoo():
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    return NSGA2, SBX, PM, RoundingRepair


class AlwannProblem(Problem):
    """Two objectives per chromosome: the search objective (100 - search accuracy %, or the mean
    cross-entropy), relative multiplier energy. Evaluations go through
    `self.evaluate_objective(mappings) -> values` (set by `search`; not pickled with a checkpoint)."""

    def __init__(self, space: SearchSpace):
        xl, xu = space.bounds()
        super().__init__(n_var=space.n_var, n_obj=2, xl=xl, xu=xu, vtype=int)
        self.space = space
        self.evaluate_objective = None

    def _evaluate(self, X, out, *args, **kwargs):
        maps = [self.space.decode(x) for x in np.round(X).astype(int)]
        out["F"] = np.column_stack([np.asarray(self.evaluate_objective(maps), float),
                                    [self.space.relative_energy(m) for m in maps]])

    def __getstate__(self):
        d = dict(self.__dict__)
        d["evaluate_objective"] = None
        return d


# ---- the search -------------------------------------------------------------------------------
OBJECTIVES = ALWANN_OBJECTIVES


def objective_value(v: tuple, objective: str) -> float:
    """The minimized search objective of an evaluation (accuracy %, mean loss)."""
    return 100.0 - v[0] if objective == "accuracy" else v[1]


def _point(space, m, v, objective) -> dict:
    return {"mapping": m, "accuracy_search_pct": v[0], "loss_search": v[1], "objective": objective_value(v, objective),
            "relative_multiplier_energy": space.relative_energy(m)}


@dataclass
class SearchResult:
    space: SearchSpace
    evaluated: dict                # mapping -> (accuracy %, mean loss) on the search split
    generations: int
    history: list                  # per generation: {gen, evaluated, front_size, seconds}
    seconds: float                 # this session's search time
    evaluations: int               # evaluations run in this session (cache misses)
    objective: str = "accuracy"

    def points(self) -> list[dict]:
        return [_point(self.space, m, self.evaluated[m], self.objective) for m in sorted(self.evaluated)]

    def front(self) -> list[dict]:
        return front_of(self.points())


def front_of(points: list[dict]) -> list[dict]:
    """Non-dominated points (min objective, min energy), one per objective pair, by rising energy;
    among equal pairs the smallest mapping. The objective is p["objective"] (default 100 - the
    search accuracy)."""
    def obj(p):
        return p.get("objective", 100.0 - p["accuracy_search_pct"])
    pts = sorted(points, key=lambda p: (p["relative_multiplier_energy"], obj(p), tuple(p["mapping"])))
    out, best = [], math.inf
    for p in pts:
        if obj(p) < best:
            out.append(p)
            best = obj(p)
    return out


def fingerprints(ctx: EvalContext, space: SearchSpace, options: dict) -> dict:
    """What a checkpoint must match to be resumed: model, multiplier library, data, options."""
    return {"model": model_digest(ctx.model),
            "library": _digest(*space.specs, *[repr(e) for e in space.energies],
                               *[parse(s).table() for s in space.specs]),
            "data": _digest(ctx.calib, *[a for s in sorted(ctx.splits) for a in ctx.splits[s]]),
            "options": json.dumps({k: options[k] for k in sorted(options)}, sort_keys=True)}


def initial_population(space: SearchSpace, pop: int, seed: int) -> np.ndarray:
    """Every candidate on all layers (as many as fit, spread over the energy order), then distinct
    random chromosomes (np.random.default_rng(seed))."""
    n = len(space.specs)
    k = min(pop, n)
    picks = sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))
    rows = [space.uniform(c) for c in picks]
    rng = np.random.default_rng(seed)
    xl, xu = space.bounds()
    seen = {tuple(r) for r in rows}
    tries = 0
    while len(rows) < pop and tries < 100 * pop:
        r = rng.integers(xl, xu + 1)
        tries += 1
        if tuple(r) not in seen:
            seen.add(tuple(r))
            rows.append(r)
    return np.array(rows, int)


def _write_checkpoint(path: Path, payload: dict) -> None:
    from synth.cache import atomic_write
    atomic_write(path, pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))


_WHAT = {"model": "model", "library": "multiplier library", "data": "data set", "options": "set of options"}


def _read_checkpoint(path: Path, fps: dict) -> dict:
    if not path.is_file():
        raise ValueError(f"--resume: no checkpoint {path} (run the search without --resume first)")
    try:
        with open(path, "rb") as f:
            payload = pickle.load(f)
        ok = isinstance(payload, dict) and payload.get("format") == "ecomac-alwann-checkpoint"
    except Exception:      # noqa: BLE001 - any unreadable file is one line, whatever pickle raised
        ok = False
    if not ok:
        raise ValueError(f"--resume: {path} is not an ALWANN search checkpoint")
    if payload.get("version") != _CKPT_VERSION:
        raise ValueError(f"--resume: {path} was written by another version of the search "
                         f"(checkpoint version {payload.get('version')}, this one reads {_CKPT_VERSION})")
    for what in ("model", "library", "data", "options"):
        if payload["fingerprints"].get(what) != fps[what]:
            extra = ""
            if what == "options":
                old = json.loads(payload["fingerprints"]["options"])
                new = json.loads(fps["options"])
                extra = " (" + ", ".join(f"{k} {old.get(k)} there, {new.get(k)} here" for k in sorted(new)
                                         if old.get(k) != new.get(k)) + ")"
            raise ValueError(f"--resume: checkpoint {path} is from another {_WHAT[what]}{extra}; resume with "
                             f"the same model, multipliers, data and options, or search afresh without --resume")
    return payload


def _run_options(ctx: EvalContext, space: SearchSpace, pop: int, seed: int, options: dict | None) -> dict:
    return {"objective": "accuracy", **(options or {}), "pop": pop, "seed": seed, "tiles": space.tiles,
            "tuning": ctx.tuning}


def verify_checkpoint(path, ctx: EvalContext, space: SearchSpace, *, pop: int, seed: int,
                      options: dict | None = None) -> int:
    """One line unless `path` is a checkpoint of this very search (model, multipliers, data and
    options); returns its generation."""
    return int(_read_checkpoint(Path(path), fingerprints(ctx, space, _run_options(ctx, space, pop, seed, options)))
               ["generation"])


def search(ctx: EvalContext, space: SearchSpace, engine: Engine, *, pop: int = 50, gens: int = 30, seed: int = 0,
           options: dict | None = None, checkpoint: str | Path | None = None, resume: bool = False,
           on_generation=None, stop_after: int | None = None) -> SearchResult:
    """NSGA-II over `space` (see the module doc), `gens` generations (the initial population is the
    first). `options`: further settings that make a run (fingerprinted into the checkpoint with pop,
    seed, tiles and tuning; not gens, so a finished search can be extended). `on_generation(info)`
    after every generation: {gen, gens, evaluated, front, seconds}. `stop_after`: end the session
    after that many generations (the checkpoint stays; for tests of resume)."""
    for name, v, lo in (("pop", pop, 4), ("gens", gens, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    NSGA2, SBX, PM, RoundingRepair = _pymoo()
    run_options = _run_options(ctx, space, pop, seed, options)
    objective = run_options["objective"]
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r} (objectives: {', '.join(OBJECTIVES)})")
    fps = fingerprints(ctx, space, run_options)
    cache: dict = {}
    history: list = []
    ran = 0
    t0 = time.monotonic()
    ck = Path(checkpoint) if checkpoint is not None else None
    if resume:
        if ck is None:
            raise ValueError("--resume needs the checkpoint of the search to continue")
        payload = _read_checkpoint(ck, fps)
        algo, cache, history = payload["algorithm"], payload["cache"], payload["history"]
        from pymoo.termination.max_gen import MaximumGenerationTermination
        algo.termination = MaximumGenerationTermination(gens)
    else:
        algo = NSGA2(pop_size=pop, sampling=initial_population(space, pop, seed),
                     crossover=SBX(prob=0.9, eta=3.0, vtype=float, repair=RoundingRepair()),
                     mutation=PM(eta=3.0, vtype=float, repair=RoundingRepair()),
                     eliminate_duplicates=True)
        algo.setup(AlwannProblem(space), termination=("n_gen", gens), seed=seed, verbose=False)

    def evaluate_objective(maps):
        nonlocal ran
        todo = sorted({m for m in maps if m not in cache})
        for m, v in zip(todo, engine.run([(m, "search", None) for m in todo])):
            cache[m] = v
        ran += len(todo)
        return [objective_value(cache[m], objective) for m in maps]

    algo.problem.evaluate_objective = evaluate_objective
    steps = 0
    try:
        while algo.has_next() and (stop_after is None or steps < stop_after):
            algo.next()
            steps += 1
            pts = [_point(space, m, v, objective) for m, v in cache.items()]
            fr = front_of(pts)
            gen = int(algo.n_gen - 1)
            history.append({"gen": gen, "evaluated": len(cache), "front_size": len(fr),
                            "seconds": round(time.monotonic() - t0, 3)})
            if ck is not None:
                algo.problem.evaluate_objective = None
                _write_checkpoint(ck, {"format": "ecomac-alwann-checkpoint", "version": _CKPT_VERSION,
                                       "fingerprints": fps, "generation": gen, "algorithm": algo,
                                       "cache": cache, "history": history})
                algo.problem.evaluate_objective = evaluate_objective
            if on_generation is not None:
                on_generation({"gen": gen, "gens": gens, "evaluated": len(cache), "front": fr,
                               "seconds": time.monotonic() - t0})
    finally:
        algo.problem.evaluate_objective = None
    return SearchResult(space, dict(cache), int(algo.n_gen - 1), history, time.monotonic() - t0, ran, objective)


# ---- finishing: test accuracy, energies, tunings side by side ---------------------------------
def per_inference_energy(layers: list[dict], layer_specs: dict, memo: dict) -> dict:
    """synth.network energy of one inference with each layer on its spec: {energy_pj, mac_pj}
    (None and a one-line `energy_note` when a spec cannot be priced)."""
    from synth.network import net_energy, parse_net
    net = parse_net({"name": "model", "layers": [dict(L["net_layer"]) for L in layers]})
    total = mac = 0.0
    for i, L in enumerate(layers):
        spec = layer_specs[L["name"]]
        if spec not in memo:
            try:
                memo[spec] = net_energy(net, spec)
            except (ValueError, TypeError) as e:
                memo[spec] = str(e).splitlines()[0] if str(e) else type(e).__name__
        r = memo[spec]
        if isinstance(r, str):
            return {"energy_pj": None, "mac_pj": None, "energy_note": r}
        total += r["layers"][i]["energy_pj"]
        mac += r["layers"][i]["arithmetic_pj"]
    return {"energy_pj": total, "mac_pj": mac}


def finish(result: SearchResult, engine: Engine, layers: list[dict], cands: list[Candidate], *,
           energy: bool = True, compare_tunings: bool = True, log=None) -> dict:
    """The front with test accuracies (with compare_tunings: every front point under each tuning),
    every candidate alone on all layers as reference, per-inference energies: front.json's body."""
    space = result.space
    front = result.front()
    tun = engine.ctx.tuning
    uniform = [tuple([c] * len(space.layers)) for c in range(len(space.specs))]
    exact = tuple([space.exact] * len(space.layers))
    tunings = list(TUNINGS) if compare_tunings else [tun]
    need_search = [m for m in list(dict.fromkeys(uniform + [exact])) if m not in result.evaluated]
    front_maps = [p["mapping"] for p in front]
    jobs = [(m, "search", None) for m in need_search]
    jobs += [(m, "test", tun) for m in dict.fromkeys([exact] + front_maps + uniform)]
    jobs += [(m, "test", t) for m in front_maps for t in tunings if t != tun]
    if log:
        log(f"evaluating {len(jobs)} test and reference points")
    vals = dict(zip([(m, s, t) for m, s, t in jobs], engine.run(jobs)))
    acc_search = {m: v[0] for m, v in result.evaluated.items()}
    acc_search.update({m: vals[(m, "search", None)][0] for m in need_search})
    loss_search = {m: v[1] for m, v in result.evaluated.items()}
    loss_search.update({m: vals[(m, "search", None)][1] for m in need_search})
    vals = {k: v[0] for k, v in vals.items()}            # accuracies from here on
    base_test = vals[(exact, "test", tun)]
    memo: dict = {}

    def row(m, label=None, with_energy=False):
        acc_t = vals[(m, "test", tun)]
        r = {"accuracy_search_pct": acc_search[m], "loss_search": loss_search[m], "accuracy_test_pct": acc_t,
             "drop_pp": base_test - acc_t,
             "relative_multiplier_energy": space.relative_energy(m),
             "multiplier_energy_saved_pct": 100.0 * (1 - space.relative_energy(m)),
             "mapping": space.layer_specs(m), "tiles": list(dict.fromkeys(space.specs[c] for c in m))}
        if label:
            r["label"] = label
        if compare_tunings and label is None:
            r["accuracy_test_pct_by_tuning"] = {t: vals[(m, "test", t)] for t in tunings}
        if with_energy:
            r.update(per_inference_energy(layers, space.layer_specs(m), memo))
        return r

    if log and energy:
        log("pricing the front's inferences (synth.network; cached after the first run)")
    front_rows = [row(m, with_energy=energy) for m in front_maps]
    refs = [row(m, cands[m[0]].label) for m in uniform]
    base = {"mapping": EXACT_SPEC, "accuracy_test_pct": base_test, "accuracy_search_pct": acc_search[exact]}
    if energy:
        base.update(per_inference_energy(layers, space.layer_specs(exact), memo))
    return {"baseline": base, "front": front_rows, "references": refs,
            "evaluated": [{"accuracy_search_pct": p["accuracy_search_pct"], "loss_search": p["loss_search"],
                           "relative_multiplier_energy": p["relative_multiplier_energy"]} for p in result.points()],
            "layers": [{k: L[k] for k in ("name", "kind", "macs")} for L in layers],
            "candidates": [c.to_json() for c in cands],
            "search": {"generations": result.generations, "evaluated": len(result.evaluated),
                       "evaluations_this_run": result.evaluations, "seconds": round(result.seconds, 2),
                       "seconds_per_evaluation": (round(result.seconds / result.evaluations, 4)
                                                  if result.evaluations else None),
                       "history": result.history, "tiles": space.tiles, "tuning": tun,
                       "objective": result.objective}}


def goal_summary(doc: dict, max_drop: float = 0.6) -> dict:
    """The largest multiplier-energy saving within max_drop pp test drop (front and best single
    multiplier), and how many front points beat every single multiplier at least as accurate on
    test (strictly lower relative energy)."""
    ok = [r for r in doc["front"] if r["drop_pp"] <= max_drop + 1e-9]
    best = max(ok, key=lambda r: r["multiplier_energy_saved_pct"]) if ok else None
    refs = doc["references"]
    beats = []
    for r in doc["front"]:
        rivals = [u["relative_multiplier_energy"] for u in refs if u["accuracy_test_pct"] >= r["accuracy_test_pct"]]
        beats.append(not rivals or r["relative_multiplier_energy"] < min(rivals))
    ok_refs = [u for u in refs if u["drop_pp"] <= max_drop + 1e-9]
    best_ref = max(ok_refs, key=lambda u: u["multiplier_energy_saved_pct"]) if ok_refs else None
    return {"max_drop_pp": max_drop,
            "best_saved_pct": None if best is None else best["multiplier_energy_saved_pct"],
            "best_drop_pp": None if best is None else best["drop_pp"],
            "best_uniform_saved_pct": None if best_ref is None else best_ref["multiplier_energy_saved_pct"],
            "best_uniform": None if best_ref is None else best_ref["label"],
            "front_points_beating_uniform": sum(beats), "front_points": len(beats),
            "strictly_better_everywhere": bool(beats) and all(beats)}


def short_spec(spec: str) -> str:
    dp = parse(spec)
    if dp.kind == "approx":
        return _label(dp.params["family"], dp.family_params).replace(" ", ",")
    return Path(dp.params["file"]).name


def front_table(doc: dict) -> tuple[list[str], list[list]]:
    """(headers, rows) of the front: energy, accuracies, drop, per-inference energy, each layer's multiplier."""
    names = [L["name"] for L in doc["layers"]]
    head = ["rel. mult. E", "saved %", "search acc %", "search loss", "test acc %", "drop pp", "MAC nJ",
            "nJ/inference"] + names
    rows = []
    for r in doc["front"]:
        e = r.get("energy_pj")
        rows.append([round(r["relative_multiplier_energy"], 4), round(r["multiplier_energy_saved_pct"], 1),
                     round(r["accuracy_search_pct"], 2), round(r.get("loss_search", float("nan")), 4),
                     round(r["accuracy_test_pct"], 2), round(r["drop_pp"], 2),
                     None if r.get("mac_pj") is None else round(r["mac_pj"] / 1e3, 3),
                     None if e is None else round(e / 1e3, 1)] + [short_spec(r["mapping"][n]) for n in names])
    return head, rows


def tuning_table(doc: dict) -> tuple[list[str], list[list]]:
    """(headers, rows): every front point's test accuracy with no / uniform / histogram tuning."""
    head = ["rel. mult. E"] + [f"test acc % {t}" for t in TUNINGS] + ["multipliers"]
    rows = []
    for r in doc["front"]:
        by = r.get("accuracy_test_pct_by_tuning") or {}
        rows.append([round(r["relative_multiplier_energy"], 4)]
                    + [None if t not in by else round(by[t], 2) for t in TUNINGS]
                    + [" ".join(short_spec(s) for s in r["tiles"])])
    return head, rows


_CSV = ("accuracy_search_pct", "accuracy_test_pct", "drop_pp", "relative_multiplier_energy",
        "multiplier_energy_saved_pct", "energy_pj", "mac_pj")


def write_front(doc: dict, outdir) -> dict:
    """front.json (everything) and front.csv (one row per front point; mapping as layer=spec;...)."""
    import csv
    from synth.cache import atomic_write
    out = Path(outdir)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(_CSV) + ["tiles", "mapping"])
    for r in doc["front"]:
        w.writerow([r.get(k) for k in _CSV] + [len(r["tiles"]), ";".join(f"{k}={v}" for k, v in r["mapping"].items())])
    paths = {"json": out / "front.json", "csv": out / "front.csv"}
    atomic_write(paths["json"], json.dumps(doc, indent=2) + "\n")
    atomic_write(paths["csv"], buf.getvalue())
    return paths


def read_front(folder) -> dict:
    p = Path(folder) / "front.json"
    if not p.is_file():
        raise ValueError(f"{folder}: no front.json (run `ecomac alwann search -o {folder}` first)")
    try:
        doc = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{p}: not valid JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("front"), list) or not isinstance(doc.get("setup"), dict):
        raise ValueError(f"{p}: not an ALWANN front (no front list and setup)")
    return doc


def plot_front(doc: dict, title: str = ""):
    """Matplotlib figure: accuracy drop vs relative multiplier energy; every evaluated point (search
    split), each single multiplier on all layers (test), the front (test)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    base_s = doc["baseline"]["accuracy_search_pct"]
    ev = doc["evaluated"]
    ax.scatter([p["relative_multiplier_energy"] for p in ev], [base_s - p["accuracy_search_pct"] for p in ev],
               s=8, c="0.75", label="every evaluated mapping (search split)", zorder=1)
    refs = doc["references"]
    ax.scatter([r["relative_multiplier_energy"] for r in refs], [r["drop_pp"] for r in refs], marker="x", s=36,
               c="tab:red", label="one multiplier on all layers (test)", zorder=2)
    fr = doc["front"]
    ax.plot([r["relative_multiplier_energy"] for r in fr], [r["drop_pp"] for r in fr], "o-", c="tab:blue", ms=5,
            lw=1.2, label="ALWANN front (test)", zorder=3)
    ax.axhline(0.6, c="0.4", ls=":", lw=1)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("relative multiplier energy (1 = mul-array on every layer)")
    ax.set_ylabel("accuracy drop (pp vs the exact 8-bit network)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    s = doc["search"]
    ax.set_title(title or f"ALWANN: {s['tiles']} tiles, tuning {s['tuning']}, {s['evaluated']} mappings evaluated",
                 fontsize=10)
    fig.tight_layout()
    return fig


# ---- pick: the hardware and the model a user takes away ---------------------------------------
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
    from .loader import load
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
    from .models import ARCHS, save
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


# ---- the whole run (what `ecomac alwann search` calls) -----------------------------------------
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
    from . import data as data_mod
    from .evaluate import calibration_batch, check_fit
    from .loader import load
    from .models import input_shape_of
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
