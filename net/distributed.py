"""Training across processes: `torchrun --nproc_per_node=N -m ecomac nn train ...` runs
net.train.train under torch.distributed with DistributedDataParallel (gloo on CPUs, NCCL on GPUs).

Every process draws the same sample order (the run's seed); each global batch of `batch_size`
samples is split into N contiguous shards, one per process. The loss of a shard is its summed
cross-entropy / the global batch's size * N, so DDP's gradient average is exactly the gradient of
the global batch's mean loss, as one process computes it. Data-dependent quantization scales (a
per-tensor activation or error scale computed from the batch: QAT's, ALS-POTQ's) are the global
batch's: `sync_max` all-reduces each such max |value| (on its own process group, so its
collectives never interleave with DDP's gradient buckets) while a training step runs
(`synced_scales`). With that, the integer accumulations of every product equal the single-process
run's rows of the same global batch; the float parts (the gradient all-reduce's summation order)
agree within float rounding (tests/test_distributed.py). Calibrated scales (net.layers) are the
same on every process already. BatchNorm statistics stay per process (no SyncBatchNorm).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Dist", "world_size_from_env", "setup", "shard", "wrap", "all_sum", "is_main", "synced_scales",
           "sync_max"]


@dataclass
class Dist:
    rank: int
    world: int
    device: torch.device
    scale_group: object = None


def world_size_from_env() -> int:
    """WORLD_SIZE as torchrun sets it (1 when not launched by torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def setup(device: torch.device) -> Dist | None:
    """Join the process group torchrun describes (once per process); None for a single process."""
    if world_size_from_env() <= 1:
        return None
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    group = dist.new_group(backend="gloo")           # scale syncs: host scalars, their own ordering
    return Dist(dist.get_rank(), dist.get_world_size(), device, group)


def shard(idx: torch.Tensor, d: Dist | None) -> torch.Tensor:
    """This process's contiguous share of a global batch's sample indices."""
    return idx if d is None else idx.tensor_split(d.world)[d.rank]


def wrap(model: torch.nn.Module, d: Dist | None):
    """DistributedDataParallel around `model` (the model itself for a single process)."""
    if d is None:
        return model
    from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)


def all_sum(values, d: Dist | None) -> list[float]:
    """Sums of host numbers over the processes."""
    if d is None:
        return list(values)
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    dist.all_reduce(t, group=d.scale_group)
    return t.tolist()


def is_main() -> bool:
    return not dist.is_available() or not dist.is_initialized() or dist.get_rank() == 0


_SYNC: list = []         # the Dist whose training step is running (scale syncs on)


@contextlib.contextmanager
def synced_scales(d: Dist | None):
    """Within: data-dependent quantization scales are the global batch's (sync_max)."""
    if d is None:
        yield
        return
    _SYNC.append(d)
    try:
        yield
    finally:
        _SYNC.pop()


def sync_max(t: torch.Tensor) -> torch.Tensor:
    """The elementwise max of `t` over the processes while a synced training step runs (t itself
    otherwise): how a per-tensor max |value| becomes the global batch's."""
    if not _SYNC:
        return t
    host = t.detach().to("cpu", torch.float64).contiguous()
    dist.all_reduce(host, op=dist.ReduceOp.MAX, group=_SYNC[-1].scale_group)
    return host.to(device=t.device, dtype=t.dtype)
