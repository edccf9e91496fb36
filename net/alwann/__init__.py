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


Files: candidates.py (the multipliers and their energies), space.py (the model's layers, the
chromosome), context.py (evaluating one mapping), engines.py (where evaluations run),
checkpoints.py, nsga.py (the search and its front), results.py (test accuracies, energies, the
goal summary), tables.py (tables, front.json/.csv), plots.py, pick.py (tile designs and the tuned
model), run.py (`prepare`: everything a search needs, checked before any slow work).
"""
from __future__ import annotations

from .. import ALWANN_DEFAULTS as DEFAULTS
from .candidates import EXACT_SPEC, Candidate, candidates, load_library, short_spec, sweep_specs, user_candidate
from .checkpoints import CHECKPOINT, fingerprints, verify_checkpoint
from .context import (TUNINGS, EvalContext, activation_histograms, evaluate_mapping, make_context, mapped_model,
                      model_digest, tuned_model)
from .engines import Engine, check_scheduler, connect
from .nsga import OBJECTIVES, AlwannProblem, SearchResult, front_of, initial_population, objective_value, search
from .pick import load_setup_model, pick_point, save_model, tile_designs, tuned_point_model
from .plots import plot_front
from .results import finish, goal_summary, per_inference_energy
from .run import Setup, prepare
from .space import SearchSpace, model_layers
from .tables import front_table, read_front, tuning_table, write_front

__all__ = ["Candidate", "candidates", "sweep_specs", "user_candidate", "load_library", "model_layers",
           "SearchSpace", "EvalContext", "make_context", "tuned_model", "mapped_model", "evaluate_mapping",
           "activation_histograms", "Engine", "AlwannProblem", "search", "SearchResult", "front_of", "fingerprints",
           "initial_population", "OBJECTIVES", "objective_value", "finish", "goal_summary", "per_inference_energy",
           "front_table", "tuning_table", "write_front", "read_front", "plot_front", "pick_point", "tile_designs",
           "load_setup_model", "tuned_point_model", "save_model", "Setup", "prepare", "verify_checkpoint", "connect",
           "check_scheduler", "DEFAULTS", "TUNINGS", "CHECKPOINT", "EXACT_SPEC", "short_spec", "model_digest"]
