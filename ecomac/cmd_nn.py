"""`ecomac nn`: networks on ecomac arithmetic (train, eval, experiments; train-experiments from
cmd_train_report.py). Logic lives in net/."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .outputs import check_output_dir, check_output_file
from .table import Heartbeat, Progress, format_table, print_experiment_results

__all__ = ["add_parser", "report_sections", "EXPERIMENTS"]

from net.experiments import EVAL_EXPERIMENTS as EXPERIMENTS  # noqa: E402  (torch-free)
from net.experiments import json_default as _json_default  # noqa: E402

EXPERIMENTS_CMD = "make experiments  (= ecomac nn experiments -o build/experiments)"


def add_parser(sub) -> None:
    pn = sub.add_parser("nn", help="networks on ecomac datapaths: train, evaluate accuracy beside energy")
    ns = pn.add_subparsers(dest="nn_command", required=True, parser_class=type(pn))
    _add_train_parser(ns)
    _add_eval_parser(ns)
    _add_experiments_parser(ns)
    from .cmd_train_report import add_nn_parser
    add_nn_parser(ns)                     # nn train-experiments: training on the arithmetic
    from .cmd_hwsim import add_nn_parser as add_hwsim_parser
    add_hwsim_parser(ns)                  # nn hwsim: the model on the generated hardware


# ==== nn train ======================================================================================
# The train subparser and its option plumbing live in this block only (the training engineer adds
# options here: keep them inside _add_train_parser / _train_kwargs).
def _add_train_parser(ns) -> None:
    from net import ARCHS
    p = ns.add_parser("train", help="train a shipped architecture or any model on digits, mnist or FILE.npz, on any "
                                    "datapath")
    p.add_argument("--arch", choices=ARCHS, help=f"a shipped architecture: {', '.join(ARCHS)}")
    p.add_argument("--model", metavar="MODEL", help="train (fine-tune) this model instead of --arch: a checkpoint, "
                   ".pt2 program, ONNX, TorchScript, torch.save'd nn.Module or FILE.py:NAME; written back as a "
                   ".pt2 program (shipped architectures: a checkpoint)")
    p.add_argument("--weights", metavar="W.pt", help="state_dict for a FILE.py:NAME (or .pt2) --model")
    p.add_argument("--data", required=True, metavar="digits|mnist|FILE.npz")
    p.add_argument("--epochs", type=_positive_int, default=10, help="default 10")
    p.add_argument("--seed", type=_seed, default=0, help="initialization, sample order (default 0); the "
                   "train/test split always uses seed 0")
    p.add_argument("--json", action="store_true", help="{model, arch, data, epochs, seed, test_accuracy_pct, "
                   "train_accuracy_pct, history, energy_per_step_pj, ...}")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.pt", help="checkpoint to write")
    # training on the arithmetic (net/train.py, net/potq.py, net/qat.py; docs/training.md)
    p.add_argument("--datapath", metavar="SPEC", help="train on this datapath: mfmac[,exp_bits=E] (ALS-POTQ), "
                   "int8, asm[,alphabet=1/3][,w_bits=4|8] (alphabet-aware), approx:FAMILY[,...] / lut:FILE "
                   "(approximate-aware; use --init to fine-tune); default fp32")
    p.add_argument("--errors", metavar="SPEC", help="ALS-POTQ error datapath: mfmac[,exp_bits=E] (default: the "
                   "--datapath) or fp32")
    p.add_argument("--init", metavar="MODEL.pt", help="start from this checkpoint (fine-tuning)")
    p.add_argument("--wbc", action=argparse.BooleanOptionalAction, default=None,
                   help="ALS-POTQ Weight Bias Correction (default on)")
    p.add_argument("--prc", action=argparse.BooleanOptionalAction, default=None,
                   help="ALS-POTQ Parameterized Ratio Clipping (default on)")
    p.add_argument("--err-scale", choices=("tensor", "sample"), help="ALS-POTQ error scales: one power of two per "
                   "tensor (default) or per sample (weight gradient on a 6-bit MF-MAC at a common scale)")
    p.add_argument("--err-rounding", choices=("nearest", "stochastic", "luq"),
                   help="ALS-POTQ error quantizer: nearest power (log domain, default), stochastic (linear-domain "
                   "stochastic rounding at the nearest-max scale) or luq (unbiased: nothing clipped, stochastic "
                   "rounding and underflow; the luq-quant unit priced per error)")
    p.add_argument("--fwd-rounding", choices=("log", "linear", "fp32"),
                   help="ALS-POTQ weight/activation rounding: log (default: threshold sqrt(2) 2^n), linear "
                   "(threshold 1.5 2^n, the MSE optimum) or fp32 (float forward, PoT errors only: a study mode)")
    p.add_argument("--grad", choices=("ste", "table"), help="approx/lut backward: straight-through (ste, default) "
                   "or the table's finite-difference gradient (table)")
    p.add_argument("--anneal", action="store_true", help="asm: anneal the alphabet projection over the epochs")
    p.add_argument("--lr", type=_learning_rate, default=2.0 ** -8, help="learning rate (default 2^-8)")
    p.add_argument("--lr-pow2", action="store_true", help="round the learning rate to a power of two (a shift)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam", help="adam (default) or sgd (momentum 0.9)")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="default 64")
    p.add_argument("--plot", metavar="FILE.png", help="training curve (loss, train/test accuracy per epoch)")
    add_device_arg(p)
    p.set_defaults(func=_cmd_train)


def add_device_arg(p) -> None:
    """--device cpu|cuda (net/device.py; validated when the command runs)."""
    p.add_argument("--device", choices=("cpu", "cuda"), help="where the products run (default: cuda when "
                   "available, else cpu; results are bit-exact on either)")


def _train_kwargs(args) -> dict:
    """Keyword arguments of net.train.train from the parsed options (mode options only when given)."""
    kw = {"epochs": args.epochs, "seed": args.seed, "datapath": args.datapath, "errors": args.errors,
          "lr": args.lr, "lr_pow2": args.lr_pow2, "optimizer": args.optimizer, "batch_size": args.batch_size}
    for name in ("wbc", "prc", "grad", "err_scale", "err_rounding", "fwd_rounding"):
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    if args.anneal:
        kw["anneal"] = True
    return kw


def _check_train_args(args, kwargs) -> None:
    """Every training option validated before data or models load (one line each)."""
    import math

    from net.device import resolve_device
    from net.train import make_mode, validate_options
    from .cli import UsageError
    from .plot import check_plot_path
    kwargs["device"] = resolve_device(args.device)
    if not math.isfinite(args.lr):
        raise ValueError(f"--lr must be a finite number > 0, got {args.lr}")
    validate_options(**{k: kwargs[k] for k in ("epochs", "seed", "lr", "batch_size", "optimizer", "lr_pow2")})
    make_mode(kwargs["datapath"], kwargs["errors"],
              **{k: v for k, v in kwargs.items()
                 if k in ("wbc", "prc", "grad", "anneal", "err_scale", "err_rounding", "fwd_rounding")})
    if (args.arch is None) == (args.model is None):
        raise UsageError("give --arch (a shipped architecture) or --model MODEL (any model file), one of them")
    if args.weights is not None and args.model is None:
        raise UsageError("--weights goes with --model FILE.py:NAME (or .pt2)")
    if args.init is not None and args.model is not None:
        raise UsageError("--init starts a shipped --arch from a checkpoint; with --model, the model file holds the "
                         "weights to fine-tune")
    if args.init is not None and not os.path.isfile(args.init):
        raise ValueError(f"--init {args.init}: no such checkpoint file")
    if args.plot:
        check_plot_path(args.plot)


def _plot_training(hist: dict, path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plot import save_figure
    ep = [e["epoch"] for e in hist["epochs"]]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(ep, [e["loss"] for e in hist["epochs"]], marker="o")
    a1.set_xlabel("epoch")
    a1.set_ylabel("training loss (cross-entropy)")
    a2.plot(ep, [e["train_accuracy_pct"] for e in hist["epochs"]], marker="o", label="train (running)")
    a2.plot(ep, [e["test_accuracy_pct"] for e in hist["epochs"]], marker="s", label="test")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy %")
    a2.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
# ==== end of nn train options ========================================================================


def _positive_int(text: str) -> int:
    from .args import positive_int
    return positive_int(text)


def _seed(text: str) -> int:
    from .args import seed
    return seed(text)


def _learning_rate(text: str) -> float:
    from .args import float_range
    return float_range(0, 10, lo_open=True)(text)     # the range net.train.train accepts


def _cmd_train(args) -> int:
    import torch

    from net import data, evaluate, loader, models
    from net.train import train
    from net.train import to_float, training_energy
    check_output_file(args.output, what="model file")
    kwargs = _train_kwargs(args)
    _check_train_args(args, kwargs)
    ds = data.load(args.data, seed=0)
    torch.manual_seed(args.seed)
    name = args.arch
    if args.model is not None:
        model, meta0 = loader.load(args.model, args.weights)
        evaluate.prepare(model, ds, meta0)          # the data fits (input shape, classes), one line if not
        name = os.path.basename(args.model)
    else:
        model = models.build(args.arch, ds.input_shape, ds.num_classes)
    shipped = model if models.arch_of(model) is not None else None
    if args.init is not None:
        from net.train import _load_init
        _load_init(model, args.init)
        args.init = None
    model = loader.canonical(model, ds.x_train[:1], fold_bn=False)    # every product a module; BatchNorm float
    opts = {k: v for k, v in kwargs.items() if isinstance(v, (int, float, str))}
    t0 = time.perf_counter()
    model, hist = train(model, ds, progress=True, checkpoint=lambda m: loader.save_model(
        m, args.output, {"data": args.data, "seed": args.seed, "diverged": True, "options": opts}, ds.input_shape,
        shipped), **kwargs)
    secs = time.perf_counter() - t0
    from net.distributed import is_main
    if not is_main():
        return 0                          # torchrun: process 0 writes and prints
    model = model.to("cpu")
    energy = training_energy(model, ds.input_shape, args.datapath, args.errors, args.batch_size,
                             hist["steps_per_epoch"], **{k: kwargs[k] for k in ("err_scale", "err_rounding", "fwd_rounding")
                                                         if k in kwargs})
    meta = {"data": args.data, "seed": args.seed, "epochs": args.epochs,
            "test_accuracy_pct": hist["test_accuracy_pct"], "train_accuracy_pct": hist["train_accuracy_pct"],
            "train_s": secs, "options": opts}
    if args.model is not None:
        meta["source"] = args.model
    floats = getattr(model, "_ecomac_float_products", [])
    if floats:
        meta["float_products"] = floats
    loader.save_model(to_float(model), args.output, meta, ds.input_shape, shipped)
    if args.plot:
        _plot_training(hist, args.plot, f"{name} on {ds.name}, datapath {args.datapath or 'fp32'}, seed {args.seed}")
    out = {"model": str(args.output), "arch": args.arch, **meta, "history": hist,
           "energy_per_step_pj": energy["energy_per_step_pj"], "energy_per_epoch_pj": energy["energy_per_epoch_pj"],
           "energy": energy}
    if args.json:
        print(json.dumps(out, indent=2, default=_json_default))
    else:
        print(f"{name} on {ds.name} ({len(ds.y_train)} train / {len(ds.y_test)} test samples), "
              f"{args.epochs} epochs, seed {args.seed}: test accuracy {hist['test_accuracy_pct']:.2f}%, "
              f"train {hist['train_accuracy_pct']:.2f}% ({secs:.1f} s) -> {args.output}")
        print(f"datapath {args.datapath or 'fp32'}: training energy {energy['energy_per_step_pj'] / 1e6:.3f} uJ per "
              f"step (batch {args.batch_size}; errors on {energy['error_datapath']}), "
              f"{energy['energy_per_epoch_pj'] / 1e6:.2f} uJ per epoch"
              + (f"; curve: {args.plot}" if args.plot else ""))
        if floats:
            print(f"note: {args.datapath} training has no module for {len(floats)} product(s), trained in float32: "
                  f"{', '.join(floats)}")
    return 0


# ==== nn eval =======================================================================================
def _add_eval_parser(ns) -> None:
    p = ns.add_parser("eval", help="test accuracy beside energy per inference, per datapath")
    p.add_argument("--model", required=True, metavar="MODEL",
                   help="checkpoint (nn train), torch.export program (.pt2), ONNX, TorchScript, a torch.save'd "
                        "nn.Module, or FILE.py:NAME (a module class or zero-argument factory)")
    p.add_argument("--weights", metavar="W.pt", help="state_dict for FILE.py:NAME (or .pt2) models")
    p.add_argument("--data", required=True, metavar="digits|mnist|FILE.npz")
    p.add_argument("--datapath", action="append", metavar="SPEC",
                   help="datapath spec (repeatable); 'all' = fp32, int8, mfmac, asm alphabets {1}, {1,3}, "
                        "{1,3,5,7} and every approximate family's lowest-energy point within MRE 2%% and 5%%")
    p.add_argument("--mapping", metavar="FILE.json", help="per-layer assignment {layer name: spec} as one more row")
    p.add_argument("--calib-size", type=_positive_int, default=512,
                   help="training samples for activation calibration (default 512)")
    p.add_argument("--seed", type=_seed, default=0, help="calibration sample draw (default 0)")
    p.add_argument("--batch-size", type=_positive_int, default=256, help="evaluation batch (default 256)")
    p.add_argument("--json", action="store_true", help="one row per datapath")
    p.add_argument("--plot", metavar="FILE.png", help="accuracy drop vs energy per inference")
    add_device_arg(p)
    p.add_argument("--arch", default="stream", metavar="ARCH",
                   help="accelerator the energy is priced on: stream (default), tile-vn, tile-near, tile-in[,NAME=VALUE...] "
                        "or a ZigZag accelerator FILE.yaml (docs/accelerators.md)")
    p.add_argument("--batch", type=_positive_int, default=None, metavar="B",
                   help="inferences per batch for the energy (weights loaded once per batch; default 1)")
    p.set_defaults(func=_cmd_eval)


def _expand_specs(given) -> list[str]:
    """The datapaths with "all" expanded (net.experiments), the sweep's progress bar on stderr."""
    from net.experiments import expand_datapaths
    if not any(s.strip() == "all" for s in given or []):
        return expand_datapaths(given)
    from .approx_lib import sweep_points
    with Progress(len(sweep_points()), "approx sweep") as prog:
        return expand_datapaths(given, progress=lambda note: prog.step(note=note))


def _read_mapping(path: str) -> dict:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ValueError(f"mapping file {path} does not exist") from None
    except (IsADirectoryError, UnicodeDecodeError):
        raise ValueError(f"mapping file {path}: not a JSON text file") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"mapping file {path}: not valid JSON ({e.msg} at line {e.lineno})") from None


_HEAD = ["datapath", "acc %", "drop pp", "MACs", "fp32 MACs", "energy nJ", "arith nJ", "memory nJ", "vs fp32 %",
         "vs int8 %",
         "time s"]


def _table_row(r: dict) -> list:
    return [r["datapath"], round(r["accuracy_pct"], 2), round(r["drop_pp"], 2), r["macs"], r["float_macs"],
            round(r["energy_pj"] / 1e3, 2), round(r["arithmetic_pj"] / 1e3, 3), round(r["memory_pj"] / 1e3, 2),
            round(r["saving_vs_fp32_pct"], 2), round(r["saving_vs_int8_pct"], 2), round(r["eval_s"], 1)]


def _plot(rows: list[dict], path, title: str) -> None:
    """Accuracy drop against energy per inference: the total (left) and its arithmetic part (right:
    where the 8-bit datapaths, equal in memory traffic, differ)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plot import save_figure
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, key, label in ((axes[0], "energy_pj", "energy per inference (nJ, arithmetic + memory; log)"),
                           (axes[1], "arithmetic_pj", "arithmetic energy per inference (nJ; log)")):
        for i, r in enumerate(rows):
            ax.scatter(r[key] / 1e3, r["drop_pp"], s=28, color=f"C{i % 10}", label=r["datapath"])
            ax.annotate(r["datapath"], (r[key] / 1e3, r["drop_pp"]), fontsize=6.5, xytext=(4, 3),
                        textcoords="offset points")
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy drop vs FP32 (percentage points)")
    axes[1].legend(fontsize=6.5, loc="best")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def _cmd_eval(args) -> int:
    from net import data, evaluate, models
    from .cli import UsageError
    from .plot import check_plot_path
    if not args.datapath and not args.mapping:
        raise UsageError("give --datapath SPEC (repeatable, or 'all') and/or --mapping FILE.json")
    if args.plot:
        check_plot_path(args.plot)
    from net.datapath import parse
    from net.device import resolve_device
    device = resolve_device(args.device)
    for s in args.datapath or []:
        if s.strip() != "all":
            parse(s)                      # a bad spec is one line before the model or the sweep loads
    from net import graph, loader
    model, meta = loader.load(args.model, args.weights)
    ds = data.load(args.data, seed=0)
    mapping = _read_mapping(args.mapping) if args.mapping else None
    model = evaluate.prepare(model, ds, meta)       # every product a module, BatchNorm folded
    if mapping is not None:
        mapping = evaluate.load_mapping(mapping, model, f"mapping file {args.mapping}")
    from synth.zigzag import check_arch
    check_arch(args.arch, args.batch)     # one line before the sweep
    specs = _expand_specs(args.datapath)
    rows = evaluate.evaluate(model, ds, specs, mapping, meta=meta, calib_size=args.calib_size, seed=args.seed,
                             batch_size=args.batch_size, progress=True, device=device,
                             mapping_label=f"mapping:{os.path.basename(args.mapping)}" if args.mapping else "mapping",
                             energy_arch=args.arch, energy_batch=args.batch)
    title = (f"{os.path.basename(args.model)} on {ds.name}: {len(ds.y_test)} test samples, post-training "
             f"quantization (per-channel weights, {min(args.calib_size, len(ds.y_train))} calibration samples)")
    if args.plot:
        _plot(rows, args.plot, title)
    if args.json:
        print(json.dumps([{k: r[k] for k in evaluate.ROW_KEYS} for r in rows], indent=2))
        return 0
    print(format_table([_table_row(r) for r in rows], _HEAD, title=title))
    cen = graph.census(model, ds.input_shape)
    kinds = ", ".join(f"{k} {v:,}" for k, v in cen.macs_by_kind().items() if v)
    print(f"products ({len(cen.layers)}): MACs by kind: {kinds}")
    floats = [e["name"] for e in cen.layers if e.get("float")]
    if floats:
        print(f"products no datapath covers (float32, priced at fp32): {', '.join(floats)}")
    print(f"float32 element-wise (no MACs): {graph.summarize_ops(cen.ops)}")
    r0 = rows[0]
    print(f"energy: one inference on {r0['energy_arch']}, batch {r0['energy_batch']}, from "
          f"synth.zigzag.network_energy (as `ecomac energy net --arch {r0['energy_arch']}`); drop = FP32 "
          "accuracy - accuracy")
    if args.plot:
        print(f"plot: {args.plot}")
    return 0


# ==== nn experiments ================================================================================
def _add_experiments_parser(ns) -> None:
    p = ns.add_parser("experiments", help="train the shipped models (FP32, 3 seeds) and evaluate --datapath all")
    p.add_argument("--seeds", type=_positive_int, default=3, help="seeds 0..N-1 (default 3)")
    p.add_argument("--epochs", type=_positive_int, help="FP32 epochs for every experiment (default: each one's own)")
    p.add_argument("--datapath", action="append", metavar="SPEC", help="datapaths to evaluate (repeatable; "
                   "default all)")
    p.add_argument("-o", "--output", default="build/experiments", metavar="DIR",
                   help="where nn_eval_ARCH_DATA.json go (default build/experiments)")
    p.add_argument("--only", action="append", metavar="ARCH:DATA",
                   help="run only these (ARCH:DATA): mlp:digits, lenet:mnist, resnet|mobilenet|vit:mnist|digits (the "
                        "default set), lenet:digits, mlp:mnist")
    p.add_argument("--json", action="store_true", help="the summaries")
    p.set_defaults(func=_cmd_experiments)


def _cmd_experiments(args) -> int:
    from net.experiments import eval_experiments, select_eval_experiments
    out = check_output_dir(args.output)
    todo = select_eval_experiments(args.only)
    from net.datapath import parse
    for s in args.datapath or []:
        if s.strip() != "all":
            parse(s)                      # a bad spec is one line before any training
    if args.epochs is not None:
        todo = [(a, d, args.epochs) for a, d, _ in todo]
    specs = _expand_specs(args.datapath or ["all"])
    results = eval_experiments(out, todo, specs, EXPERIMENTS_CMD, seeds=tuple(range(args.seeds)),
                               log=lambda line: print(line, file=sys.stderr))
    print_experiment_results(results, experiment_table, args.json, default=_json_default)
    return 0


def experiment_table(res: dict) -> str:
    fp32 = [x["fp32_test_accuracy_pct"] for x in res["runs"]]
    one = len(res["runs"]) == 1          # one seed: no spread to show

    def spread(s, k, fmt):
        return format(s[f"{k}_mean"], fmt) + ("" if one else f" ± {s[f'{k}_std']:.2f}")
    rows = [[s["datapath"], spread(s, "accuracy_pct", ".2f"), spread(s, "drop_pp", "+.2f"), s["macs"], round(s["energy_pj"] / 1e3, 2),
             round(s["arithmetic_pj"] / 1e3, 3), round(s["memory_pj"] / 1e3, 2), round(s["saving_vs_fp32_pct"], 1),
             round(s["saving_vs_int8_pct"], 1), round(s["eval_s_mean"], 1)] for s in res["summary"]]
    kinds = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in (res.get("macs_by_kind") or {}).items() if v)
    title = (f"{res['arch']} on {res['data']} ({res['train_samples']} train / {res['test_samples']} test samples), "
             f"FP32 {res['epochs']} epochs, seeds {', '.join(map(str, res['seeds']))} (mean ± std; FP32 "
             f"{sum(fp32) / len(fp32):.2f}%); post-training quantization"
             + (f"; MACs by kind: {kinds}" if kinds else ""))
    return format_table(rows, ["datapath", "accuracy %", "drop pp", "MACs", "energy nJ", "arith nJ", "memory nJ",
                               "vs fp32 %", "vs int8 %", "eval s"], title=title)


def _quick_section(outdir: Path) -> str:
    """`make`'s own network table: net.experiments.quick_eval on every datapath (about a minute)."""
    from net.experiments import QUICK_EVAL, expand_datapaths, json_default, quick_eval
    from synth.cache import atomic_write
    arch, data, epochs = QUICK_EVAL
    with Heartbeat(f"quick network run: {arch} on {data}, {epochs} epochs, every datapath"):
        res = quick_eval(expand_datapaths(["all"]), log=lambda s: None)
    atomic_write(outdir / "nn_eval_quick.json", json.dumps(res, indent=2, default=json_default) + "\n")
    return "\n".join([
        f"**Quick run** (made by `make` / `ecomac report` in {res['wall_s']:.0f} s): the {arch} trained in FP32 on "
        f"{data} for {epochs} epochs with one seed, then every datapath post-training (per-channel weights, 512 "
        "calibration samples; activations, pooling and flatten stay float32). Energy per inference at batch 1 "
        "(synth.network.net_energy: arithmetic from the datapath's synthesized MAC, memory traffic SRAM + DRAM in "
        "its operand format). A single short run: the seed-to-seed spread of a drop is about ±1 pp here. The "
        f"full run (both shipped models, 3 seeds, full training) is `{EXPERIMENTS_CMD}`; the report shows it "
        "instead once build/experiments/nn_eval_*.json exist. One model by hand: `ecomac nn train --arch mlp "
        "--data digits -o mlp.pt && ecomac nn eval --model mlp.pt --data digits --datapath all`.",
        "", "```", experiment_table(res).replace(f"seeds {res['seeds'][0]} (mean ± std; ", f"seed {res['seeds'][0]} (", 1),
        "```", "(nn_eval_quick.json)"])


def report_sections(outdir) -> list[tuple[int, str, str]]:
    exp = Path(outdir).parent / "experiments"
    files = sorted(exp.glob("nn_eval_*.json")) if exp.is_dir() else []
    if not files:
        return [(60, "Networks: accuracy beside energy (quick run)", _quick_section(Path(outdir)))]
    parts = [f"Made by `{EXPERIMENTS_CMD}`. Per datapath: test accuracy (mean ± std over the seeds), drop vs "
             "FP32, MACs and energy per inference (batch 1, synth.network.net_energy: arithmetic from the "
             "datapath's synthesized MAC, memory traffic SRAM + DRAM in its operand format), savings. "
             "Post-training quantization of FP32-trained models, per-channel weights, 512 calibration samples; "
             "activations, pooling and flatten stay float32."]
    for f in files:
        try:
            res = json.loads(f.read_text())
            parts += ["", "```", experiment_table(res), "```",
                      f"wall time {res.get('wall_s', float('nan')):.0f} s ({f.name})"]
        except (OSError, ValueError, KeyError) as e:
            parts += ["", f"{f.name}: unreadable ({type(e).__name__})"]
    return [(60, "Networks: accuracy beside energy", "\n".join(parts))]
