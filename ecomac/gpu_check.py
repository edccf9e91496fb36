"""`make gpu-check` (python -m ecomac.gpu_check [-o build/gpu_check]): everything the CUDA path
promises, on a machine with a CUDA GPU, in a few minutes. Not part of `make test` (no GPU there).

1. the CUDA-parametrized tests (the same comparisons `make test` runs on CPU tensors, now on CUDA
   tensors): every kernel and datapath against matmul_definition, batched and grouped / depthwise /
   dilated products, the torch table formulation, the torch quantizers against the golden ones,
   emulated layers and EmuMatmul against the NumPy reference - pytest -k cuda;
2. CPU vs CUDA on the same inputs, bit for bit: the kernels' accumulations for every benchmarked
   datapath at a bench-sized shape and a LeNet-sized grouped convolution; a QAT training step's
   integer accumulations (and its float gradients within rounding);
3. the benches on the GPU: `emulate --bench --device cuda` (kernel / cuBLAS float32 ratios, TF32
   off) and bench_nn (training epoch and evaluation vs FP32 on the GPU).
Results: OUT/gpu_check.json and the tables on stdout; exit 1 when a comparison fails."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

TESTS = ("tests/test_kernels.py", "tests/test_quant.py", "tests/test_nn_layers_device.py")


def _compare_cpu_cuda() -> list[dict]:
    import numpy as np
    import torch

    from net import kernels
    from net.datapath import parse
    from net.emulate import BENCH_DATAPATHS, _bench_operands
    rng = np.random.default_rng(0)
    rows = []
    specs = [s for s, _ in BENCH_DATAPATHS if not s.startswith("lut:")] + ["mfmac,exp_bits=5", "approx:mul-bam,vbl=5"]
    for spec in specs:
        dp = parse(spec)
        X, W = _bench_operands(dp, (1024, 1152, 64), rng)
        cpu = kernels.matmul(dp, torch.from_numpy(X), torch.from_numpy(W))
        gpu = kernels.matmul(dp, torch.from_numpy(X).cuda(), torch.from_numpy(W).cuda()).cpu()
        Xc = torch.from_numpy(_bench_operands(dp, (8 * 14 * 14, 32, 1), rng)[0].reshape(8, 14, 14, 32).transpose(0, 3, 1, 2).copy())
        Wc = torch.from_numpy(_bench_operands(dp, (1, 32 * 3 * 3, 1), rng)[1].reshape(32, 1, 3, 3).copy())
        cc = kernels.conv2d(dp, Xc, Wc, padding=1, groups=32)
        gc = kernels.conv2d(dp, Xc.cuda(), Wc.cuda(), padding=1, groups=32).cpu()
        rows.append({"datapath": spec, "matmul_equal": bool(torch.equal(cpu, gpu)),
                     "depthwise_conv_equal": bool(torch.equal(cc, gc))})
    return rows


def _qat_step(device: str, spec: str, grad: str):
    import torch
    from torch import nn

    from net.train import make_mode
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, groups=1), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8),
                          nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    mode = make_mode(spec, grad=grad)
    m = mode.convert(model).to(device)
    x = torch.randn(16, 3, 8, 8, device=device)
    loss = m(x).square().mean()
    loss.backward()
    accs = [layer.core.last_accumulations.cpu() for layer in mode.layers.values()]
    grads = [p.grad.cpu() for p in m.parameters()]
    return accs, grads


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ecomac.gpu_check")
    ap.add_argument("-o", "--output", default="build/gpu_check")
    ap.add_argument("--skip-bench", action="store_true", help="the comparisons only")
    args = ap.parse_args(argv)
    import torch
    if not torch.cuda.is_available():
        print(f"ecomac: error: gpu-check needs a CUDA device (torch {torch.__version__} sees none)", file=sys.stderr)
        return 2
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(f"gpu-check on {doc['gpu']} (torch {doc['torch']}, CUDA {doc['cuda']})", flush=True)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-k", "cuda", *TESTS])
    doc["tests"] = {"returncode": r.returncode, "seconds": round(time.perf_counter() - t0, 1)}
    cmp = _compare_cpu_cuda()
    doc["cpu_vs_cuda"] = cmp
    for spec, grad in (("int8", "ste"), ("approx:mul-mitchell", "table"), ("asm,alphabet=1/3", "ste")):
        (ca, cg), (ga, gg) = _qat_step("cpu", spec, grad), _qat_step("cuda", spec, grad)
        cmp.append({"datapath": f"qat {spec} grad={grad}", "accumulations_equal": all(map(torch.equal, ca, ga)),
                    "grads_close": all(torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(cg, gg))})
    from net import kernels
    doc["tf32_off"] = not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    kernels.exact_floats()
    ok = r.returncode == 0 and doc["tf32_off"] and all(all(v for k, v in c.items() if k != "datapath") for c in cmp)
    for c in cmp:
        print("  " + ", ".join(f"{k}={v}" for k, v in c.items()))
    if not args.skip_bench:
        from net.emulate import bench

        from . import bench_nn
        from .cmd_emulate import bench_table
        rows = bench(repeats=3, device="cuda")
        print(bench_table(rows))
        nn_rows = [x for arch, d in bench_nn.MODELS for x in bench_nn.bench_model(arch, d, device="cuda", rounds=1)]
        print(bench_nn.table(nn_rows))
        doc["emulate_bench"], doc["nn_bench"] = rows, nn_rows
        ok = ok and all(x["bit_exact"] for x in rows)
    doc["ok"] = ok
    (out / "gpu_check.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"gpu-check: {'all comparisons bit-exact' if ok else 'FAILED'}; {out / 'gpu_check.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
