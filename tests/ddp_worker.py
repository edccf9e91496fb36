"""One process of tests/test_distributed.py's torchrun run (not a test module): trains the MLP on
digits for one epoch with int8 QAT and writes its first step's integer accumulations of fc1 and
the trained weights to OUT/rank{R}.pt. `python tests/ddp_worker.py OUT` without torchrun is the
single-process run of the same global batches."""
import sys

import torch

from net import data, models
from net.train import train


def run(out: str) -> None:
    ds = data.load("digits", seed=0)
    torch.manual_seed(0)
    model = models.build("mlp", ds.input_shape, ds.num_classes)
    first = {}

    def grab(mod, inp, outp):
        if "acc" not in first:
            first["acc"] = mod.core.last_accumulations.clone()

    import net.qat
    orig = net.qat.QatMode.convert

    def convert(self, m):
        q = orig(self, m)
        q.fc1.register_forward_hook(grab)
        return q
    net.qat.QatMode.convert = convert
    trained, hist = train(model, ds, datapath="int8", epochs=1, batch_size=64, seed=0, progress=False,
                          device="cpu")
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    torch.save({"acc": first["acc"], "state": {k: v.detach().cpu() for k, v in trained.state_dict().items()},
                "loss": hist["epochs"][0]["loss"], "steps": hist["steps_per_epoch"]}, f"{out}/rank{rank}.pt")
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    run(sys.argv[1])
