"""One test per robustness class of issue 9: output paths checked before the work, parameters
that cannot be built, duplicates, interrupts and closed pipes, silent acceptance, honest UX,
external tools bounded."""
from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from ecomac.cli import build_parser, main
from rtl.registry import MAX_SIGNAL_BITS, all_designs, get_design

ROOT = Path(__file__).resolve().parent.parent
NET = str(ROOT / "examples/nets/resnet18.json")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err):
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("ecomac: error: "), err
    return err[len("ecomac: error: "):].strip()


def _forbid(monkeypatch, dotted: str):
    """Make the work function fail loudly: the check must come before it."""
    import importlib
    mod, _, attr = dotted.rpartition(".")

    def called(*a, **k):
        raise AssertionError(f"{dotted} ran before the output path was checked")
    monkeypatch.setattr(importlib.import_module(mod), attr, called)


# ---- output paths ----------------------------------------------------------------------------
@pytest.fixture
def places(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("a file\n")
    return tmp_path


@pytest.mark.parametrize("argv,work,expect", [
    (["verilog", "mfmac-pe", "-o", "{d}"], "ecomac.designs.write_verilog", "is a folder"),
    (["verilog", "mfmac-pe", "-o", "{f}/x.v"], "ecomac.designs.write_verilog", "is a file, not a folder"),
    (["verilog", "mfmac-pe", "-o", "/proc/ecomac-test/x.v"], "ecomac.designs.write_verilog", "cannot write in"),
    (["verilog", "mfmac-pe", "-o", "{d}/x.json"], "ecomac.designs.write_verilog", "the datasheet's name"),
    (["verilog", "--all", "-o", "{f}"], "ecomac.designs.write_verilog", "is a file, not a folder"),
    (["energy", "net", "--net", NET, "--datapath", "int8", "--plot", "{d}"], "synth.network.net_energy",
     "is a folder"),
    (["energy", "net", "--net", NET, "--datapath", "int8", "--plot", "{d}/p.jpg"], "synth.network.net_energy",
     "must end in .png or .pdf or .svg"),
    (["approx", "export", "mul-drum", "-o", "{d}/t.csv"], "ecomac.approx_lib.export_table",
     "must end in .bin or .npy"),
    (["approx", "export", "mul-drum", "-o", "{f}/t.bin"], "ecomac.approx_lib.export_table", "is a file"),
    (["approx", "sweep", "-f", "mul-drum", "-o", "{f}"], "ecomac.approx_lib.sweep", "is a file, not a folder"),
    (["synth", "--all", "-o", "{f}/sub"], "ecomac.designs.synth_defaults", "is a file, not a folder"),
    (["report", "-o", "{f}"], "ecomac.report.write_report", "is a file, not a folder"),
    (["asm", "measure", "-o", "{f}"], "ecomac.cmd_asm.measure", "is a file, not a folder"),
])
def test_output_paths_are_checked_before_the_work(places, capsys, monkeypatch, argv, work, expect):
    _forbid(monkeypatch, work)
    before = sorted(p.name for p in places.rglob("*"))
    argv = [a.replace("{d}", str(places / "d")).replace("{f}", str(places / "f")) for a in argv]
    msg = one_line_error(*run(capsys, *argv)[::2])
    assert expect in msg
    assert sorted(p.name for p in places.rglob("*")) == before


def test_verilog_refuses_to_overwrite_its_own_datasheet(tmp_path, capsys):
    out = tmp_path / "x.json"
    msg = one_line_error(*run(capsys, "verilog", "mfmac-pe", "-o", out)[::2])
    assert msg == (f"Verilog file {out} ends in .json, the datasheet's name; give FILE.v "
                   "(the datasheet goes to FILE.json)")
    assert not out.exists()


def test_output_checks_leave_nothing_and_accept_new_folders(tmp_path):
    from ecomac.outputs import check_output_dir, check_output_file
    assert check_output_file(tmp_path / "a" / "b" / "x.v") == tmp_path / "a" / "b" / "x.v"
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert list(tmp_path.iterdir()) == []          # nothing created, the probe removed


# ---- parameters that cannot be built; defaults that follow --------------------------------------
def test_a_port_past_the_toolchain_limit_is_refused_up_front(tmp_path, capsys):
    t0 = time.monotonic()
    msg = one_line_error(*run(capsys, "verilog", "mfmac-array", "-p", "rows=64", "-p", "cols=64",
                              "-o", tmp_path / "a.v")[::2])
    assert time.monotonic() - t0 < 30          # not the minutes of an elaboration (no timing claim)
    assert msg.startswith("mfmac-array rows=64 cols=64 exp_bits=3 acc_bits=24")   # every parameter named
    assert msg.endswith(": port c would be 98,304 bits wide; the toolchain handles at most "
                        f"{MAX_SIGNAL_BITS:,} bits per signal (Amaranth's netlist limit)")
    assert list(tmp_path.iterdir()) == []


def test_the_limit_is_amaranths_own():
    """MAX_SIGNAL_BITS is where Amaranth's RTLIL back end refuses a wire."""
    from amaranth.back.rtlil import Wire
    Wire(MAX_SIGNAL_BITS, name="ok")
    with pytest.raises(OverflowError):
        Wire(MAX_SIGNAL_BITS + 1, name="too_wide")


def test_rule_defaults_agree_with_the_listed_defaults():
    for d in all_designs():
        for p in d.params:
            if p.follows is not None:
                assert p.follows(d.defaults()) == p.default, (d.name, p.name)
                assert p.follows_doc


@pytest.mark.parametrize("design,given,follows", [
    ("mfmac-pe", {"exp_bits": 4}, {"acc_bits": 30}),
    ("mfmac-pe", {"exp_bits": 5}, {"acc_bits": 62}),
    ("int-mac", {"bits": 16}, {"acc_bits": 32}),
    ("asm-pe-row", {"x_bits": 24, "w_bits": 12}, {"acc_bits": 36}),
    ("mul-drum", {"bits": 2}, {"k": 2}),
    ("mul-trunc", {"bits": 3}, {"k": 6}),
    ("mul-mitchell", {"bits": 4}, {"frac_bits": 3}),
    ("tile-near", {"datapath": "int", "x_bits": 16}, {"acc_bits": 32}),
])
def test_dependent_defaults_follow_and_build(design, given, follows):
    d = get_design(design)
    full = d.validate(given)
    assert {k: full[k] for k in follows} == follows
    assert d.validate({**given, **follows}) == full          # an explicit value is kept


def test_exp_bits_alone_builds_on_the_cli(tmp_path, capsys):
    code, out, err = run(capsys, "verilog", "mfmac-pe", "-p", "exp_bits=4", "-o", tmp_path / "pe.v")
    assert code == 0, err
    assert json.loads((tmp_path / "pe.json").read_text())["parameters"]["acc_bits"] == 30


# ---- duplicates ---------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,msg", [
    (["verilog", "mfmac-pe", "-p", "exp_bits=2", "-p", "exp_bits=3", "-o", "{t}/x.v"],
     "parameter exp_bits given twice; give each parameter once"),
    (["approx", "sweep", "-f", "mul-drum", "-f", "mul-drum", "-o", "{t}"],
     "family mul-drum given twice; give each family once"),
    (["approx", "sweep", "-f", "mul-drum,mul-array,mul-drum", "-o", "{t}"],
     "family mul-drum given twice; give each family once"),
    (["synth", "int-mac", "--target", "ice40", "--target", "ecp5"],
     "option --target given twice (--target, --target); give it once"),
    (["energy", "net", "--net", NET, "--datapath", "approx:mul-drum,k=6,k=7"], "k"),
])
def test_duplicates_are_refused(tmp_path, capsys, monkeypatch, argv, msg):
    _forbid(monkeypatch, "ecomac.approx_lib.sweep")
    got = one_line_error(*run(capsys, *[a.replace("{t}", str(tmp_path)) for a in argv])[::2])
    assert msg in got and ("twice" in got or "duplicate" in got)
    assert list(tmp_path.iterdir()) == []


# ---- interrupts and pipes -----------------------------------------------------------------------
def _descendants(pid: int) -> set[int]:
    from synth.pool import _children
    out, todo = set(), [pid]
    while todo:
        for c in _children(todo.pop()):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"     # a zombie is dead
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_ctrl_c_during_a_sweep_exits_130_and_leaves_no_process(tmp_path):
    env = dict(os.environ, ECOMAC_CACHE=str(tmp_path / "cache"))        # cold: the workers are busy
    p = subprocess.Popen([sys.executable, "-m", "ecomac", "approx", "sweep", "-f", "mul-drum", "-j", "2",
                          "-o", str(tmp_path / "out")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        kids: set[int] = set()
        while time.monotonic() < deadline and len(kids) < 3:           # two workers and a tool
            time.sleep(0.2)
            kids |= _descendants(p.pid)
        assert kids, "the sweep started no worker"
        os.kill(p.pid, signal.SIGINT)                                   # to the parent alone
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 130, err.decode()
    assert "Traceback" not in err.decode()
    time.sleep(0.5)
    assert [k for k in kids if _alive(k)] == []
    assert not (tmp_path / "out").exists()


def test_a_closed_pipe_is_quiet():
    p = subprocess.Popen([sys.executable, "-m", "ecomac", "list"], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    first = p.stdout.readline()
    p.stdout.close()                      # `| head -1`
    err = p.stderr.read().decode()
    p.wait(timeout=60)
    assert first.startswith(b"design")
    assert err == ""
    assert p.returncode in (0, 141)       # 141 = 128 + SIGPIPE when the write hit the closed pipe


# ---- silent acceptance --------------------------------------------------------------------------
@pytest.fixture
def streams(tmp_path):
    def make(**ports):
        p = tmp_path / f"s{len(list(tmp_path.iterdir()))}.npz"
        np.savez(p, **{k: np.asarray(v) for k, v in ports.items()})
        return p
    return make


@pytest.mark.parametrize("ports,msg", [
    ({"x": [1, 2, 300], "w": [1, 2, 3]}, "port x holds 300, outside its signed 8-bit range -128..127"),
    ({"x": [1, 2, -129], "w": [1, 2, 3]}, "port x holds -129, outside its signed 8-bit range -128..127"),
    ({"x": [1, 2, 3]}, "lacks input port w of int-mac: give every data input (x, w); valid/clear default to 1/0"),
    ({"x": [1], "w": [1], "q": [1]}, "int-mac has no input port 'q' (inputs: x, w, valid, clear)"),
])
def test_stream_outside_the_ports_is_refused(capsys, streams, monkeypatch, ports, msg):
    _forbid(monkeypatch, "synth.energy.design_energy")
    path = streams(**ports)
    got = one_line_error(*run(capsys, "energy", "op", "int-mac", "--stream", path)[::2])
    assert msg in got and str(path) in got


@pytest.mark.parametrize("argv", [
    ["approx", "sweep", "--workers", "0"], ["approx", "sweep", "-j", "-3"], ["tile", "energy", "--workers", "0"],
    ["asm", "measure", "--workers", "-3"],
])
def test_worker_counts_must_be_positive(capsys, argv):
    assert "must be a positive integer" in one_line_error(*run(capsys, *argv)[::2])


@pytest.mark.parametrize("suffix,magic", [(".pdf", b"%PDF"), (".svg", b"<?xml"), (".png", b"\x89PNG")])
def test_plots_are_written_in_the_format_their_name_says(tmp_path, suffix, magic):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ecomac.plot import check_plot_path, save_figure
    path = check_plot_path(tmp_path / f"p{suffix}")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, path)
    assert path.read_bytes().startswith(magic)


@pytest.mark.parametrize("argv,msg", [
    (["asm", "values", "--alphabet", "1,,3"],
     "alphabet '1,,3' has an empty member; give odd integers in 1..15 separated by single commas"),
    (["verilog", "asm-mul", "-p", "alphabet=1,,3", "-o", "{t}/a.v"],
     "alphabet '1,,3' has an empty member; give integers separated by single commas"),
    (["synth", "int-mac", "--liberty", __file__, "--target", "ice40"],
     "--liberty maps to a cell library and applies to --target generic only, not ice40"),
])
def test_silently_accepted_input_is_refused(tmp_path, capsys, argv, msg):
    assert one_line_error(*run(capsys, *[a.replace("{t}", str(tmp_path)) for a in argv])[::2]) == msg
    assert list(tmp_path.iterdir()) == []


def test_cache_location_that_is_a_file(tmp_path, capsys, monkeypatch):
    f = tmp_path / "cachefile"
    f.write_text("x")
    monkeypatch.setenv("ECOMAC_CACHE", str(f))
    msg = one_line_error(*run(capsys, "synth", "int-mac")[::2])
    assert msg == f"ECOMAC_CACHE={f}: {f} is a file, not a folder; point ECOMAC_CACHE at a folder"
    monkeypatch.setenv("ECOMAC_CACHE", str(f / "sub"))
    assert "is a file, not a folder" in one_line_error(*run(capsys, "synth", "int-mac")[::2])


def test_liberty_without_timing_data_names_the_file(tmp_path, capsys):
    lib = tmp_path / "notiming.lib"
    lib.write_text('library (x) {\n  cell (inv) {\n    area : 1;\n    pin (A) { direction : input; }\n'
                   '    pin (Y) { direction : output; function : "!A"; }\n  }\n}\n')
    v = tmp_path / "add.v"
    v.write_text("module add2(input [1:0] a, input [1:0] b, output [2:0] y);\n  assign y = a + b;\nendmodule\n")
    msg = one_line_error(*run(capsys, "netlist", "stats", "--verilog", v, "--top", "add2", "--liberty", lib)[::2])
    assert msg == (f"liberty file {lib} has no timing data (no timing() groups): ABC needs cell delays "
                   "to map to it")


# ---- honest UX ------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["list"], ["approx", "list"]])
def test_listings_fit_100_columns(capsys, argv):
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 100


def test_list_json_keeps_the_default_rules(capsys):
    code, out, _ = run(capsys, "list", "--json")
    acc = next(p for p in next(d for d in json.loads(out) if d["name"] == "int-mac")["params"]
               if p["name"] == "acc_bits")
    assert acc["default"] == 24 and acc["default_rule"] == "max(24, 2*bits)"


def test_tile_energy_help_names_no_internal_constant():
    from synth.movement import BUS_MM
    sub = next(a for a in build_parser()._actions if hasattr(a, "choices") and a.choices and "tile" in a.choices)
    tile = sub.choices["tile"]
    energy = next(a for a in tile._actions if hasattr(a, "choices") and a.choices).choices["energy"]
    text = energy.format_help()
    assert "BUS_MM" not in text and "synth.movement" not in text
    assert f"default {BUS_MM:g} mm" in text


def test_energy_op_names_its_operands(capsys):
    code, out, _ = run(capsys, "energy", "op", "int-mac", "-p", "bits=4", "-p", "acc_bits=8")
    assert code == 0
    line = next(l for l in out.splitlines() if l.startswith("operands"))
    assert "uniform random" in line and "N(0,1)" in line
    code, out, _ = run(capsys, "energy", "op", "int-mac", "-p", "bits=4", "-p", "acc_bits=8", "--mode", "static")
    assert "none (static mode" in next(l for l in out.splitlines() if l.startswith("operands"))


def test_validation_builds_leave_no_unused_elaboratable_warnings():
    """The sweep validates every point by building it; those components are never elaborated
    and must not warn (they did in every `approx sweep`)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for d in all_designs():
            d.validate({})
        gc.collect()
    assert [w for w in caught if "UnusedElaboratable" in str(w.category.__name__)] == []


def test_heartbeat_is_silent_for_fast_steps_and_speaks_for_slow_ones():
    import io

    from ecomac.table import Heartbeat
    fast = io.StringIO()
    with Heartbeat("fast step", after=5.0, stream=fast):
        pass
    assert fast.getvalue() == ""
    slow = io.StringIO()
    with Heartbeat("slow step", after=0.05, every=10.0, stream=slow):
        time.sleep(0.3)
    lines = slow.getvalue().splitlines()
    assert lines[0] == "slow step ..." and lines[-1].startswith("slow step: done in ")


def test_repeated_tile_rows_come_from_the_cache(tmp_path, monkeypatch):
    from synth import tiles
    monkeypatch.setenv("ECOMAC_CACHE", str(tmp_path))
    calls = []

    def compute(job):
        calls.append(job)
        return {"tile": tiles.KIND_NAMES[job[0]], "datapath": job[1], "total_pj": 1.0 + len(calls)}
    monkeypatch.setattr(tiles, "_compute", compute)
    job = ("vn", "int", 4, 8, 64, 24, "static", 1.0, 0.0)
    first = tiles._one(job)
    assert tiles._one(job) == first and len(calls) == 1


# ---- external tools bounded -----------------------------------------------------------------
def test_yosys_runs_under_the_tool_timeout(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ECOMAC_TOOL_TIMEOUT", "0.01")
    monkeypatch.setenv("ECOMAC_CACHE", str(tmp_path / "cache"))                 # a miss: yosys must run
    v = tmp_path / "m.v"
    v.write_text(f"// {tempfile.mktemp()}\nmodule m(input a, output y); assign y = ~a; endmodule\n")
    msg = one_line_error(*run(capsys, "netlist", "stats", "--verilog", v, "--top", "m")[::2])
    assert "yosys did not finish within 0.01 s and was stopped" in msg


@pytest.mark.parametrize("argv,what", [
    (["energy", "op", "int-mac", "--stream", "{d}"], "stream file"),
    (["netlist", "stats", "--verilog", "{d}", "--top", "m"], "Verilog file"),
    (["netlist", "energy", "--verilog", "{d}", "--top", "m"], "Verilog file"),
    (["synth", "int-mac", "--liberty", "{d}"], "liberty file"),
    (["energy", "net", "--net", "{d}", "--datapath", "int8"], "net file"),
])
def test_an_input_that_is_a_folder_is_named_as_one(tmp_path, capsys, argv, what):
    d = tmp_path / "in.json"
    d.mkdir()
    msg = one_line_error(*run(capsys, *[a.replace("{d}", str(d)) for a in argv])[::2])
    assert msg == f"{what} {d} is a folder, not a file"


def test_generate_renames_the_top_and_its_submodules():
    """`module` (alwann pick: one name per tile) renames the top and prefixes every submodule;
    a name that is no Verilog identifier is refused in one line."""
    import re

    from rtl.export import generate
    text, sheet = generate("asm-mul", {}, module="asm_mul_tile3")
    names = re.findall(r"^module\s+([^\s(]+)", text, re.M)
    assert sheet["module"] == "asm_mul_tile3" and "asm_mul_tile3" in names
    assert all(n.lstrip("\\").startswith("asm_mul_tile3") for n in names), names
    with pytest.raises(ValueError, match=r"^module name must be a Verilog identifier \(letters, digits, _\), "
                                         r"got 'tile 3'$"):
        generate("asm-mul", {}, module="tile 3")
