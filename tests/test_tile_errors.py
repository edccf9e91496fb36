"""Bad tile parameters and bad weights: one-line errors naming what is wrong."""
import numpy as np
import pytest

from ecomac.cli import main
from golden import tile as gtile
from rtl.registry import build


def one_line(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("design", ["tile-vn", "tile-near", "tile-in"])
@pytest.mark.parametrize("params,exc,text", [
    ({"lanes": 0}, ValueError, "lanes must be in 1..64, got 0"),
    ({"depth": 0}, ValueError, "depth must be in 1..4096, got 0"),
    ({"lanes": 2.5}, TypeError, "lanes must be an integer in 1..64, not 2.5"),
    ({"datapath": "fp8"}, ValueError, "datapath must be one of int, mfmac, asm, got 'fp8'"),
    ({"datapath": "mfmac", "x_bits": 8}, ValueError,
     "datapath mfmac streams PoT codes of exp_bits+1 = 4 bits: x_bits must be 0 (auto) or 4, got 8"),
    ({"datapath": "mfmac", "exp_bits": 3, "acc_bits": 12}, ValueError,
     "acc_bits must be >= 14 for datapath mfmac with exp_bits=3, got 12"),
    ({"datapath": "asm", "w_bits": 6}, ValueError, "w_bits must be a multiple of 4 in 4..12 (4, 8 or 12), got 6"),
    ({"datapath": "asm", "alphabet": (1, 4)}, ValueError, "alphabet members must be odd integers in 1..15, got 4"),
    ({"datapath": "asm", "alphabet": (3, 5)}, ValueError, "alphabet must contain 1, got {3,5}"),
    ({"datapath": "asm", "x_bits": 8, "w_bits": 12, "acc_bits": 16}, ValueError,
     "acc_bits must be >= 20 (x_bits + w_bits) for datapath asm, got 16"),
    ({"datapath": "int", "x_bits": 12, "acc_bits": 20}, ValueError,
     "acc_bits must be >= 24 (2 * max(x_bits, w_bits)) for datapath int, got 20"),
    ({"datapath": "int", "w_bits": 17}, ValueError, "w_bits must be in 0..16, got 17"),
])
def test_bad_parameters(design, params, exc, text):
    with pytest.raises(exc) as e:
        build(design, params)
    assert one_line(e) == text


def test_bad_bus_width():
    with pytest.raises(ValueError) as e:
        build("tile-vn", {"bus_bits": 0})
    assert one_line(e) == "bus_bits must be in 1..4096, got 0"


@pytest.mark.parametrize("datapath,extra,W,text", [
    ("asm", {"alphabet": (1,)}, 3, "weight 3 is not representable with alphabet {1} (w_bits=8); nearest representable: 2"),
    ("asm", {"alphabet": (1, 3)}, 300, "weight 300 is outside the 8-bit sign-magnitude range -255..255"),
    ("mfmac", {}, 3, "weight 3 is not representable as a PoT code with exp_bits=3 (0 or +-2^n, n in 0..6)"),
    ("mfmac", {}, 128, "weight 128 is not representable as a PoT code with exp_bits=3 (0 or +-2^n, n in 0..6)"),
    ("int", {"w_bits": 4}, -9, "weight -9 is outside the signed 4-bit range -8..7"),
])
def test_weights_not_representable(datapath, extra, W, text):
    s = gtile.spec("in", 2, 2, datapath, **extra)
    with pytest.raises(ValueError) as e:
        gtile.encode_weights(s, np.array([[0, 1], [W, -1]]))
    assert one_line(e) == text


def test_weight_shape_and_inputs():
    s = gtile.spec("near", 2, 3, "int")
    with pytest.raises(ValueError) as e:
        gtile.encode_weights(s, np.zeros((3, 2), int))
    assert one_line(e) == "weights must have shape (lanes, depth) = (2, 3), got (3, 2)"
    with pytest.raises(ValueError) as e:
        gtile.encode_inputs(s, np.array([[0, 200, 0]]))
    assert one_line(e) == "input 200 is outside the signed 8-bit range -128..127"


def test_cli_reports_bad_tile_parameters(capsys, tmp_path):
    code = main(["verilog", "tile-in", "-p", "datapath=posit", "-o", str(tmp_path / "t.v")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "ecomac: error: datapath must be one of int, mfmac, asm, got 'posit'\n"
    code = main(["verilog", "tile-vn", "-p", "lanes=0", "-o", str(tmp_path / "t.v")])
    assert code == 2 and capsys.readouterr().err == "ecomac: error: lanes must be in 1..64, got 0\n"
    assert not (tmp_path / "t.v").exists()


@pytest.mark.parametrize("argv,text", [
    (["--lanes", "0"], "--lanes must be in 1..64, got 0"),
    (["--depth", "5000"], "--depth must be in 1..4096, got 5000"),
    (["--mode", "guess"], "mode must be one of static, activity, timed, got 'guess'"),
    (["--bus-mm", "-1"], "--bus-mm must be a number >= 0, got -1"),
])
def test_cli_tile_energy_bad_arguments(capsys, argv, text):
    code = main(["tile", "energy", *argv])
    assert code == 2
    assert capsys.readouterr().err == f"ecomac: error: {text}\n"
