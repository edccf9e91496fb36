"""`ecomac fpga` (synth/fpga.py): one small place and route on an iCE40 HX8K, the shells, the
pipelined MF-MAC's datasheet, bad input. The full table is `make fpga`, not a test."""
import json
import shutil
import subprocess

import pytest

from ecomac.cli import main
from rtl.export import generate
from synth import fpga


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_place_and_route_small_mac_on_hx8k(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ECOMAC_CACHE", str(tmp_path / "cache"))      # a real run, not a cache hit
    code, out, _ = run(capsys, "fpga", "mfmac-pe", "-p", "exp_bits=1", "-p", "acc_bits=4",
                       "--device", "ice40-hx8k", "--json")
    assert code == 0
    r = json.loads(out)
    assert r["device"] == "ice40-hx8k" and r["shell"] == "io" and r["lut_mapper"] == "abc9"
    assert r["router"] == "router1"
    # pins: x, w (2 bits each), valid, clear, acc (4), clk, rst
    assert r["pins"] == 2 + 2 + 1 + 1 + 4 + 2
    assert r["utilization"]["SB_IO"]["used"] == r["pins"]
    lc = r["utilization"]["ICESTORM_LC"]
    assert 0 < lc["used"] <= lc["available"] == 7680
    # the io shell is one flip-flop per data pin bit plus the registered reset
    assert r["shell_share"]["flip_flops"] == 2 + 2 + 1 + 1 + 4 + 1
    assert r["design_only"]["flip_flops"] == 4 and r["flip_flops"] == 4 + r["shell_share"]["flip_flops"]
    (clock,) = r["clocks"]
    assert r["fmax_mhz"] == clock["fmax_mhz"] > 0 and clock["constraint_mhz"] == 48
    assert r["timing_met"] == (clock["fmax_mhz"] >= 48)
    cp = r["critical_path"]
    assert cp["start"] and cp["end"] and cp["delay_ns"] == pytest.approx(1000 / r["fmax_mhz"], rel=0.05)
    # the same seed is a cache hit with the same figures; the table form prints them
    code, out, _ = run(capsys, "fpga", "mfmac-pe", "-p", "exp_bits=1", "-p", "acc_bits=4", "--device", "ice40-hx8k")
    assert code == 0 and f"{r['fmax_mhz']:.1f}" in out and "io shell" in out


@pytest.mark.skipif(not shutil.which("iverilog"), reason="needs Icarus Verilog")
@pytest.mark.parametrize("shell", ["io", "sipo"])
def test_shell_passes_a_product_through(tmp_path, shell):
    """The shells only move bits: a 2x2 multiplier inside them still multiplies."""
    text, sheet = generate("mul-array", {"bits": 2})
    shell_text = fpga.shell_verilog(sheet["module"], sheet["ports"], shell)
    if shell == "io":
        drive = "pin_in = {b, a}; @(posedge clk); @(posedge clk); #1 got = pin_out;"
        ports = "reg [3:0] pin_in; wire [3:0] pin_out;"
        inst = "ecomac_fpga_shell s(.clk(clk), .pin_in(pin_in), .pin_out(pin_out));"
    else:
        # shift b then a in (MSB first, in_q fills at bit 0), capture one clock, shift 4 bits out
        drive = ("se = 1; for (k = 3; k >= 0; k = k - 1) begin si = v[k]; @(posedge clk); #1; end "
                 "se = 0; @(posedge clk); #1; se = 1; "
                 "for (k = 3; k >= 0; k = k - 1) begin got[k] = so; @(posedge clk); #1; end")
        ports = "reg si, se; wire so; reg [3:0] v; integer k;"
        inst = "ecomac_fpga_shell s(.clk(clk), .si(si), .se(se), .so(so));"
        drive = "v = {b, a}; " + drive
    tb = f"""module tb; reg clk = 0; always #5 clk = ~clk; reg [1:0] a, b; reg [3:0] got; integer i;
{ports}
{inst}
initial begin
  for (i = 0; i < 16; i = i + 1) begin a = i[1:0]; b = i[3:2]; {drive}
    $display("%0d %0d %0d", a, b, got); end
  $finish;
end
endmodule
"""
    (tmp_path / "all.v").write_text(text + shell_text + tb)
    subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "sim"), "-s", "tb", str(tmp_path / "all.v")],
                   check=True, timeout=60)
    out = subprocess.run(["vvp", "-n", str(tmp_path / "sim")], capture_output=True, text=True, timeout=60).stdout
    rows = [tuple(map(int, line.split())) for line in out.splitlines() if line and line[0].isdigit()]
    assert len(rows) == 16 and all(p == a * b for a, b, p in rows)


def test_router2_takes_over_when_router1_runs_out_of_time(tmp_path, monkeypatch):
    """router1 can circle for hours on a congested design (tile-in on the HX8K): past
    ROUTER1_LIMIT_S the run is repeated with router2, and the result says so."""
    monkeypatch.setenv("ECOMAC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fpga, "ROUTER1_LIMIT_S", 0.01)          # router1 is stopped at once
    text, sheet = generate("mfmac-pe", {"exp_bits": 1, "acc_bits": 4})
    r = fpga.place_and_route(text, sheet["module"], sheet["ports"], "ice40-hx8k", design="mfmac-pe")
    assert r["router"] == "router2" and r["fmax_mhz"] > 0
    with pytest.raises(fpga.ToolTimeout, match="did not finish within 0.01 s"):   # no time left for router2
        fpga.place_and_route(text, sheet["module"], sheet["ports"], "ice40-hx8k", design="mfmac-pe", seed=2,
                             timeout=0.01)


def test_pins_and_fit_messages(capsys):
    _, sheet = generate("int-mac", {})
    assert fpga.pins_needed(sheet["ports"], "io") == 8 + 8 + 1 + 1 + 24 + 2
    assert fpga.pins_needed(sheet["ports"], "sipo") == 5
    code, _, err = run(capsys, "fpga", "int-mac", "--device", "ice40-up5k", "--shell", "io")
    assert code == 2
    assert err.strip() == ("ecomac: error: int-mac does not fit ice40-up5k: 44 IO pins used (io shell), "
                           "39 available in package sg48 (use the sipo shell)")


def test_fit_error_reads_nextpnr_utilisation():
    log = "Info: Device utilisation:\nInfo: \t     ICESTORM_LC: 14813/ 5280   280%\nInfo: \t    ICESTORM_RAM:     0/   30     0%\n"
    assert fpga._fit_error(log, fpga.DEVICES["ice40-up5k"], "mfmac-array") == \
        "mfmac-array does not fit ice40-up5k: ICESTORM_LC 14813 used, 5280 available"


@pytest.mark.parametrize("argv,msg", [
    (["fpga", "mfmac-pe"], "--device is required (one of ice40-up5k, ice40-hx8k, ecp5-25k, ecp5-85k)"),
    (["fpga", "mfmac-pe", "--all"], "give a design or --all, not both"),
    (["fpga", "mfmac-pe", "--device", "ice40-hx8k", "--device", "ecp5-25k"],
     "give one --device for a single design (several only with --all)"),
    (["fpga", "mfmac-pe", "--device", "ice40-hx8k", "--freq", "0"], "--freq must be a number in (0, 1000], got 0"),
    (["fpga", "mfmac-pe", "--device", "ice40-hx8k", "--seed", "-1"], "--seed must be in 0..2147483647, got -1"),
])
def test_fpga_bad_input_is_one_line(capsys, argv, msg):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err == f"ecomac: error: {msg}\n"


def test_bad_device_lists_the_devices(capsys):
    code, _, err = run(capsys, "fpga", "mfmac-pe", "--device", "ice40-lp1k")
    assert code == 2 and "ice40-lp1k" in err and "ice40-up5k" in err and "ecp5-85k" in err
    with pytest.raises(ValueError, match="device must be one of ice40-up5k, ice40-hx8k, ecp5-25k, ecp5-85k"):
        fpga.fpga_design("mfmac-pe", {}, "xc7a35t")


def test_pipelined_mfmac_datasheet_and_parameter(capsys, tmp_path):
    _, sheet = generate("mfmac-pe", {"pipeline": True})
    assert sheet["latency"] == 2 and sheet["parameters"]["pipeline"] is True
    assert generate("mfmac-pe", {})[1]["latency"] == 1
    assert generate("mfmac-pe", {"pipeline": 2})[1]["latency"] == 3
    # the CLI reads 0..2 and the former boolean spellings
    for text, latency in (("0", 1), ("true", 2), ("1", 2), ("2", 3)):
        code, _, _ = run(capsys, "verilog", "mfmac-pe", "-p", f"pipeline={text}", "-o", str(tmp_path / "x.v"))
        assert code == 0 and json.loads((tmp_path / "x.json").read_text())["latency"] == latency
    for text, msg in (("maybe", "pipeline must be 0, 1 or 2 (register stages added), got 'maybe'"),
                      ("3", "pipeline must be in 0..2, got 3")):
        code, _, err = run(capsys, "verilog", "mfmac-pe", "-p", f"pipeline={text}", "-o", str(tmp_path / "x.v"))
        assert code == 2 and err == f"ecomac: error: {msg}\n"


def test_mac_comparison_keeps_each_pipeline_depth():
    """`make fpga`'s MAC table: pipeline=1 and pipeline=2 are separate rows, each against int-mac."""
    from ecomac.cmd_fpga import COMPARE, _compare_rows
    assert ("mfmac-pe", {"pipeline": 1}) in COMPARE and ("mfmac-pe", {"pipeline": 2}) in COMPARE

    def row(design, params, fmax):
        return {"design": design, "params": params, "device": "ice40-up5k", "latency": 1 + params.get("pipeline", 0),
                "luts": 1, "flip_flops": 1, "dsp": 0, "fmax_mhz": fmax, "critical_path": None}
    rows = [row("int-mac", {"bits": 8}, 50.0), row("mfmac-pe", {"pipeline": 0}, 25.0),
            row("mfmac-pe", {"pipeline": True}, 50.0), row("mfmac-pe", {"pipeline": 2}, 75.0)]
    got = {r[1]: (r[2], r[6], r[7]) for r in _compare_rows(rows)}
    assert got == {"int-mac": (1, "50.0", "1.00"), "mfmac-pe": (1, "25.0", "0.50"),
                   "mfmac-pe pipeline=1": (2, "50.0", "1.00"), "mfmac-pe pipeline=2": (3, "75.0", "1.50")}


def test_split_accumulator_mfmac_at_least_as_fast_as_int_mac_on_up5k():
    """Issue 14's requirement on its tightest device: the iCE40 UP5K, where int-mac's multiply
    sits in a DSP and pipeline=1 only ties it. Two real runs (about 10 s without a cache)."""
    mf = fpga.fpga_design("mfmac-pe", {"pipeline": 2}, "ice40-up5k")
    im = fpga.fpga_design("int-mac", {}, "ice40-up5k")
    assert mf["latency"] == 3 and mf["dsp"] == 0 and im["dsp"] == 1
    assert mf["fmax_mhz"] >= im["fmax_mhz"] > 0
