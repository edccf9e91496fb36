"""`make bench` figures for the network level on the torch kernels: per datapath, one training
epoch and one evaluation of the MLP on digits and the LeNet on MNIST-5k, each as a ratio to the
same model's FP32 run measured in the same process (goals: epoch <= 3x, eval <= 2x on the CPU).

An epoch is net.train.train(epochs=1) as `nn train` times it (its steps and its test-accuracy
pass); an evaluation is what `nn eval` does per datapath: net.layers.convert (calibration on 512
training samples) and the test split's accuracy. Training on mfmac is ALS-POTQ (net/potq.py), on
int8 / asm / approx QAT (net/qat.py); the weights are seeded, not trained (speed does not depend on
them). `device`: where everything runs (cpu, cuda)."""
from __future__ import annotations

import time

import torch

MODELS = (("mlp", "digits"), ("lenet", "mnist"))
DATAPATHS = ("int8", "mfmac", "asm,alphabet=1/3", "approx:mul-drum,k=4", "approx:mul-mitchell")
EPOCH_GOAL, EVAL_GOAL = 3.0, 2.0


def _epoch_s(arch, ds, spec, device, batch_size=64) -> float:
    from net import models
    from net.train import train
    torch.manual_seed(0)
    model = models.build(arch, ds.input_shape, ds.num_classes)
    _, hist = train(model, ds, datapath=None if spec == "fp32" else spec, epochs=1, batch_size=batch_size,
                    progress=False, device=device)
    return hist["epochs"][0]["seconds"]


def _eval_s(model, ds, spec, calib, device) -> float:
    from net import layers
    from net.evaluate import accuracy
    t0 = time.perf_counter()
    q = model if spec == "fp32" else layers.convert(model, spec, calib=calib)
    accuracy(q, ds.x_test, ds.y_test, 256)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def bench_model(arch: str, data_name: str, specs=DATAPATHS, device="cpu", rounds: int = 2, log=None) -> list[dict]:
    """Rows {model, datapath, epoch_s, fp32_epoch_s, epoch_ratio, eval_s, fp32_eval_s, eval_ratio}: each
    ratio the median of `rounds` paired runs (FP32, then the datapath, back to back)."""
    from net import data, models
    from net.evaluate import calibration_batch
    ds = data.load(data_name, seed=0)
    torch.manual_seed(0)
    model = models.build(arch, ds.input_shape, ds.num_classes).eval().to(device)
    calib = calibration_batch(ds, 512, 0)
    _eval_s(model, ds, "fp32", calib, device)                   # warm-up: data, kernels, caches
    rows = []
    for spec in specs:
        _eval_s(model, ds, spec, calib, device)                 # compile / plan outside the timing
        ep, ev = [], []
        for _ in range(rounds):
            ev.append((_eval_s(model, ds, "fp32", calib, device), _eval_s(model, ds, spec, calib, device)))
            ep.append((_epoch_s(arch, ds, "fp32", device), _epoch_s(arch, ds, spec, device)))
        med = lambda pairs: sorted(b / a for a, b in pairs)[len(pairs) // 2]     # noqa: E731
        row = {"model": f"{arch}/{data_name}", "datapath": spec, "device": str(device),
               "epoch_s": min(b for _, b in ep), "fp32_epoch_s": min(a for a, _ in ep), "epoch_ratio": med(ep),
               "eval_s": min(b for _, b in ev), "fp32_eval_s": min(a for a, _ in ev), "eval_ratio": med(ev)}
        row["meets_goal"] = row["epoch_ratio"] <= EPOCH_GOAL and row["eval_ratio"] <= EVAL_GOAL
        rows.append(row)
        if log:
            log(f"{arch}/{data_name} {spec}: epoch {row['epoch_ratio']:.2f}x FP32 ({row['epoch_s']:.2f} s), "
                f"eval {row['eval_ratio']:.2f}x ({row['eval_s']:.2f} s)")
    return rows


def table(rows: list[dict]) -> str:
    from .table import format_table
    body = [[r["model"], r["datapath"], f"{r['fp32_epoch_s']:.2f}", f"{r['epoch_s']:.2f}", f"{r['epoch_ratio']:.2f}",
             f"{r['fp32_eval_s']:.2f}", f"{r['eval_s']:.2f}", f"{r['eval_ratio']:.2f}",
             "yes" if r["meets_goal"] else "no"] for r in rows]
    dev = rows[0]["device"] if rows else "cpu"
    return format_table(body, ["model", "datapath", "fp32 epoch s", "epoch s", "epoch ratio", "fp32 eval s", "eval s",
                               "eval ratio", f"goal (<= {EPOCH_GOAL:g}x / {EVAL_GOAL:g}x)"],
                        title=f"training epoch and evaluation on the datapaths vs FP32, same model, same process, "
                              f"on {dev} (ratio: median of paired rounds; s: best round)")


def run(outdir, device="cpu") -> dict:
    import os
    import sys
    log = lambda m: print(f"nn bench: {m}", file=sys.stderr, flush=True)     # noqa: E731
    rows = [r for arch, d in MODELS for r in bench_model(arch, d, device=device, log=log)]
    print(table(rows), file=sys.stderr)
    return {"rows": rows, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(), "torch": torch.__version__}
