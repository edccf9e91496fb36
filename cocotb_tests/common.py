"""Helpers shared by the cocotb testbenches (run inside the simulator)."""
from __future__ import annotations

import json
import os

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer

from golden.fixed import pack, unpack

__all__ = ["params", "rng", "start_clock", "reset", "expect_equal", "stream_mac", "stream_array_tile",
           "FallingEdge", "RisingEdge", "Timer"]

DEFAULT_SEED = 20261122


def params() -> dict:
    return json.loads(os.environ.get("ECOMAC_PARAMS", "{}"))


def rng(dut, salt: int = 0) -> np.random.Generator:
    """A NumPy generator with a fixed seed ($ECOMAC_SEED overrides), printed to the log."""
    seed = int(os.environ.get("ECOMAC_SEED", DEFAULT_SEED)) + salt
    dut._log.info(f"random seed {seed} (set ECOMAC_SEED to change)")
    return np.random.default_rng(seed)


async def start_clock(dut, period_ns: int = 10) -> None:
    cocotb.start_soon(Clock(dut.clk, period_ns, unit="ns").start())


async def reset(dut, cycles: int = 2) -> None:
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)


def expect_equal(what: str, got, expected, inputs: dict | None = None) -> None:
    """Assert two integer sequences are equal; report the first mismatch with its inputs."""
    got = np.asarray(got, dtype=object)
    expected = np.asarray(expected, dtype=object)
    assert got.shape == expected.shape, f"{what}: {got.shape} results, expected {expected.shape}"
    bad = np.nonzero(got != expected)[0]
    if bad.size:
        i = int(bad[0])
        ctx = ", ".join(f"{k}={np.asarray(v, dtype=object)[i]}" for k, v in (inputs or {}).items())
        raise AssertionError(f"{what}: {bad.size} of {got.size} mismatches; first at #{i} ({ctx}): "
                             f"got {got[i]}, expected {expected[i]}")


async def stream_mac(dut, x, w, valid, clear, signed_bits: int | None = None) -> list[int]:
    """Drive the MAC contract (x, w, valid, clear -> acc) one vector per clock at the falling
    edge and collect acc one cycle later. With `signed_bits`, x and w are two's-complement
    integers of that width; otherwise they are raw codes."""
    if signed_bits is not None:
        x = np.asarray(x, np.int64) % (1 << signed_bits)
        w = np.asarray(w, np.int64) % (1 << signed_bits)
    out = []
    for i in range(len(x)):
        dut.x.value = int(x[i])
        dut.w.value = int(w[i])
        dut.valid.value = int(valid[i])
        dut.clear.value = int(clear[i])
        await FallingEdge(dut.clk)
        out.append(dut.acc.value.to_signed())
    return out


async def stream_array_tile(dut, A, B, code_bits: int, acc_bits: int, gaps=None) -> list[int]:
    """Drive the mfmac-array contract for one tile: column k of A on `a`, row k of B on `b`,
    clear with the first step; gaps[k] true puts a bubble (valid low) before step k (never
    before the first). Returns c (rows x cols accumulations, row-major) one cycle after the
    last step."""
    rows, K = A.shape
    cols = B.shape[1]
    for k in range(K):
        if k > 0 and gaps is not None and gaps[k]:     # a bubble: nothing may change
            dut.valid.value = 0
            dut.clear.value = 0
            await FallingEdge(dut.clk)
        dut.a.value = pack(A[:, k], code_bits)
        dut.b.value = pack(B[k, :], code_bits)
        dut.valid.value = 1
        dut.clear.value = int(k == 0)
        await FallingEdge(dut.clk)
    dut.valid.value = 0
    dut.clear.value = 0
    return unpack(dut.c.value.to_unsigned(), acc_bits, rows * cols)
