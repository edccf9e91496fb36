"""A property-based fuzzer over the argument grammar of every `ecomac` subcommand.

The command list comes from the argparse tree (`ecomac.cli.build_parser`), so commands added
later are fuzzed as they land. For each leaf command hypothesis draws argument lists from its
own options: valid and invalid values (by choices, type and metavar), options left out or
given twice, odd output paths (a folder, a path under a file, an unwritable place, a wrong
suffix) and empty, malformed or valid input files. Every run, in-process with captured
output, must:

  * exit 0 or 2 (argparse's --help exits 0), never raise, never print a traceback;
  * on failure print at most two lines on stderr, the last one `ecomac: error: ...`;
  * on failure leave no file behind (the scratch folder is unchanged);
  * finish within RUN_BOUND_S (tools are bounded by ECOMAC_TOOL_TIMEOUT).

Commands whose valid runs are minutes of work (the report, sweeps, calibration, tiles) run
with their work function replaced by one that stops the run (`_Work`): what is checked for
them is everything before the work starts (arguments, inputs, output paths), and that
nothing was written before it.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecomac.cli import build_parser, main

RUN_BOUND_S = 60          # one command, in-process (a cold synthesis cache included)
EXAMPLES = 15             # per leaf command: ~480 runs over 32 commands, ~40 s
TOOL_TIMEOUT_S = "30"

# (command path, extra flag) -> the work function a valid run reaches (replaced by _stop)
HEAVY = {
    ("report",): "ecomac.report.write_report",
    ("approx", "sweep"): "ecomac.approx_lib.sweep",
    ("asm", "measure"): "ecomac.cmd_asm.measure",
    ("tile", "energy"): "synth.tiles.tile_table",
    ("energy", "calibration"): "synth.energy.calibration_table",
    ("energy", "headline"): "synth.network_comparison.headline",
    ("synth",): "ecomac.designs.synth_defaults",        # synth --all
    ("energy", "accumulators"): "synth.network_comparison.accumulator_table",
    ("fpga",): "synth.fpga.fpga_many",                   # fpga --all
    ("fpga", "one design"): "synth.fpga.place_and_route",  # nextpnr: tens of seconds per design
    ("emulate", "--bench"): "net.emulate.bench",          # minutes: two shapes x eight datapaths
    ("tile", "storage"): "synth.tiles.storage_table",
    ("nn", "train-experiments"): "net.train_runs.experiment",   # also its deprecated alias `train-experiments`
    ("nn", "experiments"): "net.experiments.eval_experiments",   # FP32 training over seeds, then every datapath
    ("prove", "--all"): "synth.prove.suite",
    ("prove", "one design"): "synth.prove.prove",          # SAT proofs: a minute each by default
    ("nn", "hwsim"): "net.hwsim.run",                      # a network on the gate netlist / Verilog
    ("energy", "accelerators"): "synth.zigzag_table.accelerator_table",   # ZigZag on ResNet-18 and more
}
# commands whose exit status reports a result besides 0 and 2 (prove: 1 counterexample, 3 undecided)
RESULT_CODES = {("prove",): {1, 3}}
# A new command whose valid run takes more than a few seconds adds its work function here
# (module.attribute as the command looks it up); the fuzzer then checks everything up to it.
# designs cheap enough to generate, synthesize and simulate in a fuzz run
SMALL_DESIGNS = ("int-mac", "mfmac-pe", "mul-array", "mul-drum", "asm-mul")
PARAM_NAMES = ("bits", "acc_bits", "exp_bits", "k", "x_bits", "w_bits", "alphabet", "rows", "nope")
PARAM_VALUES = ("2", "3", "4", "6", "0", "-1", "99999", "x", "", "1,,3", "1,3")
INTS = ("0", "-3", "1", "2", "3", "4", "8", "100000", "x", "")
FLOATS = ("0", "-1", "0.5", "1e9", "nan", "x")
STRINGS = ("x", "", "-", "a=b", "nope")
TOPS = ("m", "nope", "")
DATAPATHS = ("int8", "mfmac", "approx:mul-drum,k=6,k=7", "approx:", "approx:mul-drum,q=1", "bogus", "")
ALPHABETS = ("1,3", "1,,3", "2", "1,3,5,7", "", "1,1")
OUT_SUFFIXES = (".v", ".json", ".png", ".pdf", ".svg", ".jpg", ".bin", ".npy", ".csv", "")

ADDER_V = "module m(input [1:0] a, input [1:0] b, output [3:0] p);\n  assign p = a * b;\nendmodule\n"
# degenerate Verilog (module m, so TOPS reaches it): what Yosys reads but leaves little or nothing of
DEGENERATE_V = {
    "deg_empty.v": "module m();\nendmodule\n",                                   # no ports, no cells
    "deg_ports.v": "module m(input [1:0] a, input [1:0] b, output [3:0] p);\nendmodule\n",   # ports only
    "deg_const.v": "module m(input [1:0] a, input [1:0] b, output [3:0] p);\n  assign p = 4'd5;\nendmodule\n",
    "deg_unknown.v": "module m(input [1:0] a, input [1:0] b, output [3:0] p);\n  nope u(.a(a), .b(b), .p(p));\n"
                     "endmodule\n",                                              # instantiates an unknown module
}
TINY_NET = ('{"name": "tiny", "layers": [{"kind": "linear", "in": 4, "out": 4, "tokens": 2}]}')
# a ZigZag accelerator: 4 MACs, a weight register per MAC, one buffer for everything
TINY_ACCEL = """name: tiny
memories:
  w_reg:
    size: 8
    r_cost: 0.1
    w_cost: 0.1
    area: 0
    latency: 1
    operands: [I2]
    ports:
      - {name: r_port_1, type: read, bandwidth_min: 8, bandwidth_max: 8, allocation: ["I2, tl"]}
      - {name: w_port_1, type: write, bandwidth_min: 8, bandwidth_max: 8, allocation: ["I2, fh"]}
    served_dimensions: []
  buf:
    size: 1000000
    r_cost: 10
    w_cost: 10
    area: 0
    latency: 1
    operands: [I1, I2, O]
    ports:
      - {name: r_port_1, type: read, bandwidth_min: 64, bandwidth_max: 64, allocation: ["I1, tl", "I2, tl", "O, tl", "O, th"]}
      - {name: w_port_1, type: write, bandwidth_min: 64, bandwidth_max: 64, allocation: ["I1, fh", "I2, fh", "O, fh", "O, fl"]}
    served_dimensions: [D1]
operational_array:
  unit_energy: 0.1
  unit_area: 1
  dimensions: [D1]
  sizes: [4]
"""
ARCHS = ("stream", "tile-vn", "tile-near,lanes=4,depth=8", "tile-in,tiles=1", "tile-in,bogus=1", "tile-vn,lanes=0",
         "tile-near,bus_bits=8", "bogus", "")


class _Overtime(BaseException):
    """A run past RUN_BOUND_S (a BaseException: main() must not turn it into an exit status)."""


class _Work(BaseException):
    """Raised in place of a heavy command's work: the arguments passed every check."""


def _stop(*a, **k):
    raise _Work()


def _leaves(parser, path=()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, sub in subs[0].choices.items():
        yield from _leaves(sub, path + (name,))


LEAVES = list(_leaves(build_parser()))


# ---- the scratch folder's fixed contents ---------------------------------------------------
def _scratch(root: Path) -> None:
    (root / "dir").mkdir()
    (root / "file.txt").write_text("not a folder\n")
    (root / "empty.v").write_text("")
    (root / "empty.json").write_text("")
    (root / "garbage.bin").write_bytes(b"\x00\xff\x13garbage\n{[(")
    (root / "m.v").write_text(ADDER_V)
    for name, text in DEGENERATE_V.items():
        (root / name).write_text(text)
    (root / "net.json").write_text(TINY_NET)
    (root / "bad.json").write_text('{"name": "x", "layers": [{"kind": "conv"}]}')
    (root / "accel.yaml").write_text(TINY_ACCEL)
    (root / "bad.yaml").write_text("name: x\nmemories: {m: {size: -1}}\n")
    (root / "garbage.yaml").write_text("{[: not yaml\n")
    _scratch_models(root)


USER_PY = "import torch\n\nclass Tiny(torch.nn.Sequential):\n    def __init__(self):\n" \
          "        super().__init__(torch.nn.Flatten(), torch.nn.Linear(4, 3))\n\nNOT_A_MODULE = 3\n"


def _scratch_models(root: Path) -> None:
    """Model files of every format the loader takes (net/loader.py), good and bad: a .pt2 program,
    FILE.py:NAME, state dicts that fit and that do not."""
    import warnings

    import torch
    (root / "user.py").write_text(USER_PY)
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = torch.export.export(m, (torch.zeros(2, 1, 2, 2),), dynamic_shapes=({0: torch.export.Dim("b")},))
    torch.export.save(ep, root / "tiny.pt2")
    torch.save(m.state_dict(), root / "w_ok.pt")
    torch.save({"x": torch.zeros(2)}, root / "w_bad.pt")


def _model_path(root: Path):
    names = ["tiny.pt2", "tiny.pt2", "user.py:Tiny", "user.py:NOT_A_MODULE", "user.py:Nope", "missing.py:X",
             "garbage.bin", "missing.pt2", "dir", "w_ok.pt", "net.json"]
    return st.sampled_from([str(root / n) for n in names])


def _out_path(root: Path):
    return st.one_of(
        st.sampled_from([str(root / "dir"), str(root / "file.txt" / "x.v"), "/proc/ecomac-fuzz/x",
                         str(root / "file.txt"), str(root / "dir") + "/"]),
        st.sampled_from(OUT_SUFFIXES).map(lambda s: str(root / "new" / f"out{s}")),
    )


def _in_path(root: Path, kind: str):
    good = {"v": "m.v", "json": "net.json"}.get(kind)
    names = ["missing.x", "dir", "empty.v", "empty.json", "garbage.bin", "bad.json", "file.txt"]
    if kind == "v":
        names += list(DEGENERATE_V)
    if good:
        names += [good] * 3
    return st.sampled_from([str(root / n) for n in names])


def _values(action, root: Path, path):
    """A strategy for one value of `action`."""
    name = (action.dest or "").lower()
    meta = str(action.metavar or "").lower()
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        return st.sampled_from(list(action.choices) + ["bogus"])
    if name == "design":
        return st.sampled_from(SMALL_DESIGNS + ("nope", "mfmac-array"))
    if name == "param":
        return st.one_of(st.builds(lambda n, v: f"{n}={v}", st.sampled_from(PARAM_NAMES),
                                   st.sampled_from(PARAM_VALUES)),
                         st.sampled_from(["novalue", "=3", "rows=64"]))
    if name == "output" or name == "plot" or meta.startswith("dir"):
        return _out_path(root)
    if name == "verilog":
        return _in_path(root, "v")
    if name in ("model", "init") or (name == "file" and tuple(path) == ("net", "show")):
        return _model_path(root)
    if name == "net":
        return st.one_of(_in_path(root, "json"), _model_path(root))
    if name == "weights":
        return st.sampled_from([str(root / n) for n in ("w_ok.pt", "w_bad.pt", "garbage.bin", "missing.pt")])
    if name in ("stream", "liberty"):
        return _in_path(root, name)
    if name == "datapath":
        return st.sampled_from(DATAPATHS)
    if name == "arch":                       # an accelerator (nn train's --arch has choices, drawn above)
        return st.sampled_from(ARCHS + tuple(str(root / n) for n in ("accel.yaml", "bad.yaml", "garbage.yaml",
                                                                      "missing.yaml", "dir")))
    if name == "alphabet":
        return st.sampled_from(ALPHABETS)
    if name == "top":
        return st.sampled_from(TOPS)
    if name == "array":
        return st.sampled_from(["4x4", "2x3", "0x4", "4x65", "4x", "x", "", "-1x2"])
    if name == "family":
        return st.sampled_from(["mul-drum", "mul-drum,mul-drum", "mul-nope", "", "mul-array"])
    t = getattr(action.type, "__name__", "")
    if action.type is int or "int" in t or "seed" in t or name.endswith(("bits", "lanes", "depth", "workers")):
        return st.sampled_from(INTS)
    if action.type is float or "float" in t:
        return st.sampled_from(FLOATS)
    return st.sampled_from(STRINGS + ("3", "-5"))


@st.composite
def _argv(draw, path, parser, root):
    argv = list(path)
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.required:
            times = draw(st.sampled_from([1, 1, 1, 1, 0, 2]))
        else:
            times = draw(st.sampled_from([0, 0, 1, 1, 2]))
        for _ in range(times):
            if not action.option_strings:                     # positional
                if action.nargs in ("+", "*"):
                    argv += draw(st.lists(_values(action, root, path), min_size=1, max_size=3))
                else:
                    argv.append(draw(_values(action, root, path)))
                continue
            opt = draw(st.sampled_from(action.option_strings))
            if action.nargs == 0:                             # a flag
                argv.append(opt)
            else:
                argv += [opt, draw(_values(action, root, path))]
    if draw(st.integers(0, 19)) == 0:
        argv.append("--help")
    return argv


# ---- running one argument list ---------------------------------------------------------------
def _snapshot(root: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            try:
                st_ = os.lstat(p)
            except OSError:
                continue
            # a folder's own mtime changes with the output checks' probe file: existence only
            out[p] = "dir" if os.path.isdir(p) else (st_.st_size, st_.st_mtime_ns)
    return out


@contextlib.contextmanager
def _bound(seconds: int, argv):
    def on_alarm(signum, frame):
        raise _Overtime(f"ecomac {' '.join(argv)} ran past {seconds} s (a command whose valid run is "
                        "this slow adds its work function to HEAVY in tests/test_cli_fuzz.py)")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_checked(argv: list[str], root: Path) -> tuple[int | None, str, str]:
    """Run `ecomac argv` in-process and assert the robustness properties; returns
    (exit status or None when a heavy command reached its work, stdout, stderr)."""
    before = _snapshot(root)
    out, err = io.StringIO(), io.StringIO()
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _bound(RUN_BOUND_S, argv):
        try:
            code = main(argv)
        except SystemExit as e:                  # argparse --help
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        except _Work:
            code = None
    stdout, stderr = out.getvalue(), err.getvalue()
    shown = f"ecomac {' '.join(argv)!r} -> {code}\nstderr: {stderr[-2000:]}"
    assert "Traceback" not in stderr and "Traceback" not in stdout, shown
    if code is None:
        # a heavy command got past every check: it must not have written anything yet
        assert _snapshot(root) == before, f"files written before the work started: {shown}"
        return code, stdout, stderr
    assert code in {0, 2} | RESULT_CODES.get(tuple(argv[:1]), set()), shown
    if code == 2:
        lines = stderr.splitlines()
        assert 1 <= len(lines) <= 2, shown
        assert lines[-1].startswith("ecomac: error: "), shown
        assert _snapshot(root) == before, f"files left behind on failure: {shown}"
    return code, stdout, stderr


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    _scratch(root)
    return root


@pytest.fixture
def fuzz_env(monkeypatch, scratch):
    import importlib
    monkeypatch.setenv("ECOMAC_TOOL_TIMEOUT", TOOL_TIMEOUT_S)
    monkeypatch.chdir(scratch / "dir")               # default output folders land in the scratch area
    for dotted in HEAVY.values():
        mod, _, attr = dotted.rpartition(".")
        monkeypatch.setattr(importlib.import_module(mod), attr, _stop, raising=False)
    # verilog --all: two small designs stand for the default set
    import ecomac.designs as designs
    small = [d for d in designs.default_designs() if d.name in ("int-mac", "mfmac-pe")]
    monkeypatch.setattr(designs, "default_designs", lambda: small)
    return scratch


STATS = {"runs": 0, "seconds": 0.0, "ok": 0, "refused": 0, "reached_work": 0}


@pytest.mark.parametrize("path,parser", LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_fuzz_command(path, parser, fuzz_env):
    root = fuzz_env

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(_argv(path, parser, root))
    def check(argv):
        t0 = time.monotonic()
        code, _, _ = run_checked(argv, root)
        # files a successful run wrote are the run's output, not leftovers: clear them
        for p in sorted(Path(root, "new").rglob("*"), reverse=True) if Path(root, "new").exists() else []:
            p.rmdir() if p.is_dir() else p.unlink()
        for p in Path(root, "dir").iterdir():
            if p.is_dir():
                import shutil
                shutil.rmtree(p)
            else:
                p.unlink()
        STATS["runs"] += 1
        STATS["seconds"] += time.monotonic() - t0
        STATS["ok" if code in (0, 1, 3) else "refused" if code == 2 else "reached_work"] += 1
    check()


# ---- degenerate Verilog through every command that reads a user's Verilog ------------------------
def _verilog_runs():
    lib = Path(__file__).resolve().parent.parent.parent / "shared/pdk/sky130_fd_sc_hd__tt_025C_1v80.lib.gz"
    runs = [("netlist stats", lambda f: ["netlist", "stats", "--verilog", f, "--top", "m"]),
            ("netlist stats --json", lambda f: ["netlist", "stats", "--verilog", f, "--top", "m", "--json"]),
            ("netlist energy", lambda f: ["netlist", "energy", "--verilog", f, "--top", "m", "--mode", "activity"]),
            ("approx characterize", lambda f: ["approx", "characterize", "--verilog", f, "--top", "m"]),
            ("energy net lut:", lambda f: ["energy", "net", "--net", "../net.json", "--datapath", f"lut:{f},top=m"]),
            ("emulate lut:", lambda f: ["emulate", "--datapath", f"lut:{f},top=m", "--x", "../x.npy",
                                        "--w", "../w.npy", "-o", "../new/y.npy"])]
    if lib.is_file():
        runs.append(("netlist stats --liberty",
                     lambda f: ["netlist", "stats", "--verilog", f, "--top", "m", "--liberty", str(lib)]))
    return runs


@pytest.mark.parametrize("name", sorted(DEGENERATE_V))
@pytest.mark.parametrize("what,argv", _verilog_runs(), ids=[w for w, _ in _verilog_runs()])
def test_degenerate_verilog(what, argv, name, fuzz_env):
    """An empty module, ports only, constant outputs, an unknown submodule: a result or one line,
    never a traceback (every reader of Yosys's `stat -json` included)."""
    import numpy as np
    root = fuzz_env
    np.save(root / "x.npy", np.ones((2, 3), np.int64))
    np.save(root / "w.npy", np.ones((3, 2), np.int64))
    try:
        code, out, err = run_checked(argv(str(root / name)), root)
    finally:
        for f in ("x.npy", "w.npy", "new/y.npy"):
            (root / f).unlink(missing_ok=True)
    if name == "deg_unknown.v":
        assert code == 2 and "nope" in err, err         # the unknown module is named
    if code == 0 and what.startswith("netlist stats") and name in ("deg_empty.v", "deg_ports.v", "deg_const.v"):
        assert "cells_total" in out and ('"cells_total": 0' in out or "no cells" in out), out


def test_every_numeric_option_is_range_checked_where_it_enters():
    """No int/float option takes a bare int/float: each has a type that refuses values outside
    its range at parse time (e.g. `alwann search --pop 1`), before any model, data or worker."""
    bare = [f"{' '.join(path)} {'/'.join(a.option_strings) or a.dest}"
            for path, parser in LEAVES for a in parser._actions
            if a.type in (int, float) and a.choices is None]
    assert not bare, f"options without a range type (ecomac/args.py int_range / float_range): {bare}"


def test_fuzzer_covers_every_command():
    """The grammar walk finds every leaf command (so later commands are fuzzed automatically)."""
    names = {" ".join(p) for p, _ in LEAVES}
    assert {"list", "verilog", "synth", "approx sweep", "energy op", "tile energy"} <= names
    for path, parser in LEAVES:
        assert parser.get_default("func") is not None, f"{' '.join(path)} has no handler"


def teardown_module(module):
    if STATS["runs"]:
        print(f"\nCLI fuzzer: {STATS['runs']} runs in {STATS['seconds']:.1f} s "
              f"({STATS['ok']} ok, {STATS['refused']} refused, {STATS['reached_work']} reached heavy work)")
