"""The `ecomac` command: list, verilog + datasheet, synth (cached, FPGA targets), bad input."""
import json
import subprocess
import sys

import pytest

from ecomac.cli import main
from rtl.export import generate
from rtl.intmac import IntMac
from rtl.pot import MfmacArray, MfmacPe
from synth.yosys import coarse_cells, synthesize


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_json_names_every_design_with_parameters(capsys):
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    designs = {d["name"]: d for d in json.loads(out)}
    assert {"mfmac-pe", "mfmac-array", "int-mac"} <= designs.keys()
    assert {"exp_bits", "acc_bits"} <= {p["name"] for p in designs["mfmac-pe"]["params"]}
    code, out, _ = run(capsys, "list")
    assert code == 0 and "mfmac-array" in out


def test_verilog_writes_module_and_datasheet(tmp_path, capsys):
    out = tmp_path / "pe.v"
    code, _, _ = run(capsys, "verilog", "mfmac-pe", "--param", "exp_bits=2", "-p", "acc_bits=12", "-o", str(out))
    assert code == 0
    assert "module mfmac_pe" in out.read_text()
    sheet = json.loads((tmp_path / "pe.json").read_text())
    assert sheet["module"] == "mfmac_pe" and sheet["latency"] == 1
    assert {"exp_bits": 2, "acc_bits": 12}.items() <= sheet["parameters"].items()
    ports = {p["name"]: p for p in sheet["ports"]}
    assert ports["x"] == {"name": "x", "direction": "in", "width": 3, "signed": False}
    assert ports["acc"] == {"name": "acc", "direction": "out", "width": 12, "signed": True}
    assert {"clk", "rst", "valid", "clear"} <= ports.keys()
    assert sheet["description"]


def test_verilog_all_writes_every_default_design(tmp_path, capsys):
    from ecomac.designs import default_designs
    code, _, _ = run(capsys, "verilog", "--all", "-o", str(tmp_path))
    assert code == 0
    modules = {d.module for d in default_designs()}
    # exactly one .v and one datasheet per default design, and no temporary file left over
    assert {p.name for p in tmp_path.iterdir()} == {f"{m}.{ext}" for m in modules for ext in ("v", "json")}
    for m in modules:
        sheet = json.loads((tmp_path / f"{m}.json").read_text())
        assert sheet["module"] == m and f"module {m}(" in (tmp_path / f"{m}.v").read_text()


def test_synth_json_is_cached_and_counts_transistors(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ECOMAC_CACHE", str(tmp_path / "cache"))
    code, out, _ = run(capsys, "synth", "mfmac-pe", "--json")
    assert code == 0
    res = json.loads(out)
    assert res["transistors"] > 0 and res["flip_flops"] == 24
    assert res["cells_total"] == sum(res["cells"].values())
    assert set(res["cells"]) <= {"$_AND_", "$_NAND_", "$_OR_", "$_NOR_", "$_XOR_", "$_XNOR_",
                                 "$_ANDNOT_", "$_ORNOT_", "$_MUX_", "$_NOT_", "$_DFF_P_"}
    cached = list((tmp_path / "cache" / "synth").rglob("*.json"))
    assert len(cached) == 1
    code, out2, _ = run(capsys, "synth", "mfmac-pe", "--json")
    assert json.loads(out2) == res


@pytest.mark.parametrize("target", ["ice40", "ecp5"])
def test_synth_fpga_targets_report_luts_and_ffs(capsys, target):
    code, out, _ = run(capsys, "synth", "int-mac", "--target", target, "--json")
    assert code == 0
    res = json.loads(out)
    assert res["luts"] > 0 and res["flip_flops"] == 24
    assert {"carry", "dsp", "bram"} <= res.keys()


def test_mfmac_has_no_multiplier_but_int_mac_has_one():
    for comp in ("mfmac-pe", "mfmac-array"):
        text, sheet = generate(comp, {"rows": 2, "cols": 2} if comp == "mfmac-array" else {})
        assert "$mul" not in coarse_cells(text, sheet["module"])
    text, sheet = generate("int-mac")
    assert coarse_cells(text, sheet["module"]).get("$mul") == 1


def test_mfmac_pe_is_cheaper_than_int_mac():
    pe = synthesize(*(lambda t, s: (t, s["module"]))(*generate("mfmac-pe")))
    im = synthesize(*(lambda t, s: (t, s["module"]))(*generate("int-mac")))
    assert pe["transistors"] < im["transistors"]


@pytest.mark.parametrize("argv,message", [
    (["synth", "mfmac-pe", "-p", "exp_bits=0"], "exp_bits must be in 1..5, got 0"),
    (["synth", "mfmac-pe", "-p", "acc_bits=13"], "acc_bits must be in 14..64, got 13"),
    (["synth", "mfmac-array", "-p", "rows=0"], "rows must be in 1..64, got 0"),
    (["synth", "mfmac-array", "-p", "cols=65"], "cols must be in 1..64, got 65"),
    (["synth", "int-mac", "-p", "acc_bits=15"], "acc_bits must be in 16..64, got 15"),
    (["synth", "nope"], "unknown design 'nope'"),
    (["synth", "mfmac-pe", "-p", "exp_bits"], "--param must look like NAME=VALUE, got 'exp_bits'"),
    (["synth", "mfmac-pe", "-p", "exp_bits=three"], "exp_bits must be an integer, got 'three'"),
    (["synth", "mfmac-pe", "-p", "rows=2"], "unknown parameter 'rows' for design mfmac-pe"),
    (["synth", "mfmac-pe", "--target", "asic"], "invalid choice: 'asic'"),
    (["verilog", "-o", "x.v"], "a design name is required"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("ecomac: error: ") and message in err
    assert err.count("\n") == 1


def test_bad_parameter_leaves_no_file(tmp_path, capsys):
    out = tmp_path / "bad.v"
    code, _, err = run(capsys, "verilog", "mfmac-pe", "-p", "exp_bits=9", "-o", str(out))
    assert code == 2 and "exp_bits must be in 1..5, got 9" in err
    assert list(tmp_path.iterdir()) == []


def test_bad_parameter_keeps_an_existing_file(tmp_path, capsys):
    out = tmp_path / "pe.v"
    out.write_text("previous\n")
    code, _, _ = run(capsys, "verilog", "mfmac-pe", "-p", "acc_bits=2", "-o", str(out))
    assert code == 2 and out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pe.v"]


def test_atomic_write_failing_mid_write_leaves_no_partial_file(tmp_path, monkeypatch):
    """A write that dies half-way (disk full) keeps the old content and leaves no temporary file."""
    from pathlib import Path
    from synth.cache import atomic_write
    out = tmp_path / "x.v"
    out.write_text("old\n")
    real = Path.write_text

    def half_then_fail(self, data, *a, **k):
        real(self, data[: len(data) // 2], *a, **k)
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(out, "module m; endmodule\n")
    monkeypatch.undo()
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.v"]
    atomic_write(tmp_path / "new" / "y.v", "full\n")             # creates the folder, writes it whole
    assert (tmp_path / "new" / "y.v").read_text() == "full\n"


def test_console_script_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ecomac", "synth", "mfmac-pe", "-p", "exp_bits=-1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "ecomac: error: exp_bits must be in 1..5, got -1"


@pytest.mark.parametrize("cls,kwargs,exc,message", [
    (MfmacPe, {"exp_bits": 0}, ValueError, "exp_bits must be in 1..5, got 0"),
    (MfmacPe, {"exp_bits": 3, "acc_bits": 8}, ValueError, "acc_bits must be in 14..64, got 8"),
    (MfmacPe, {"exp_bits": "3"}, TypeError, "exp_bits must be an integer in 1..5, not '3'"),
    (MfmacArray, {"rows": 0}, ValueError, "rows must be in 1..64, got 0"),
    (IntMac, {"bits": 1}, ValueError, "bits must be in 2..32, got 1"),
    (IntMac, {"bits": 8, "acc_bits": 100}, ValueError, "acc_bits must be in 16..64, got 100"),
])
def test_constructor_messages(cls, kwargs, exc, message):
    with pytest.raises(exc) as e:
        cls(**kwargs)
    assert str(e.value) == message
