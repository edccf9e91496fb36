"""The shipped models and ecomac checkpoints.

    build(arch, input_shape, num_classes)  arch in ARCHS: mlp, lenet, resnet, mobilenet, vit
    save(model, path, meta)                a checkpoint {arch, input_shape, num_classes, state_dict, meta}
    from_checkpoint(ckpt, path)            (model, meta) of such a checkpoint (net.loader reads every
                                           model format, checkpoints among them)

Layer names are the modules' attribute names (model.named_modules()): mlp fc1, fc2, fc3; lenet conv1,
conv2, fc1, fc2, fc3 — the names a per-layer datapath mapping uses.

MLP: flatten -> fc1 F->128 -> ReLU -> fc2 128->64 -> ReLU -> fc3 64->C.
LeNet: conv1 6@5x5 pad 2 -> ReLU -> pool1 -> conv2 16@5x5 -> ReLU -> pool2 -> flatten -> fc1 ->120
-> ReLU -> fc2 120->84 -> ReLU -> fc3 84->C. On 28x28 this is LeNet-5 (conv2 unpadded, 16x5x5 into
fc1). Small inputs adapt so any H x W >= 1 works: conv2 is padded by 2 (size-preserving) when the
pooled map is smaller than 6 (an unpadded 5x5 would leave less than 2x2), and a 2x2 max-pool whose
input is 1 pixel wide becomes the identity. On 8x8 digits: 8 -> pool 4 -> conv2 (pad 2) 4 -> pool 2,
16x2x2 = 64 into fc1.

The seeds' architectures, narrow so that one FP32 epoch on MNIST-5k stays under a minute on 2 cores
(docs/networks.md has the measured times and MACs):
ResNet: CIFAR-style ResNet-20 (He et al. 2016, section 4.2): conv 3x3 -> BN -> ReLU, then three
stages of three basic blocks (conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU), widths 8/16/32, the
second and third stages starting with stride 2 and a 1x1-conv + BN shortcut; global average pool,
fc. 19 convolutions + 1 fc = 20 layers with weights.
MobileNet: MobileNet-v1 style: conv 3x3 (8) -> BN -> ReLU, then depthwise-separable blocks
(depthwise 3x3 conv, groups = channels -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU) to 16, 32 (s2),
32, 64 (s2), 64 channels; global average pool, fc.
ViT: patches of p x p (p = max(1, min(H, W) // 4): 7 on 28x28, 2 on 8x8; the image is
zero-padded to a multiple of p) embedded by a p x p stride-p conv to dim 32, a class token and
learned position embeddings, 2 pre-norm encoder blocks (LayerNorm -> multi-head attention, 2
heads, written as `q @ k.transpose(-2, -1)` and `a @ v` -> residual; LayerNorm -> MLP 32->64->32
with GELU -> residual), LayerNorm of the class token, fc.
"""
from __future__ import annotations

import io
import math
import os

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ARCHS", "build", "save", "from_checkpoint", "MLP", "LeNet", "ResNet", "MobileNet", "ViT",
           "input_shape_of"]

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
    arch = "mlp"

    def __init__(self, input_shape, num_classes: int, hidden=(128, 64)):
        super().__init__()
        self.input_shape = _shape(input_shape)
        self.num_classes = num_classes
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


def _image_shape(input_shape, arch: str) -> tuple:
    shape = _shape(input_shape)
    if len(shape) != 3:
        raise ValueError(f"{arch} needs a C x H x W input shape, got {shape} (use mlp for flat features)")
    return shape


def _pool(size: int) -> nn.Module:
    # A 2x2 pool over a 1-pixel map would have no output; keep the pixel.
    return nn.MaxPool2d(2) if size >= 2 else nn.Identity()


class LeNet(nn.Module):
    """LeNet-5-like CNN for C x H x W inputs (see the module docstring for small inputs)."""
    arch = "lenet"

    def __init__(self, input_shape, num_classes: int):
        super().__init__()
        shape = _image_shape(input_shape, "lenet")
        self.input_shape = shape
        self.num_classes = num_classes
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


class _Basic(nn.Module):
    """ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN plus the shortcut (1x1 conv + BN when the shape
    changes), then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet-20 (3 stages x 3 basic blocks), widths `widths` (see the module docstring)."""
    arch = "resnet"

    def __init__(self, input_shape, num_classes: int, widths=(8, 16, 32), blocks: int = 3):
        super().__init__()
        self.input_shape = _image_shape(input_shape, "resnet")
        self.num_classes = num_classes
        c = self.input_shape[0]
        self.conv = nn.Conv2d(c, widths[0], 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(widths[0])
        stages, cin = [], widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks):
                stages.append(_Basic(cin, w, 2 if (i > 0 and b == 0) else 1))
                cin = w
        self.blocks = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(self.flatten(self.pool(x)))


def _conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU())


class MobileNet(nn.Module):
    """MobileNet-v1 style: a 3x3 stem, then depthwise-separable blocks (see the module docstring)."""
    arch = "mobilenet"
    PLAN = ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1))      # (pointwise channels, depthwise stride)

    def __init__(self, input_shape, num_classes: int, stem: int = 8):
        super().__init__()
        self.input_shape = _image_shape(input_shape, "mobilenet")
        self.num_classes = num_classes
        self.stem = _conv_bn_relu(self.input_shape[0], stem, 3)
        blocks, cin = [], stem
        for cout, stride in self.PLAN:
            blocks.append(nn.Sequential(_conv_bn_relu(cin, cin, 3, stride, groups=cin),     # depthwise
                                        _conv_bn_relu(cin, cout, 1)))                       # pointwise
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.blocks(self.stem(x)))))


class Attention(nn.Module):
    """Multi-head self-attention with its two activation x activation products written out."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = (q @ k.transpose(-2, -1)) * self.scale
        a = a.softmax(dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(b, n, d))


class _Encoder(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    """A small vision Transformer (see the module docstring)."""
    arch = "vit"

    def __init__(self, input_shape, num_classes: int, dim: int = 32, depth: int = 2, heads: int = 2,
                 hidden: int = 64):
        super().__init__()
        self.input_shape = _image_shape(input_shape, "vit")
        self.num_classes = num_classes
        c, h, w = self.input_shape
        p = max(1, min(h, w) // 4)
        self.patch = p
        self.pad = (0, (-w) % p, 0, (-h) % p)
        tokens = math.ceil(h / p) * math.ceil(w / p)
        self.embed = nn.Conv2d(c, dim, p, p)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[_Encoder(dim, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.embed(F.pad(x, self.pad)).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        x = self.blocks(x)
        return self.fc(self.norm(x[:, 0]))


_CLASSES = {cls.arch: cls for cls in (MLP, LeNet, ResNet, MobileNet, ViT)}


def build(arch: str, input_shape, num_classes: int) -> nn.Module:
    """A freshly initialized model (initialization follows torch's global seed)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}: use one of {', '.join(ARCHS)}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    return _CLASSES[arch](input_shape, num_classes)


def arch_of(model: nn.Module):
    """The shipped architecture name of `model` (its exact class), or None."""
    arch = getattr(type(model), "arch", None)
    return arch if _CLASSES.get(arch) is type(model) else None


def input_shape_of(model: nn.Module, meta: dict | None = None):
    """The per-sample input shape a model declares (shipped models, or a checkpoint's meta), or None."""
    if meta and meta.get("input_shape"):
        return tuple(meta["input_shape"])
    shape = getattr(model, "input_shape", None)
    return tuple(shape) if isinstance(shape, (tuple, list)) else None


def save(model: nn.Module, path, meta: dict | None = None) -> None:
    """Write a checkpoint {arch, input_shape, num_classes, state_dict, meta} atomically.
    Only the shipped architectures (build) can be checkpointed this way (net.loader.save_model
    writes any other model as a torch.export program)."""
    arch = arch_of(model)
    if arch is None:
        raise ValueError(f"save: only the shipped architectures ({', '.join(ARCHS)}) are checkpointed, "
                         f"got {type(model).__name__} (net.loader.save_model writes it as a .pt2 program)")
    ckpt = {"arch": arch, "input_shape": list(model.input_shape), "num_classes": int(model.num_classes),
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


def from_checkpoint(ckpt: dict, path: str):
    """(model in eval mode, meta) of a checkpoint dict written by save; one-line ValueError otherwise."""
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

