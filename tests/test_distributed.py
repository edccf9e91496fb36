"""Training under torch.distributed (net/distributed.py): two CPU processes (torchrun, gloo) train
the MLP on digits for one epoch on int8 (QAT) and give the single-process run's result on the same
global batches - the first step's integer accumulations identical (each process holds its rows of
the global batch, quantized at the global batch's scale), the trained weights and the epoch loss
within float rounding (DDP's gradient average sums in another order)."""
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def test_two_processes_equal_one(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    single = tmp_path / "single"
    single.mkdir()
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "ddp_worker.py"), str(single)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{i}.pt") for i in (0, 1)]
    one = torch.load(single / "rank0.pt")
    # step 1: the two shards' accumulations are the single run's rows (32 + 32 of the global 64)
    assert ranks[0]["acc"].shape[0] == ranks[1]["acc"].shape[0] == 32
    assert torch.equal(torch.cat([ranks[0]["acc"], ranks[1]["acc"]]), one["acc"])
    # after an epoch: both replicas equal, and equal to the single run within float rounding
    for k, v in one["state"].items():
        assert torch.equal(ranks[0]["state"][k], ranks[1]["state"][k]), k
        assert torch.allclose(ranks[0]["state"][k], v, rtol=1e-4, atol=1e-5), (k, (ranks[0]["state"][k] - v).abs().max())
    assert abs(ranks[0]["loss"] - one["loss"]) < 1e-4 * abs(one["loss"])
