"""`ecomac nn train-experiments` (make experiments) and the report section "Training on the arithmetic":
FP32, int8 QAT, ALS-POTQ (with/without WBC and PRC), PoT PTQ, ASM alphabets, approximate
multipliers (PTQ, fine-tuned with STE and with the table gradient). What runs is net/experiments.py
(on net/train.py); `ecomac train-experiments` is its deprecated old name."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .outputs import check_output_dir
from .table import format_table, print_experiment_results

__all__ = ["add_parser", "add_nn_parser", "report_sections", "TRAIN_EXPERIMENTS_CMD", "train_table"]

TRAIN_EXPERIMENTS_CMD = "make experiments  (= ecomac nn train-experiments -o build/experiments)"
_HELP = "train every mode (FP32, int8 QAT, ALS-POTQ, ASM, approximate fine-tuning) x 3 seeds"


def add_nn_parser(ns) -> None:
    """`ecomac nn train-experiments` (cmd_nn adds it to the nn group)."""
    _add_args(ns.add_parser("train-experiments", help=_HELP), _cmd)


def add_parser(sub) -> None:
    _add_args(sub.add_parser("train-experiments", help="deprecated: use `ecomac nn train-experiments`"),
              _cmd_deprecated)


def _add_args(p, func) -> None:
    from .args import int_range, seed
    p.add_argument("-o", "--output", default="build/experiments", metavar="DIR",
                   help="where train_ARCH_DATA.json go (default build/experiments)")
    p.add_argument("--only", action="append", metavar="ARCH:DATA[:potq|:hades]",
                   help="run only these (e.g. mlp:digits; mlp:digits:potq = the ALS-POTQ ablation; "
                        "resnet:mnist:hades = HADES alphabet-aware fine-tuning)")
    p.add_argument("--seeds", type=int_range(1, 10), default=None, help="number of seeds 0..N-1 (default: 3, the "
                   "ALS-POTQ ablation 5, HADES 5 (ResNet) or 10 (MobileNet))")
    p.add_argument("--seed", type=seed, action="append", metavar="S",
                   help="run exactly these seeds instead (repeatable; to split a run over processes)")
    p.add_argument("--json", action="store_true", help="the summaries")
    p.set_defaults(func=func)


def _cmd_deprecated(args) -> int:
    print("ecomac: warning: `ecomac train-experiments` is deprecated; use `ecomac nn train-experiments`",
          file=sys.stderr)
    return _cmd(args)


def _cmd(args) -> int:
    from net.experiments import train_experiments
    out = check_output_dir(args.output)
    results = train_experiments(out, args.only, args.seeds, args.seed, command=TRAIN_EXPERIMENTS_CMD,
                                log=lambda line: print(line, file=sys.stderr))
    print_experiment_results(results, train_table, args.json)
    return 0


def train_table(res: dict) -> str:
    rows = []
    uneven = len({s.get("seeds") for s in res["summary"]}) > 1       # some rows on fewer seeds (HADES)
    for s in res["summary"]:
        step = s.get("energy_per_step_pj")
        epoch = s.get("energy_per_epoch_pj")
        rows.append([s["label"], f"{s['accuracy_pct_mean']:.2f} ± {s['accuracy_pct_std']:.2f}",
                     f"{s['drop_pp_mean']:+.2f} ± {s.get('drop_pp_se', s['drop_pp_std']):.2f}",
                     "-" if step is None else round(step / 1e6, 3), "-" if epoch is None else round(epoch / 1e6, 2),
                     round(s["seconds_mean"], 1)] + ([s.get("seeds")] if uneven else []))
    title = (f"{res['arch']} on {res['data']} ({res['train_samples']} train / {res['test_samples']} test), "
             f"{res['epochs']} epochs (fine-tuning {res['ft_epochs']} from FP32), batch {res['batch_size']}, "
             f"Adam lr {res['lr']:g}, seeds {', '.join(map(str, res['seeds']))}: test accuracy mean ± std, "
             f"drop = FP32 - accuracy (same seed), mean ± standard error")
    return format_table(rows, ["mode", "test acc %", "drop pp", "energy/step uJ", "energy/epoch uJ", "time s"]
                        + (["seeds"] if uneven else []), title=title)


def report_sections(outdir) -> list[tuple[int, str, str]]:
    exp = Path(outdir).parent / "experiments"
    files = sorted(exp.glob("train_*.json")) if exp.is_dir() else []
    title = "Training on the arithmetic"
    if not files:
        return [(62, title, f"No results yet: run `{TRAIN_EXPERIMENTS_CMD}`; the report includes "
                            f"build/experiments/train_*.json when they exist.")]
    parts = [f"Made by `{TRAIN_EXPERIMENTS_CMD}`. Training energy per step: synth.network.net_energy on the "
             "model's layers at the training batch: forward product on the datapath, backward-data and "
             "weight-gradient products on the error datapath (ALS-POTQ: PoT; the other modes: float32), memory "
             "included. Design note: docs/training.md."]
    for f in files:
        try:
            res = json.loads(f.read_text())
            parts += ["", "```", train_table(res), "```", f"wall time {res.get('wall_s', float('nan')):.0f} s ({f.name})"]
        except (OSError, ValueError, KeyError) as e:
            parts += ["", f"{f.name}: unreadable ({type(e).__name__})"]
    return [(62, title, "\n".join(parts))]
