"""The ALWANN search space: the model's mappable layers (`model_layers`) and the chromosome
(`SearchSpace`: T multiplier genes, then one tile gene per layer)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from torch import nn


def model_layers(model: nn.Module, input_shape) -> list[dict]:
    """[{name, kind, macs (per sample), net_layer (synth.network layer dict)}] of every product of the
    (lifted, net.graph) model — Linear, Conv (grouped too) and activation x activation Matmul — in
    execution order (net.graph.census on one zero sample)."""
    from ..graph import census, layer_macs
    cen = census(model, input_shape)
    found = [{"name": e["name"], "kind": e["kind"], "macs": layer_macs(e), "net_layer": dict(e)} for e in cen.layers]
    if any(e.get("repeat", 1) > 1 or "#" in e["name"] for e in cen.layers):
        raise ValueError("the model runs a product module more than once per inference; ALWANN maps each "
                         "layer to one tile, so every layer must run once")
    floats = [e["name"] for e in cen.layers if e.get("float")]
    if floats:
        raise ValueError(f"products outside any module ALWANN can map: {', '.join(floats[:5])}")
    if not found:
        raise ValueError("the model has no matrix product to map onto multipliers")
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
