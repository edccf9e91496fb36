"""Datapath specs at the network level: golden.datapath.parse plus what needs the synthesis
layer (a `lut:FILE.v` circuit is characterized by exhaustive simulation into its table)."""
from __future__ import annotations

from functools import lru_cache

from golden.datapath import Datapath
from golden.datapath import parse as _golden_parse

__all__ = ["parse", "Datapath"]


@lru_cache(maxsize=64)
def _parse_cached(spec: str) -> Datapath:
    from synth.network import parse_spec      # the energy model's resolution of lut:FILE.v, shared
    return parse_spec(spec)


def parse(spec) -> Datapath:
    """A Datapath from a spec string (cached per spec; a Datapath passes through)."""
    if isinstance(spec, Datapath):
        return spec
    if not isinstance(spec, str):
        return _golden_parse(spec)      # its one-line error
    return _parse_cached(spec.strip())
