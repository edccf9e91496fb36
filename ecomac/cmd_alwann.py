"""`ecomac alwann`: layer-wise assignment of approximate multipliers (net/alwann/).

    ecomac alwann search --model M.pt --data D -o DIR [--tiles T] [--pop N] [--gens G]
                         [--tuning none|uniform|histogram] [--mult SPEC ...] [--library FILE.json]
                         [--workers N | --scheduler ADDR] [--resume] [--seed S] [--json]
    ecomac alwann pick DIR --max-drop PP -o HWDIR [--json]
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from .table import Progress, format_table

__all__ = ["add_parser", "report_sections", "EXPERIMENTS"]

# what `make experiments` runs (one line per model); the report quotes them
EXPERIMENTS = (
    ("lenet_mnist", "ecomac nn train --arch lenet --data mnist --epochs 10 -o build/experiments/lenet_mnist.pt && "
                    "ecomac alwann search --model build/experiments/lenet_mnist.pt --data mnist --objective loss "
                    "-o build/experiments/alwann_lenet_mnist"),
    ("mlp_digits", "ecomac nn train --arch mlp --data digits --epochs 30 -o build/experiments/mlp_digits.pt && "
                   "ecomac alwann search --model build/experiments/mlp_digits.pt --data digits --objective loss "
                   "-o build/experiments/alwann_mlp_digits"),
)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _front_note(front: list[dict]) -> str:
    if not front:
        return ""
    lo = front[0]
    hi = front[-1]
    return (f"front {len(front)}: E {lo['relative_multiplier_energy']:.3f}@{lo['accuracy_search_pct']:.1f}% .. "
            f"{hi['relative_multiplier_energy']:.3f}@{hi['accuracy_search_pct']:.1f}%")


def _cmd_search(args) -> int:
    from net import alwann
    from net.device import resolve_device
    device = resolve_device(args.device)

    from .outputs import check_output_dir
    from .plot import save_png
    out = check_output_dir(args.output)
    ck = Path(out) / alwann.CHECKPOINT
    if args.resume and not ck.is_file():
        raise ValueError(f"--resume: no checkpoint {ck} (run the search without --resume first)")
    t0 = time.monotonic()
    from synth.zigzag import check_arch
    check_arch(args.arch, args.batch)                   # a bad accelerator before minutes of search
    if args.scheduler is not None:
        alwann.check_scheduler(args.scheduler)          # an unreachable cluster before minutes of setup
    setup = alwann.prepare(args.model, args.data, tiles=args.tiles, tuning=args.tuning, extra=args.mult or (),
                           library=args.library, sweep=not args.no_sweep, search_fraction=args.search_fraction,
                           batch_size=args.eval_batch, device=device.type)
    options = {"search_fraction": setup.info["search_fraction"], "calib": setup.info["calib_size"],
               "objective": args.objective}
    if args.resume:
        alwann.verify_checkpoint(ck, setup.ctx, setup.space, pop=args.pop, seed=args.seed, options=options)
    i = setup.info
    _log(f"{i['candidates']} multipliers, {i['layers']} layers, {i['tiles']} tiles; search split "
         f"{i['search_samples']} samples, test {i['test_samples']}, calibration {i['calib_size']}")
    with alwann.Engine(setup.ctx, workers=args.workers, scheduler=args.scheduler) as engine:
        _log(f"evaluating on {engine.description}")
        with Progress(args.gens, "alwann search") as prog:
            def on_gen(info):
                if prog.done < info["gen"] - 1:             # resumed: the checkpoint's generations
                    prog.done = info["gen"] - 1
                prog.step(note=f"{info['evaluated']} mappings, {_front_note(info['front'])}")
            result = alwann.search(setup.ctx, setup.space, engine, pop=args.pop, gens=args.gens, seed=args.seed,
                                   options=options, checkpoint=ck, resume=args.resume, on_generation=on_gen)
        doc = alwann.finish(result, engine, setup.layers, setup.cands, energy=not args.no_energy, log=_log,
                            energy_arch=args.arch, energy_batch=args.batch,
                            compare_tunings=not args.no_tuning_comparison)
    doc["setup"] = setup.info
    doc["search"]["seed"] = args.seed
    doc["search"]["pop"] = args.pop
    doc["search"]["engine"] = "dask" if args.scheduler else f"{args.workers} processes"
    doc["search"]["wall_s"] = round(time.monotonic() - t0, 1)
    doc["goal"] = alwann.goal_summary(doc, 0.6)
    paths = alwann.write_front(doc, out)
    png = Path(out) / "front.png"
    save_png(alwann.plot_front(doc), png)
    if args.json:
        print(json.dumps({k: doc[k] for k in ("baseline", "front", "goal", "search")}, indent=2))
        return 0
    head, rows = alwann.front_table(doc)
    print(format_table(rows, head, title=f"ALWANN front ({len(rows)} points; test drop vs mul-array on every layer, "
                                         f"{doc['baseline']['accuracy_test_pct']:.2f}%)"))
    print()
    if not args.no_tuning_comparison:
        head, rows = alwann.tuning_table(doc)
        print(format_table(rows, head, title="the front's mappings with each weight tuning (test accuracy %)"))
        print()
    print(_goal_line(doc))
    s = doc["search"]
    print(f"{s['evaluated']} mappings evaluated, {s['evaluations_this_run']} this run in {s['seconds']:.0f} s "
          f"({s['seconds_per_evaluation'] or 0:.3f} s per evaluation on {s['engine']}); wall {s['wall_s']:.0f} s")
    print(f"wrote {paths['json']}, {paths['csv']}, {png}")
    return 0


def _goal_line(doc: dict) -> str:
    g = doc["goal"]
    best = ("none" if g["best_saved_pct"] is None
            else f"{g['best_saved_pct']:.1f}% multiplier energy saved at {g['best_drop_pp']:.2f} pp")
    uni = ("none" if g["best_uniform_saved_pct"] is None
           else f"{g['best_uniform_saved_pct']:.1f}% ({g['best_uniform']})")
    return (f"within {g['max_drop_pp']} pp test drop: front {best}; best single multiplier {uni}; "
            f"{g['front_points_beating_uniform']}/{g['front_points']} front points below every single multiplier "
            f"at least as accurate")


def _cmd_pick(args) -> int:
    from net import alwann
    from rtl.registry import get_design

    from . import designs
    from .outputs import check_output_dir
    doc = alwann.read_front(args.folder)
    point = alwann.pick_point(doc, args.max_drop)
    out = Path(check_output_dir(args.output))
    model, meta = alwann.load_setup_model(doc)
    tiles = alwann.tile_designs(point)
    tuned = alwann.tuned_point_model(model, doc, point)
    out.mkdir(parents=True, exist_ok=True)
    meta = {**{k: v for k, v in meta.items() if k not in ("arch", "input_shape", "num_classes")},
            "alwann": {"source": str(Path(args.folder).resolve()), "tuning": doc["setup"]["tuning"],
                       "mapping": point["mapping"]}}
    alwann.save_model(tuned, out / "tuned_model.pt", meta)
    from synth.cache import atomic_write
    atomic_write(out / "mapping.json", json.dumps(point["mapping"], indent=2) + "\n")
    written = []
    for i, t in enumerate(tiles):
        stem = f"tile{i}_{alwann.short_spec(t['spec']).replace(',', '_').replace('=', '')}"
        if t["design"] is not None:
            # one module name per tile, so that every tile's Verilog goes into one project
            sheet = designs.write_verilog(t["design"], t["params"], out / f"{stem}.v",
                                          module=f"{get_design(t['design']).module}_tile{i}")
            t["module"] = sheet["module"]
        else:
            src = Path(t["params"]["file"])
            atomic_write(out / f"{stem}.v", src.read_text())
            t["module"] = t["params"]["top"]
        t["verilog"] = f"{stem}.v"
        t["layers"] = [n for n, s in point["mapping"].items() if s == t["spec"]]
        written.append(t)
    eval_cmd = (f"ecomac nn eval --model {out / 'tuned_model.pt'} --data {doc['setup']['data']} "
                f"--mapping {out / 'mapping.json'} --calib-size {doc['setup']['calib_size']}")
    summary = {"point": point, "tiles": written, "tuning": doc["setup"]["tuning"], "reproduce": eval_cmd}
    atomic_write(out / "point.json", json.dumps(summary, indent=2) + "\n")
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    rows = [[i, alwann.short_spec(t["spec"]), t["design"] or "(user circuit)", t["module"], t["verilog"],
             " ".join(t["layers"])] for i, t in enumerate(written)]
    print(format_table(rows, ["tile", "multiplier", "MAC design", "module", "Verilog", "layers"],
                       title=f"picked: {point['multiplier_energy_saved_pct']:.1f}% multiplier energy saved, "
                             f"test {point['accuracy_test_pct']:.2f}% ({point['drop_pp']:.2f} pp drop)"))
    print(f"wrote {out}/: tile Verilog + datasheets, tuned_model.pt (weights tuned: {doc['setup']['tuning']}), "
          f"mapping.json, point.json")
    print(f"reproduce: {eval_cmd}")
    return 0


def add_parser(sub) -> None:
    from net import ALWANN_DEFAULTS as DEFAULTS
    from net import ALWANN_OBJECTIVES as OBJECTIVES
    from net.tuning import TUNINGS

    from .args import float_range, int_range, positive_int, seed

    p = sub.add_parser("alwann", help="ALWANN: assign approximate multipliers to layers by NSGA-II (+ weight tuning)")
    asub = p.add_subparsers(dest="alwann_command", required=True, parser_class=type(p))

    q = asub.add_parser("search", help="NSGA-II over tile multipliers and layer-to-tile maps; front JSON/CSV/PNG")
    q.add_argument("--model", required=True, metavar="MODEL", help="any model ecomac loads: checkpoint (ecomac nn train), "
                   ".pt2 program, ONNX, TorchScript, torch.save'd module or FILE.py:NAME")
    q.add_argument("--data", required=True, metavar="digits|mnist|FILE.npz")
    q.add_argument("--tiles", type=positive_int, metavar="T",
                   help="tiles (distinct multipliers) of the accelerator (default: one per layer)")
    q.add_argument("--pop", type=int_range(4), default=DEFAULTS["pop"], help=f"population (default {DEFAULTS['pop']})")
    q.add_argument("--gens", type=positive_int, default=DEFAULTS["gens"],
                   help=f"generations, the initial population included (default {DEFAULTS['gens']})")
    q.add_argument("--objective", choices=OBJECTIVES, default=DEFAULTS["objective"],
                   help="search objective besides energy: accuracy on the search split (default; ALWANN's) or "
                        "its mean cross-entropy (finer: ranks mappings even where the search accuracy saturates)")
    q.add_argument("--tuning", choices=TUNINGS, default=DEFAULTS["tuning"],
                   help=f"weight tuning to each layer's multiplier (default {DEFAULTS['tuning']})")
    q.add_argument("--mult", action="append", metavar="SPEC",
                   help="one more candidate: approx:FAMILY[,NAME=VALUE...] or lut:FILE.v[,top=NAME] (repeatable)")
    q.add_argument("--library", metavar="FILE.json", help="more candidates: a JSON list of such specs")
    q.add_argument("--no-sweep", action="store_true",
                   help="candidates: only mul-array and the --mult/--library ones (not the 33 sweep points)")
    q.add_argument("--search-fraction", type=float_range(0, 1, lo_open=True, hi_open=True), default=DEFAULTS["search_fraction"],
                   help=f"share of the training split used as the search split (default "
                        f"{DEFAULTS['search_fraction']}, at most {DEFAULTS['search_max']} samples)")
    q.add_argument("--eval-batch", type=positive_int, default=DEFAULTS["batch_size"], metavar="B",
                   help=f"images per forward pass of an evaluation (default {DEFAULTS['batch_size']}; smaller needs "
                        f"less memory: the same accuracies, mean losses equal to rounding)")
    q.add_argument("--workers", "-j", type=positive_int, default=DEFAULTS["workers"],
                   help=f"worker processes (default {DEFAULTS['workers']}; 1 = this process)")
    q.add_argument("--scheduler", metavar="ADDRESS", help="evaluate on this Dask cluster (e.g. tcp://host:8786)")
    q.add_argument("--resume", action="store_true", help="continue the search from DIR/checkpoint.pkl")
    q.add_argument("--seed", type=seed, default=DEFAULTS["seed"], help="NSGA-II seed (default 0)")
    q.add_argument("--no-energy", action="store_true", help="skip the per-inference energy of the front points")
    q.add_argument("--no-tuning-comparison", action="store_true",
                   help="skip the front under the other two tunings (two test evaluations per front point)")
    q.add_argument("--arch", default="stream", metavar="ARCH",
                   help="accelerator the per-inference energy is priced on: stream (default), tile-vn, tile-near, "
                        "tile-in[,NAME=VALUE...] or a ZigZag accelerator FILE.yaml (docs/accelerators.md)")
    q.add_argument("--batch", type=positive_int, default=None, metavar="B",
                   help="inferences per batch for that energy (default 1)")
    q.add_argument("--json", action="store_true", help="print baseline, front, goal and search figures as JSON")
    from .cmd_nn import add_device_arg
    add_device_arg(q)
    q.add_argument("-o", "--output", required=True, metavar="DIR")
    q.set_defaults(func=_cmd_search)

    q = asub.add_parser("pick", help="the lowest-energy front point within a drop: tile Verilog, tuned model, mapping")
    q.add_argument("folder", metavar="DIR", help="a search's output folder")
    q.add_argument("--max-drop", type=float_range(0), default=0.6, help="test accuracy drop allowed, pp (default 0.6)")
    q.add_argument("-o", "--output", required=True, metavar="HWDIR")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_cmd_pick)


def report_sections(outdir) -> list[tuple[int, str, str]]:
    """Order 65: each model's front (table + PNG) from build/experiments/alwann_*/ when present."""
    from net import alwann
    exp = Path(outdir).parent / "experiments"
    dirs = sorted(d for d in exp.glob("alwann_*") if (d / "front.json").is_file()) if exp.is_dir() else []
    title = "ALWANN: approximate multipliers assigned per layer"
    cmds = "; ".join(f"`{c}`" for _, c in EXPERIMENTS)
    if not dirs:
        return [(65, title, f"No results yet: `make experiments` runs {cmds}; the report includes "
                            f"build/experiments/alwann_*/front.json when they exist.")]
    parts = [f"Made by `make experiments` ({cmds}). NSGA-II over the tiles' multipliers (the 33 points of "
             "`ecomac approx sweep`) and the layer-to-tile map; objectives: accuracy (ALWANN's) or, with "
             "`--objective loss` as used here, the mean cross-entropy on a search split carved out of the "
             "training split (the models reach 100% on training data, where accuracy cannot rank mappings), and "
             "relative multiplier energy (sum over layers of MACs x the "
             "multiplier's activity energy, over the same with mul-array). Test accuracy and drop are on the "
             "held-out test split against the exact 8-bit network (mul-array on every layer); energies per "
             "inference from synth.network (MAC + memory)."]
    for d in dirs:
        try:
            doc = alwann.read_front(d)
            head, rows = alwann.front_table(doc)
            thead, trows = alwann.tuning_table(doc)
            s = doc["search"]
            if (d / "front.png").is_file():
                Path(outdir).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(d / "front.png", Path(outdir) / f"{d.name}.png")
            parts += ["", f"### {d.name}: {Path(doc['setup']['model']).name} on {doc['setup']['data']}", "",
                      "```", format_table(rows, head), "```", "",
                      "Weight tuning side by side (the same mappings, test accuracy %):", "",
                      "```", format_table(trows, thead), "```", "", _goal_line(doc), "",
                      f"{s['evaluated']} mappings in {s['generations']} generations (pop {s.get('pop')}, "
                      f"{s['tiles']} tiles, tuning {s['tuning']}, objective {s.get('objective', 'accuracy')}), "
                      f"{s['seconds']:.0f} s search, "
                      f"{s['seconds_per_evaluation'] or 0:.3f} s per evaluation ({s.get('engine')}), "
                      f"wall {s.get('wall_s', 0):.0f} s.", "",
                      f"![{d.name}]({d.name}.png)"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            parts += ["", f"{d.name}: unreadable ({type(e).__name__}: {str(e)[:100]})"]
    return [(65, title, "\n".join(parts))]
