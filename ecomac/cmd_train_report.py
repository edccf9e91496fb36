"""`ecomac train-experiments` (make experiments) and the report section "Training on the arithmetic":
FP32, int8 QAT, ALS-POTQ (with/without WBC and PRC), PoT PTQ, ASM alphabets, approximate
multipliers (PTQ, fine-tuned with STE and with the table gradient). Logic lives in net/train.py."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .outputs import check_output_dir
from .table import format_table

__all__ = ["add_parser", "report_sections", "TRAIN_EXPERIMENTS", "TRAIN_EXPERIMENTS_CMD", "train_table"]

# (arch, data, epochs, fine-tune epochs, batch, net.train.CONFIG_SETS key, train-sample limit): the MLP on
# digits runs every mode and the ablations; LeNet on MNIST (about 100x the work per image on 2 shared
# cores) the core modes for one epoch
TRAIN_EXPERIMENTS = (("mlp", "digits", 15, 2, 64, "full", None), ("lenet", "mnist", 1, 1, 32, "core", None))
TRAIN_SEEDS = (0, 1, 2)
TRAIN_EXPERIMENTS_CMD = "make experiments  (= ecomac train-experiments -o build/experiments)"


def add_parser(sub) -> None:
    p = sub.add_parser("train-experiments",
                       help="train every mode (FP32, int8 QAT, ALS-POTQ, ASM, approximate fine-tuning) x 3 seeds")
    p.add_argument("-o", "--output", default="build/experiments", metavar="DIR",
                   help="where train_ARCH_DATA.json go (default build/experiments)")
    p.add_argument("--only", action="append", metavar="ARCH:DATA", help="run only these (e.g. mlp:digits)")
    p.add_argument("--seeds", type=int, default=len(TRAIN_SEEDS), help="number of seeds (default 3: 0, 1, 2)")
    p.add_argument("--seed", type=int, action="append", metavar="S",
                   help="run exactly these seeds instead (repeatable; to split a run over processes)")
    p.add_argument("--json", action="store_true", help="the summaries")
    p.set_defaults(func=_cmd)


def _cmd(args) -> int:
    from net.train import CONFIG_SETS, experiment

    from synth.cache import atomic_write
    out = check_output_dir(args.output)
    known = {f"{t[0]}:{t[1]}": t for t in TRAIN_EXPERIMENTS}
    bad = [o for o in args.only or [] if o not in known]
    if bad:
        raise ValueError(f"--only {bad[0]!r}: not an experiment (experiments: {', '.join(known)})")
    if not 1 <= args.seeds <= 10:
        raise ValueError(f"--seeds must be in 1..10, got {args.seeds}")
    bad = [s for s in args.seed or [] if not 0 <= s < 2**32]
    if bad:
        raise ValueError(f"--seed must be in 0..2^32-1, got {bad[0]}")
    todo = [known[o] for o in args.only] if args.only else list(TRAIN_EXPERIMENTS)
    results = []
    for arch, name, epochs, ft, batch, which, limit in todo:
        t0 = time.perf_counter()
        path = out / f"train_{arch}_{name}.json"

        def write(res, path=path, t0=t0):
            res["wall_s"] = time.perf_counter() - t0
            res["command"] = TRAIN_EXPERIMENTS_CMD
            atomic_write(path, json.dumps(res, indent=2) + "\n")
        configs = CONFIG_SETS[which]
        seeds = tuple(args.seed) if args.seed else tuple(range(args.seeds))
        res = experiment(arch, name, seeds=seeds,
                         epochs=epochs, ft_epochs=ft, batch_size=batch, configs=configs, train_limit=limit,
                         on_seed=write)
        write(res)
        print(f"{arch} on {name}: {len(configs)} configs x {len(res['seeds'])} seeds in {res['wall_s']:.0f} s "
              f"-> {path}", file=sys.stderr)
        results.append(res)
    if args.json:
        print(json.dumps([{k: r[k] for k in ("arch", "data", "epochs", "seeds", "wall_s", "summary")}
                          for r in results], indent=2))
        return 0
    for r in results:
        print(train_table(r))
        print()
    return 0


def train_table(res: dict) -> str:
    rows = []
    for s in res["summary"]:
        step = s.get("energy_per_step_pj")
        epoch = s.get("energy_per_epoch_pj")
        rows.append([s["label"], f"{s['accuracy_pct_mean']:.2f} ± {s['accuracy_pct_std']:.2f}",
                     f"{s['drop_pp_mean']:+.2f} ± {s['drop_pp_std']:.2f}",
                     "-" if step is None else round(step / 1e6, 3), "-" if epoch is None else round(epoch / 1e6, 2),
                     round(s["seconds_mean"], 1)])
    title = (f"{res['arch']} on {res['data']} ({res['train_samples']} train / {res['test_samples']} test), "
             f"{res['epochs']} epochs (fine-tuning {res['ft_epochs']} from FP32), batch {res['batch_size']}, "
             f"Adam lr {res['lr']:g}, seeds {', '.join(map(str, res['seeds']))}: test accuracy mean ± std, "
             f"drop = FP32 - accuracy (same seed)")
    return format_table(rows, ["mode", "test acc %", "drop pp", "energy/step uJ", "energy/epoch uJ", "time s"],
                        title=title)


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
