"""`make bench` figures for ALS-POTQ training (mfmac: all three products of every covered product
on the MF-MAC, net/potq*.py) on the seeds' networks - LeNet, ResNet, MobileNet, ViT on MNIST-5k -
as the ratio of a training step to the same model's FP32 step measured in the same process.

A step is what net.train.train runs per batch (forward, cross-entropy, backward, Adam, the mode's
after_step) on the model as `nn train` makes it (net.loader.canonical: every product a module, attention's included; then
net.graph.convert_for_mode); FP32 and
ALS-POTQ steps alternate on the same batches, so both see the same machine load; the ratio is the
median of the paired ratios, the step times the medians. An epoch of MNIST-5k is 63 such steps at
batch 64 (plus a test pass), so the epoch ratio follows the step ratio."""
from __future__ import annotations

import time

import torch

ARCHS = ("lenet", "resnet", "mobilenet", "vit")
DATA = "mnist"


def _build(arch, ds, spec, device):
    from net import loader, models
    from net.graph import convert_for_mode
    from net.train import make_mode
    torch.manual_seed(0)
    model = loader.canonical(models.build(arch, ds.input_shape, ds.num_classes), ds.x_train[:1], fold_bn=False)
    model = model.to(device)
    mode = make_mode(None if spec == "fp32" else spec, None)
    if mode is not None:
        model = convert_for_mode(model, mode).to(device)
    return model, mode, torch.optim.Adam(model.parameters(), 1e-3)


def _step(state, x, y, device) -> float:
    model, mode, opt = state
    t0 = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if mode is not None:
        mode.after_step(model)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def bench_arch(arch: str, ds, spec: str = "mfmac", steps: int = 6, batch_size: int = 64, device="cpu") -> dict:
    """{model, datapath, fp32_step_ms, step_ms, step_ratio, steps}: `steps` paired steps after one
    warm-up step each."""
    n = batch_size * (steps + 1)
    x = torch.from_numpy(ds.x_train[:n]).float().to(device)
    y = torch.from_numpy(ds.y_train[:n]).long().to(device)
    fp, q = _build(arch, ds, "fp32", device), _build(arch, ds, spec, device)
    tf, tq = [], []
    for s in range(steps + 1):
        xb, yb = x[s * batch_size:(s + 1) * batch_size], y[s * batch_size:(s + 1) * batch_size]
        a, b = _step(fp, xb, yb, device), _step(q, xb, yb, device)
        if s:
            tf.append(a)
            tq.append(b)
    med = lambda v: sorted(v)[len(v) // 2]            # noqa: E731
    return {"model": f"{arch}/{ds.name}", "datapath": spec, "device": str(device), "batch_size": batch_size,
            "steps": steps, "fp32_step_ms": 1e3 * med(tf), "step_ms": 1e3 * med(tq),
            "step_ratio": med([b / a for a, b in zip(tf, tq)])}


def table(rows: list[dict]) -> str:
    from .table import format_table
    body = [[r["model"], r["datapath"], f"{r['fp32_step_ms']:.1f}", f"{r['step_ms']:.1f}", f"{r['step_ratio']:.2f}"]
            for r in rows]
    dev = rows[0]["device"] if rows else "cpu"
    return format_table(body, ["model", "datapath", "fp32 step ms", "step ms", "step ratio"],
                        title=f"ALS-POTQ training step vs FP32, same model, same batches, paired, on {dev} "
                              f"(batch {rows[0]['batch_size'] if rows else 64}, median of {rows[0]['steps'] if rows else 0})")


def run(outdir, device="cpu", archs=ARCHS, steps: int = 6) -> dict:
    import os
    import sys

    from net import data
    ds = data.load(DATA, seed=0)
    rows = []
    for arch in archs:
        r = bench_arch(arch, ds, steps=steps, device=device)
        print(f"potq bench: {arch}: {r['step_ratio']:.2f}x FP32 ({r['step_ms']:.1f} ms/step vs "
              f"{r['fp32_step_ms']:.1f})", file=sys.stderr, flush=True)
        rows.append(r)
    print(table(rows), file=sys.stderr)
    return {"rows": rows, "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
            "torch": torch.__version__}
