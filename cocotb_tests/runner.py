"""Build a registered design with Icarus Verilog (or $SIM) and run a cocotb module on it.

One build directory per (design, parameter set), so parametrized runs never collide;
the parameters reach the testbench as JSON in $ECOMAC_PARAMS.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from cocotb_tools.runner import get_results, get_runner

from rtl.export import generate

__all__ = ["run_sim", "run_verilog", "ROOT", "SIM_DIR"]

ROOT = Path(__file__).resolve().parent.parent
SIM_DIR = ROOT / "build" / "sim"


def _slug(design: str, params: dict) -> str:
    text = json.dumps(params, sort_keys=True, default=list)
    short = "_".join(f"{k}{v if not isinstance(v, (list, tuple)) else '-'.join(map(str, v))}"
                     for k, v in sorted(params.items()))[:60]
    return f"{design}-{short}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def run_verilog(sources: list[Path], toplevel: str, test_module: str, build_dir: Path,
                env: dict | None = None, testcase=None) -> tuple[int, int]:
    """Compile `sources` and run cocotb `test_module`; raise if any test failed or none ran."""
    sim = os.environ.get("SIM", "icarus")
    runner = get_runner(sim)
    runner.build(sources=[str(s) for s in sources], hdl_toplevel=toplevel, build_dir=build_dir,
                 timescale=("1ns", "1ps"), always=True)
    xml = runner.test(hdl_toplevel=toplevel, test_module=test_module, build_dir=build_dir,
                      testcase=testcase, extra_env=dict(env or {}), timescale=("1ns", "1ps"),
                      results_xml=str(Path(build_dir) / "results.xml"))
    n, failed = get_results(Path(xml))
    if n == 0:
        raise AssertionError(f"{test_module}: no cocotb test ran")
    if failed:
        raise AssertionError(f"{test_module}: {failed} of {n} cocotb tests failed (log in {build_dir})")
    return n, failed


def run_sim(design: str, params: dict, test_module: str, testcase=None,
            env: dict | None = None) -> tuple[int, int]:
    """Generate `design` with `params`, then run `test_module` against it."""
    text, sheet = generate(design, params)
    build_dir = SIM_DIR / _slug(design, sheet["parameters"])
    build_dir.mkdir(parents=True, exist_ok=True)
    src = build_dir / f"{sheet['module']}.v"
    src.write_text(text)
    full_env = {"ECOMAC_PARAMS": json.dumps(sheet["parameters"]), "ECOMAC_DESIGN": design}
    full_env.update(env or {})
    return run_verilog([src], sheet["module"], test_module, build_dir, full_env, testcase)
