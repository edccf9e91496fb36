"""`ecomac emulate`: the output equals net.kernels (matmul and --conv), and every bad input is
one line, exit 2, with no output file written."""
import json

import numpy as np
import pytest

from ecomac.cli import main
from net import kernels
from net.emulate import bench


@pytest.fixture
def ops(tmp_path):
    rng = np.random.default_rng(0)
    files = {
        "x": rng.integers(-128, 128, (30, 70)).astype(np.int8),
        "w": rng.integers(-128, 128, (70, 6)).astype(np.int8),
        "xbad": np.full((30, 70), 200, np.int16),
        "xf": np.zeros((30, 70)),
        "w71": np.zeros((71, 6), np.int64),
        "xc": rng.integers(-128, 128, (2, 3, 7, 7)),
        "wc": rng.integers(-128, 128, (4, 3, 3, 3)),
        "wc2": rng.integers(-128, 128, (4, 2, 3, 3)),
        "wasm": np.full((70, 6), 11),
        "xpot": rng.integers(0, 16, (30, 70)),
        "wpot": rng.integers(0, 16, (70, 6)),
        "x3d": np.zeros((2, 3, 4), np.int64),
    }
    for k, v in files.items():
        np.save(tmp_path / f"{k}.npy", v)
    (tmp_path / "junk.npy").write_text("hello")
    (tmp_path / "dir.npy").mkdir()
    with open(tmp_path / "arch.npy", "wb") as fh:         # an .npz archive under a .npy name
        np.savez(fh, a=np.zeros(3))
    return tmp_path, files


@pytest.mark.parametrize("spec,x,w,extra", [
    ("int8", "x", "w", []), ("approx:mul-drum,k=3", "x", "w", ["--acc-bits", "18"]),
    ("approx:mul-mitchell", "x", "w", []), ("mfmac", "xpot", "wpot", []),
])
def test_matmul_output_equals_kernels(ops, spec, x, w, extra, capsys):
    d, f = ops
    out = d / "y.npy"
    assert main(["emulate", "--datapath", spec, "--x", str(d / f"{x}.npy"), "--w", str(d / f"{w}.npy"),
                 "-o", str(out), "--json", *extra]) == 0
    res = json.loads(capsys.readouterr().out)
    full = spec + (f",acc_bits={extra[1]}" if extra else "")
    y = np.load(out)
    assert y.dtype == np.int64 and res["shape"] == [30, 6]
    assert np.array_equal(y, kernels.matmul(full, f[x], f[w]))


def test_conv_output_equals_kernels(ops, capsys):
    d, f = ops
    out = d / "yc.npy"
    assert main(["emulate", "--datapath", "approx:mul-bam,vbl=6", "--conv", "--x", str(d / "xc.npy"),
                 "--w", str(d / "wc.npy"), "--stride", "2", "--padding", "1", "-o", str(out)]) == 0
    assert "2 x 4 x 4 x 4 int64" in capsys.readouterr().out
    assert np.array_equal(np.load(out), kernels.conv2d_definition("approx:mul-bam,vbl=6", f["xc"], f["wc"], 2, 1))


BAD = [
    (["--datapath", "int8", "--x", "xbad", "--w", "w"], "X: int8 x-codes must be in -128..127, found 200"),
    (["--datapath", "int8", "--x", "xf", "--w", "w"], "X: int8 operand codes must be integers, got dtype float64"),
    (["--datapath", "int8", "--x", "x", "--w", "w71"], "X is 30 x 70 but W is 71 x 6: X's columns must equal W's rows (K)"),
    (["--datapath", "int8", "--x", "x3d", "--w", "w"], "X must be M x K and W K x N (2-D; --conv for 4-D), got 3-D"),
    (["--datapath", "int8", "--x", "junk", "--w", "w"], "junk.npy: not a .npy file (no NumPy header)"),
    (["--datapath", "int8", "--x", "nope", "--w", "w"], "nope.npy does not exist"),
    (["--datapath", "int8", "--x", "dir", "--w", "w"], "dir.npy is a directory, not a .npy file"),
    (["--datapath", "int8", "--x", "arch", "--w", "w"], "arch.npy: not a .npy file (no NumPy header); save it with numpy.save"),
    (["--datapath", "asm,alphabet=1/3", "--x", "x", "--w", "wasm"],
     "W: weight 11 is not representable by alphabet {1,3} at w_bits=8"),
    (["--datapath", "mfmac", "--x", "x", "--w", "wpot"], "X: mfmac x-codes must be in 0..15, found "),
    (["--datapath", "lut:nope.bin", "--x", "x", "--w", "w"], "datapath 'lut:nope.bin': table nope.bin does not exist"),
    (["--datapath", "int8,acc_bits=20", "--acc-bits", "18", "--x", "x", "--w", "w"],
     "--acc-bits 18 and the datapath's own acc_bits ('int8,acc_bits=20') both given; give one"),
    (["--datapath", "int8", "--acc-bits", "12", "--x", "x", "--w", "w"],
     "acc_bits must be at least 16 (one product's width), got 12"),
    (["--datapath", "int9", "--x", "x", "--w", "w"], "unknown datapath 'int9'"),
    (["--datapath", "int8", "--conv", "--x", "x", "--w", "w"], "--conv: X must be N x C x H x W"),
    (["--datapath", "int8", "--conv", "--x", "xc", "--w", "wc2"], "--conv: X has 3 channels but W expects 2"),
    (["--datapath", "int8", "--x", "x", "--w", "w", "--stride", "2"], "--stride and --padding apply to --conv only"),
    (["--datapath", "int8", "--x", "x"], "emulate needs --w, -o (or --bench)"),
    (["--bench", "--datapath", "int8"], "--bench takes no operands (--datapath, -o given)"),
]


@pytest.mark.parametrize("args,msg", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_input_one_line_no_output(ops, args, msg, capsys):
    d, _ = ops
    out = d / "bad.npy"
    argv = ["emulate"]
    for i, a in enumerate(args):
        argv.append(str(d / f"{a}.npy") if i and args[i - 1] in ("--x", "--w") else a)
    if "-o" not in argv and msg.startswith("emulate needs") is False:
        argv += ["-o", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and err.startswith("ecomac: error: ")
    assert not out.exists() and not list(d.glob(".bad.npy*"))


def test_output_suffix_checked(ops, capsys):
    d, _ = ops
    assert main(["emulate", "--datapath", "int8", "--x", str(d / "x.npy"), "--w", str(d / "w.npy"),
                 "-o", str(d / "y.txt")]) == 2
    assert "must end in .npy" in capsys.readouterr().err


def test_bench_rows_on_a_small_shape():
    """The benchmark's rows (tiny shape: structure and the bit-exactness check, not speed)."""
    rows = bench(shapes=((64, 40, 8),), datapaths=(("int8", 2), ("approx:mul-drum", 6), ("lut:TABLE.npy", 10)),
                 repeats=1)
    assert [r["datapath"] for r in rows] == ["int8", "approx:mul-drum", "lut:TABLE.npy"]
    for r in rows:
        assert r["shape"] == "64x40x8" and r["bit_exact"] is True
        assert r["gmac_s"] == pytest.approx(64 * 40 * 8 / r["seconds"] / 1e9)
        assert r["ratio"] == pytest.approx(r["seconds"] / r["fp32_seconds"])     # one round: its own ratio
    assert rows[2]["path"] == "table" and rows[1]["path"] == "blas"
