"""The NSGA-II search (pymoo 0.6) over a SearchSpace: integer genes with SBX crossover and
polynomial mutation rounded back to integers, duplicate elimination, seeded; a checkpoint after
every generation; the front of the points no other evaluated point beats on both objectives."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymoo.config import Config as _PymooConfig
from pymoo.core.problem import Problem

from .. import ALWANN_OBJECTIVES
from .checkpoints import _read_checkpoint, _run_options, fingerprints, write_checkpoint
from .context import EvalContext
from .engines import Engine
from .space import SearchSpace

_PymooConfig.warnings["not_compiled"] = False      # pymoo's pure-Python paths are all this search needs


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


def search(ctx: EvalContext, space: SearchSpace, engine: Engine, *, pop: int = 50, gens: int = 30, seed: int = 0,
           options: dict | None = None, checkpoint: str | Path | None = None, resume: bool = False,
           on_generation=None, stop_after: int | None = None) -> SearchResult:
    """NSGA-II over `space` (see net.alwann's doc), `gens` generations (the initial population is the
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
        # (a fresh termination would let a search resumed at its last generation run one more)
        while algo.has_next() and (algo.n_gen is None or algo.n_gen - 1 < gens) \
                and (stop_after is None or steps < stop_after):
            algo.next()
            steps += 1
            pts = [_point(space, m, v, objective) for m, v in cache.items()]
            fr = front_of(pts)
            gen = int(algo.n_gen - 1)
            history.append({"gen": gen, "evaluated": len(cache), "front_size": len(fr),
                            "seconds": round(time.monotonic() - t0, 3)})
            if ck is not None:
                algo.problem.evaluate_objective = None
                write_checkpoint(ck, fps, gen, algo, cache, history)
                algo.problem.evaluate_objective = evaluate_objective
            if on_generation is not None:
                on_generation({"gen": gen, "gens": gens, "evaluated": len(cache), "front": fr,
                               "seconds": time.monotonic() - t0})
    finally:
        algo.problem.evaluate_objective = None
    return SearchResult(space, dict(cache), int(algo.n_gen - 1), history, time.monotonic() - t0, ran, objective)
