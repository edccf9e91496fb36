"""Where the network level computes: `--device cpu|cuda` (default: cuda when this PyTorch sees a
CUDA device, else cpu). Results do not depend on it: the kernels' integer accumulations are
bit-exact on every device (net/kernels.py), the float parts follow torch's determinism
(docs/emulation.md)."""
from __future__ import annotations

import torch

__all__ = ["DEVICES", "default_device", "resolve_device", "model_device"]

DEVICES = ("cpu", "cuda")


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(name: str | None) -> torch.device:
    """A validated device name -> torch.device (None: the default); one-line ValueError otherwise."""
    if name is None:
        return torch.device(default_device())
    if name not in DEVICES:
        raise ValueError(f"--device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        built = "built without CUDA" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, no GPU visible"
        raise ValueError(f"--device cuda: this PyTorch ({torch.__version__}, {built}) has no CUDA device; "
                         f"use --device cpu")
    return torch.device(name)


def model_device(model) -> torch.device:
    """The device of a module's first parameter (or buffer); cpu for a module without tensors."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")
