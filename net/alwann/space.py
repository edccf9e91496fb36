"""The ALWANN search space: the model's mappable layers (`model_layers`) and the chromosome
(`SearchSpace`: T multiplier genes, then one tile gene per layer)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


def model_layers(model: nn.Module, input_shape) -> list[dict]:
    """[{name, kind, macs (per sample), net_layer (synth.network layer dict)}] of every Linear/Conv2d,
    in execution order (found with forward hooks on one zero sample)."""
    found = []
    hooks = []

    def hook(name):
        def f(mod, inp, out):
            x = inp[0]
            if isinstance(mod, nn.Linear):
                tokens = int(np.prod(x.shape[1:-1])) if x.dim() > 2 else 1
                found.append({"name": name, "kind": "linear", "macs": mod.in_features * mod.out_features * tokens,
                              "net_layer": {"kind": "linear", "name": name, "in": mod.in_features,
                                            "out": mod.out_features, "tokens": tokens}})
            else:
                kh, kw = mod.kernel_size
                ho, wo = out.shape[-2:]
                found.append({"name": name, "kind": "conv",
                              "macs": mod.out_channels * mod.in_channels * kh * kw * int(ho) * int(wo),
                              "net_layer": {"kind": "conv", "name": name, "in_ch": mod.in_channels,
                                            "out_ch": mod.out_channels, "kernel": [kh, kw], "H": int(x.shape[-2]),
                                            "W": int(x.shape[-1]), "stride": int(mod.stride[0]),
                                            "padding": int(mod.padding[0])}})
        return f

    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            hooks.append(m.register_forward_hook(hook(name)))
    try:
        was = model.training
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), dtype=torch.float32))
        model.train(was)
    finally:
        for h in hooks:
            h.remove()
    names = [f["name"] for f in found]
    if len(set(names)) != len(names):
        raise ValueError("the model runs a Linear/Conv2d layer more than once per inference; ALWANN maps each "
                         "layer to one tile, so every layer must run once")
    if not found:
        raise ValueError("the model has no Linear or Conv2d layer to map onto multipliers")
    return found


@dataclass(frozen=True)
class SearchSpace:
    layers: tuple          # layer names, execution order
    macs: tuple            # MACs per sample per layer
    specs: tuple           # candidate specs (energy order)
    energies: tuple        # candidate multiplier energies (pJ)
    tiles: int
    exact: int             # index of mul-array among the candidates

    @property
    def n_var(self) -> int:
        return self.tiles + len(self.layers)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        xl = np.zeros(self.n_var, int)
        xu = np.array([len(self.specs) - 1] * self.tiles + [self.tiles - 1] * len(self.layers), int)
        return xl, xu

    def decode(self, x) -> tuple:
        """Chromosome -> mapping: the candidate index of every layer (multiplier gene of its tile)."""
        x = np.asarray(x).astype(np.int64).ravel()
        if x.shape != (self.n_var,):
            raise ValueError(f"a chromosome has {self.n_var} genes ({self.tiles} tiles + {len(self.layers)} layers), "
                             f"got {x.shape[0]}")
        xl, xu = self.bounds()
        if np.any(x < xl) or np.any(x > xu):
            raise ValueError("chromosome gene out of range")
        mult, tile = x[:self.tiles], x[self.tiles:]
        return tuple(int(mult[t]) for t in tile)

    def uniform(self, c: int) -> np.ndarray:
        """A chromosome putting candidate c on every tile (every layer on candidate c)."""
        return np.array([c] * self.tiles + [i % self.tiles for i in range(len(self.layers))], int)

    def relative_energy(self, mapping) -> float:
        num = math.fsum(m * self.energies[c] for m, c in zip(self.macs, mapping))
        den = math.fsum(m * self.energies[self.exact] for m in self.macs)
        return num / den

    def layer_specs(self, mapping) -> dict:
        return {n: self.specs[c] for n, c in zip(self.layers, mapping)}
