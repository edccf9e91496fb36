"""The shipped models (an MLP and a LeNet-5-like CNN) and model files.

    build(arch, input_shape, num_classes)  arch "mlp" or "lenet"
    save(model, path, meta)                a checkpoint {arch, input_shape, num_classes, state_dict, meta}
    load(path) -> (model, meta)            that checkpoint, a whole pickled torch.nn.Module, TorchScript, or
                                           FILE.onnx (run by net.importer.OnnxModule)

Layer names are the modules' attribute names (model.named_modules()): mlp fc1, fc2, fc3; lenet conv1,
conv2, fc1, fc2, fc3 — the names a per-layer datapath mapping uses.

MLP: flatten -> fc1 F->128 -> ReLU -> fc2 128->64 -> ReLU -> fc3 64->C.
LeNet: conv1 6@5x5 pad 2 -> ReLU -> pool1 -> conv2 16@5x5 -> ReLU -> pool2 -> flatten -> fc1 ->120
-> ReLU -> fc2 120->84 -> ReLU -> fc3 84->C. On 28x28 this is LeNet-5 (conv2 unpadded, 16x5x5 into
fc1). Small inputs adapt so any H x W >= 1 works: conv2 is padded by 2 (size-preserving) when the
pooled map is smaller than 6 (an unpadded 5x5 would leave less than 2x2), and a 2x2 max-pool whose
input is 1 pixel wide becomes the identity. On 8x8 digits: 8 -> pool 4 -> conv2 (pad 2) 4 -> pool 2,
16x2x2 = 64 into fc1.
"""
from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile

import torch
from torch import nn

__all__ = ["ARCHS", "build", "save", "load", "MLP", "LeNet", "input_shape_of"]

from . import ARCHS  # noqa: E402  (the torch-free catalogue the CLI reads)


def _shape(input_shape) -> tuple:
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input shape must be a tuple of positive integers, got {input_shape!r}") from None
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"input shape must be a tuple of positive integers, got {input_shape!r}")
    return shape


class MLP(nn.Module):
    """flatten -> F->128 -> ReLU -> 128->64 -> ReLU -> 64->C."""

    def __init__(self, input_shape, num_classes: int, hidden=(128, 64)):
        super().__init__()
        self.input_shape = _shape(input_shape)
        features = 1
        for d in self.input_shape:
            features *= d
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(features, hidden[0])
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(hidden[1], num_classes)

    def forward(self, x):
        return self.fc3(self.relu2(self.fc2(self.relu1(self.fc1(self.flatten(x))))))


def _pool(size: int) -> nn.Module:
    # A 2x2 pool over a 1-pixel map would have no output; keep the pixel.
    return nn.MaxPool2d(2) if size >= 2 else nn.Identity()


class LeNet(nn.Module):
    """LeNet-5-like CNN for C x H x W inputs (see the module docstring for small inputs)."""

    def __init__(self, input_shape, num_classes: int):
        super().__init__()
        shape = _shape(input_shape)
        if len(shape) != 3:
            raise ValueError(f"lenet needs a C x H x W input shape, got {shape} (use mlp for flat features)")
        self.input_shape = shape
        c, h, w = shape
        self.conv1 = nn.Conv2d(c, 6, 5, padding=2)            # size-preserving
        self.relu1 = nn.ReLU()
        self.pool1 = _pool(min(h, w))
        h, w = (h // 2, w // 2) if isinstance(self.pool1, nn.MaxPool2d) else (h, w)
        pad2 = 0 if min(h, w) >= 6 else 2
        self.conv2 = nn.Conv2d(6, 16, 5, padding=pad2)
        h, w = h + 2 * pad2 - 4, w + 2 * pad2 - 4
        self.relu2 = nn.ReLU()
        self.pool2 = _pool(min(h, w))
        h, w = (h // 2, w // 2) if isinstance(self.pool2, nn.MaxPool2d) else (h, w)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * h * w, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        return self.fc3(self.relu4(self.fc2(x)))


def build(arch: str, input_shape, num_classes: int) -> nn.Module:
    """A freshly initialized model (initialization follows torch's global seed)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}: use {' or '.join(ARCHS)}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    return (MLP if arch == "mlp" else LeNet)(input_shape, num_classes)


def _arch_of(model: nn.Module):
    return "mlp" if type(model) is MLP else "lenet" if type(model) is LeNet else None


def input_shape_of(model: nn.Module, meta: dict | None = None):
    """The per-sample input shape a model declares (shipped models, or a checkpoint's meta), or None."""
    if meta and meta.get("input_shape"):
        return tuple(meta["input_shape"])
    return getattr(model, "input_shape", None)


def save(model: nn.Module, path, meta: dict | None = None) -> None:
    """Write a checkpoint {arch, input_shape, num_classes, state_dict, meta} atomically.
    Only the shipped architectures (build) can be checkpointed this way; save other modules whole."""
    arch = _arch_of(model)
    if arch is None:
        raise ValueError(f"save: only the shipped architectures ({', '.join(ARCHS)}) are checkpointed, "
                         f"got {type(model).__name__} (save it whole with torch.save or as TorchScript)")
    ckpt = {"arch": arch, "input_shape": list(model.input_shape), "num_classes": int(model.fc3.out_features),
            "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "meta": dict(meta or {})}
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _from_checkpoint(ckpt: dict, path: str):
    missing = [k for k in ("arch", "input_shape", "num_classes", "state_dict") if k not in ckpt]
    if missing:
        raise ValueError(f"model {path}: a checkpoint needs arch, input_shape, num_classes and state_dict; "
                         f"missing {', '.join(missing)}")
    arch = ckpt["arch"]
    if arch not in ARCHS:
        raise ValueError(f"model {path}: unknown architecture {arch!r} (known: {', '.join(ARCHS)})")
    try:
        model = build(arch, ckpt["input_shape"], int(ckpt["num_classes"]))
    except (TypeError, ValueError) as e:
        raise ValueError(f"model {path}: {e}") from None
    sd = ckpt["state_dict"]
    if not isinstance(sd, dict):
        raise ValueError(f"model {path}: state_dict is a {type(sd).__name__}, not a dict of tensors")
    want = model.state_dict()
    if set(sd) != set(want):
        extra, lost = sorted(set(sd) - set(want)), sorted(set(want) - set(sd))
        raise ValueError(f"model {path}: architecture mismatch: the state_dict does not fit {arch} "
                         f"(unexpected {extra[:3]}, missing {lost[:3]})")
    for k, v in want.items():
        if not isinstance(sd[k], torch.Tensor) or tuple(sd[k].shape) != tuple(v.shape):
            got = tuple(sd[k].shape) if isinstance(sd[k], torch.Tensor) else type(sd[k]).__name__
            raise ValueError(f"model {path}: architecture mismatch: {k} is {got}, {arch} with input "
                             f"{tuple(ckpt['input_shape'])} and {ckpt['num_classes']} classes needs {tuple(v.shape)}")
    model.load_state_dict(sd)
    meta = dict(ckpt.get("meta") or {})
    meta.update(arch=arch, input_shape=list(model.input_shape), num_classes=int(ckpt["num_classes"]))
    return model.eval(), meta


def _is_torch_file(path: str) -> bool:
    """torch.save's zip archive, or its legacy pickle format (protocol 2+ starts with 0x80)."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"


def _is_torchscript(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") or n.split("/", 1)[-1].startswith("code/") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load(path) -> tuple[nn.Module, dict]:
    """(model in eval mode, meta) from a checkpoint (save), a whole pickled nn.Module, TorchScript,
    or an ONNX file (FILE.onnx: net.importer.OnnxModule, its Conv/Gemm/MatMul as nn layers).

    A checkpoint is read with torch.load(weights_only=True) (tensors and plain values only). A
    whole pickled Module cannot be read that way; only when that safe read fails is the file
    unpickled in full (weights_only=False), which runs code named in the file: load only trusted
    model files. meta holds arch/input_shape/num_classes where known (checkpoints; shipped classes)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"model file {path} does not exist")
    if path.endswith(".onnx"):
        from .importer import onnx_module
        model = onnx_module(path)
        meta = {"format": "onnx"}
        if model.input_shape is not None:
            meta["input_shape"] = list(model.input_shape)
        return model, meta
    if _is_torchscript(path):
        try:
            with warnings.catch_warnings():         # torch.jit.load's deprecation notice is not the user's
                warnings.simplefilter("ignore", DeprecationWarning)
                model = torch.jit.load(path, map_location="cpu")
        except Exception as e:      # torch raises RuntimeError subclasses of many kinds
            raise ValueError(f"model {path}: unreadable TorchScript ({str(e).splitlines()[0][:120]})") from None
        return model.eval(), {"format": "torchscript"}
    not_model = ValueError(f"model {path}: not a model file (expected a checkpoint from `ecomac nn train`, "
                           f"a whole torch.save'd nn.Module, or TorchScript)")
    if not _is_torch_file(path):
        raise not_model
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" not in str(e):
            raise not_model from None
        obj = None      # it names classes: a whole pickled Module (or some other pickled object)
    except Exception:
        raise not_model from None
    if obj is None:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:
            raise ValueError(f"model {path}: not loadable as a pickled nn.Module "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})") from None
        if not isinstance(obj, nn.Module):
            raise ValueError(f"model {path}: holds a {type(obj).__name__}, not an nn.Module")
        meta = {"format": "module"}
        arch = _arch_of(obj)
        if arch:
            meta.update(arch=arch, input_shape=list(obj.input_shape), num_classes=int(obj.fc3.out_features))
        return obj.eval(), meta
    if isinstance(obj, dict) and "state_dict" in obj:
        return _from_checkpoint(obj, path)
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"model {path}: a bare state_dict has no architecture; save with net.models.save "
                         f"(or `ecomac nn train`) to store arch, input_shape and num_classes with it")
    raise ValueError(f"model {path}: holds a {type(obj).__name__}, not a model (expected a checkpoint from "
                     f"`ecomac nn train`, a whole torch.save'd nn.Module, or TorchScript)")
