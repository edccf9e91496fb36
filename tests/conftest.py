"""Hypothesis runs derandomized (the same examples every run, so CI is reproducible) and
without per-example deadlines (2-core CI machines under load would make timing flaky).
Set HYPOTHESIS_PROFILE=explore for fresh random examples."""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def comb_sweep():
    """comb_sweep(dut, {port: values, ...}, out) -> the combinational output `out` of an
    Amaranth component for every input vector, in one Amaranth simulation."""
    from amaranth.sim import Simulator

    def sweep(dut, inputs: dict, out: str) -> np.ndarray:
        cols = {name: np.asarray(v).tolist() for name, v in inputs.items()}
        n = len(next(iter(cols.values())))
        got = np.empty(n, np.int64)

        async def tb(ctx):
            for i in range(n):
                for name, vals in cols.items():
                    ctx.set(getattr(dut, name), vals[i])
                got[i] = ctx.get(getattr(dut, out))
        sim = Simulator(dut)
        sim.add_testbench(tb)
        sim.run()
        return got
    return sweep
