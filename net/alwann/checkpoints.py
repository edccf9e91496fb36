"""Search checkpoints: the pickled algorithm with its random generator, the evaluation cache, the
generation, and fingerprints of the model, the multiplier library, the data and the options that a
resume must match."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

from ..datapath import parse
from .context import EvalContext, _digest, model_digest
from .space import SearchSpace

CHECKPOINT = "checkpoint.pkl"
_CKPT_VERSION = 1
_CKPT_FORMAT = "ecomac-alwann-checkpoint"


def fingerprints(ctx: EvalContext, space: SearchSpace, options: dict) -> dict:
    """What a checkpoint must match to be resumed: model, multiplier library, data, options."""
    return {"model": model_digest(ctx.model),
            "library": _digest(*space.specs, *[repr(e) for e in space.energies],
                               *[parse(s).table() for s in space.specs]),
            "data": _digest(ctx.calib, *[a for s in sorted(ctx.splits) for a in ctx.splits[s]]),
            "options": json.dumps({k: options[k] for k in sorted(options)}, sort_keys=True)}


def write_checkpoint(path: Path, fps: dict, generation: int, algorithm, cache: dict, history: list) -> None:
    """The checkpoint after `generation`, written atomically (the algorithm must not hold the
    evaluation callback: it is not picklable)."""
    from synth.cache import atomic_write
    payload = {"format": _CKPT_FORMAT, "version": _CKPT_VERSION, "fingerprints": fps, "generation": generation,
               "algorithm": algorithm, "cache": cache, "history": history}
    atomic_write(path, pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))


_WHAT = {"model": "model", "library": "multiplier library", "data": "data set", "options": "set of options"}


def _read_checkpoint(path: Path, fps: dict) -> dict:
    if not path.is_file():
        raise ValueError(f"--resume: no checkpoint {path} (run the search without --resume first)")
    try:
        with open(path, "rb") as f:
            payload = pickle.load(f)
        ok = isinstance(payload, dict) and payload.get("format") == _CKPT_FORMAT
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
