"""golden.datapath: every spec form, the canonical round trip, every one-line error, operand
codes, the golden products, and the quantizers' properties."""
import numpy as np
import pytest

from golden import approx, approx_mac, asm, pot
from golden.datapath import parse

SPECS = {
    "fp32": ("fp32", {}),
    "int8": ("int8", {"acc_bits": 24}),
    "int8,acc_bits=32": ("int8", {"acc_bits": 32}),
    "mfmac": ("mfmac", {"exp_bits": 3, "acc_bits": 24, "accumulator": "serial"}),
    "mfmac,exp_bits=2": ("mfmac", {"exp_bits": 2, "acc_bits": 24, "accumulator": "serial"}),
    "mfmac,exp_bits=5": ("mfmac", {"exp_bits": 5, "acc_bits": 62, "accumulator": "serial"}),   # widened default
    "mfmac,accumulator=tree8": ("mfmac", {"exp_bits": 3, "acc_bits": 24, "accumulator": "tree8"}),
    "asm": ("asm", {"alphabet": (1, 3, 5, 7), "w_bits": 8, "x_bits": 8, "lanes": 16, "acc_bits": 24}),
    "asm,alphabet=1/3,w_bits=8": ("asm", {"alphabet": (1, 3), "w_bits": 8, "x_bits": 8, "lanes": 16, "acc_bits": 24}),
    " asm , alphabet = 3/1 , lanes=4 ": ("asm", {"alphabet": (1, 3), "w_bits": 8, "x_bits": 8, "lanes": 4, "acc_bits": 24}),
    "approx:mul-drum": ("approx", {"family": "mul-drum", "k": 4, "acc_bits": 24}),
    "approx:mul-bam,vbl=4,hbl=2": ("approx", {"family": "mul-bam", "vbl": 4, "hbl": 2, "acc_bits": 24}),
    "approx:mul-trunc,k=6,correction=1,acc_bits=20": ("approx", {"family": "mul-trunc", "k": 6, "correction": True,
                                                                 "acc_bits": 20}),
    "approx:mul-mitchell,frac_bits=5": ("approx", {"family": "mul-mitchell", "frac_bits": 5, "acc_bits": 24}),
    "approx:mul-array": ("approx", {"family": "mul-array", "acc_bits": 24}),
}


@pytest.mark.parametrize("spec", SPECS)
def test_spec_forms_and_canonical_round_trip(spec):
    kind, params = SPECS[spec]
    dp = parse(spec)
    assert dp.kind == kind and dp.params == params
    again = parse(dp.canonical)
    assert again.canonical == dp.canonical and again.params == dp.params
    assert parse(dp) is dp


def _table_files(tmp_path):
    t = approx.table("mul-drum", bits=8, k=3).astype(np.int64)
    np.save(tmp_path / "drum.npy", t.astype(np.uint16))
    np.save(tmp_path / "drum_flat.npy", t.reshape(-1).astype(np.int32))
    (tmp_path / "drum.bin").write_bytes(t.astype("<u2").tobytes())
    return t


@pytest.mark.parametrize("name", ["drum.npy", "drum_flat.npy", "drum.bin"])
def test_lut_tables_load_and_multiply_like_the_family(tmp_path, name):
    t = _table_files(tmp_path)
    dp = parse(f"lut:{tmp_path / name},acc_bits=30")
    assert dp.kind == "lut" and dp.acc_bits == 30 and dp.mac_design is None
    assert np.array_equal(dp.table(), t)
    assert parse(dp.canonical).canonical == dp.canonical
    x, w = np.arange(-128, 128)[:, None], np.arange(-128, 128)[None, :]
    assert np.array_equal(dp.product(x, w), approx_mac.product(x, w, "mul-drum", 8, k=3))


def test_lut_verilog_goes_through_the_loader(tmp_path):
    v = tmp_path / "m.v"
    v.write_text("module m(input [7:0] a, input [7:0] b, output [15:0] p); assign p = a * b; endmodule\n")
    seen = []

    def loader(path, top):
        seen.append((path, top))
        return approx.table("mul-array", bits=8)
    dp = parse(f"lut:{v},top=m", table_loader=loader)
    assert seen == [(str(v), "m")] and dp.params["top"] == "m"
    with pytest.raises(ValueError, match=r"circuit .*m.v is a 4x4-bit multiplier; lut: takes an 8x8 one"):
        parse(f"lut:{v}", table_loader=lambda path, top: approx.table("mul-array", bits=4))
    assert np.array_equal(dp.product(np.array([-3, 5]), np.array([7, -128])), [-21, -640])


BAD = [
    ("", "datapath must be a non-empty spec string (datapaths: fp32, int8, mfmac, asm, approx:"),
    ("int9", "unknown datapath 'int9' (datapaths: fp32, int8, mfmac, asm, approx:FAMILY[,NAME=VALUE...], lut:FILE[,top=NAME])"),
    ("approx", "unknown datapath 'approx'"),
    ("int8,acc_bits=20,acc_bits=22", "datapath 'int8,acc_bits=20,acc_bits=22': parameter acc_bits is given twice"),
    ("int8,exp_bits=3", "datapath 'int8,exp_bits=3': unknown parameter 'exp_bits' (parameters: acc_bits)"),
    ("fp32,acc_bits=24", "datapath 'fp32,acc_bits=24': unknown parameter 'acc_bits' (parameters: none)"),
    ("int8,acc_bits", "datapath 'int8,acc_bits': expected NAME=VALUE after 'int8', got 'acc_bits'"),
    ("int8,", "datapath 'int8,': expected NAME=VALUE after 'int8', got ''"),
    ("int8,acc_bits=x", "datapath 'int8,acc_bits=x': acc_bits must be an integer in 2..62, got 'x'"),
    ("int8,acc_bits=63", "datapath 'int8,acc_bits=63': acc_bits must be in 2..62, got 63"),
    ("int8,acc_bits=12", "datapath 'int8,acc_bits=12': acc_bits must be at least 16 (one product's width), got 12"),
    ("mfmac,exp_bits=6", "datapath 'mfmac,exp_bits=6': exp_bits must be in 1..5, got 6"),
    ("mfmac,exp_bits=4,acc_bits=24", "acc_bits must be at least 30 (one product's width), got 24"),
    ("mfmac,accumulator=tree3", "datapath 'mfmac,accumulator=tree3': accumulator must be one of serial, tree2"),
    ("asm,w_bits=5", "datapath 'asm,w_bits=5': w_bits must be 4, 8 or 12, got 5"),
    ("asm,lanes=0", "datapath 'asm,lanes=0': lanes must be in 1..64, got 0"),
    ("asm,alphabet=1//3", "datapath 'asm,alphabet=1//3': alphabet '1//3' has an empty member (odd integers in "
                          "1..15 separated by single '/', e.g. 1/3/5/7)"),
    ("asm,alphabet=1/3/", "alphabet '1/3/' has an empty member"),
    ("asm,alphabet=1,3", "datapath 'asm,alphabet=1,3': expected NAME=VALUE after 'asm', got '3'"),
    ("asm,alphabet=1/x", "alphabet must be odd integers in 1..15 separated by '/' (e.g. 1/3/5/7), got '1/x'"),
    ("asm,alphabet=2/3", "datapath 'asm,alphabet=2/3': alphabet members must be odd integers in 1..15, got 2"),
    ("asm,alphabet=3", "alphabet must contain 1"),
    ("asm,alphabet=1/3/3", "alphabet has duplicate member 3"),
    ("approx:", "datapath 'approx:': needs a multiplier family after 'approx:' (families: mul-array"),
    ("approx:mul-foo", "unknown multiplier family 'mul-foo' (families: mul-array, mul-exact"),
    ("approx:mul-drum,k=99", "datapath 'approx:mul-drum,k=99': k must be in 1..8, got 99"),
    ("approx:mul-drum,k=six", "datapath 'approx:mul-drum,k=six': k must be an integer, got 'six'"),
    ("approx:mul-drum,vbl=3", "vbl does not apply to multiplier mul-drum (its parameters: k, acc_bits)"),
    ("approx:mul-drum,q=1", "datapath 'approx:mul-drum,q=1': unknown parameter 'q' (parameters: k, acc_bits)"),
    ("approx:mul-drum,bits=4", "bits is fixed by the datapath"),
    ("approx:mul-trunc,correction=2", "correction must be 0 or 1, got '2'"),
    ("approx:mul-drum,k=4,k=5", "parameter k is given twice"),
    ("lut:", "datapath 'lut:': needs a file after 'lut:' (a .bin/.npy table or a .v circuit)"),
    ("lut:nope.bin", "datapath 'lut:nope.bin': table nope.bin does not exist"),
    ("lut:t.txt", "unknown format '.txt' (allowed: .bin, .npy, .v)"),
    ("lut:m.v", "a Verilog circuit needs characterization"),
    ("lut:drum.npy,top=x", "top= applies to a Verilog circuit (.v), not to a table"),
    ("lut:drum.npy,k=3", "unknown parameter 'k' (parameters: top, acc_bits)"),
    ("lut:float.npy", "table float.npy: must hold integers, got dtype float64"),
    ("lut:small.npy", "table small.npy: an 8x8 multiplier table has 65,536 entries (256x256), got shape (16, 16)"),
    ("lut:neg.npy", "table neg.npy: products must be unsigned 16-bit values 0..65535"),
    ("lut:short.bin", "table short.bin: a tf-approximate table has 131,072 bytes (65,536 uint16), got 100"),
    ("lut:junk.npy", "table junk.npy: not a readable .npy file"),
    ("lut:adir.npy", "table adir.npy is a directory, not a table file"),
    ("lut:vdir.v", "vdir.v is a directory, not a Verilog file"),
]


@pytest.mark.parametrize("spec,msg", BAD, ids=[b[0] or "empty" for b in BAD])
def test_one_line_errors(tmp_path, monkeypatch, spec, msg):
    monkeypatch.chdir(tmp_path)
    _table_files(tmp_path)
    np.save("float.npy", np.zeros((256, 256)))
    np.save("small.npy", np.zeros((16, 16), np.int64))
    np.save("neg.npy", np.full((256, 256), -1))
    (tmp_path / "short.bin").write_bytes(bytes(100))
    (tmp_path / "t.txt").write_text("1")
    (tmp_path / "m.v").write_text("module m; endmodule\n")
    (tmp_path / "junk.npy").write_text("not numpy")
    (tmp_path / "adir.npy").mkdir()
    (tmp_path / "vdir.v").mkdir()
    with pytest.raises(ValueError) as e:
        parse(spec)
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_non_string_spec():
    with pytest.raises(ValueError, match="datapath must be a non-empty spec string"):
        parse(8)


# ---- operand codes -------------------------------------------------------------------------
@pytest.mark.parametrize("spec,x,w", [
    ("int8", (-128, 127), (-128, 127)), ("approx:mul-drum", (-128, 127), (-128, 127)),
    ("mfmac", (0, 15), (0, 15)), ("mfmac,exp_bits=2", (0, 7), (0, 7)),
    ("asm,x_bits=6,w_bits=4", (-32, 31), (-15, 15)),
])
def test_code_ranges_and_checks(spec, x, w):
    dp = parse(spec)
    assert dp.code_range("x") == x and dp.code_range("w") == w
    assert dp.check_codes(np.array([x[0], x[1]], np.int8 if x[1] < 128 else np.int16), "x").dtype == np.int64
    with pytest.raises(ValueError, match=rf"X: {dp.kind} x-codes must be in {x[0]}..{x[1]}, found {x[1] + 1}"):
        dp.check_codes(np.array([x[1] + 1]), "x")
    with pytest.raises(ValueError, match="W: .* operand codes must be integers, got dtype float64"):
        dp.check_codes(np.zeros(2), "w")


def test_asm_weights_must_be_representable():
    dp = parse("asm,alphabet=1/3,w_bits=8")
    reps = asm.representable((1, 3), 8)
    dp.check_codes(np.concatenate([reps, -reps]), "w")
    bad = next(v for v in range(256) if v not in set(reps.tolist()))
    with pytest.raises(ValueError, match=rf"W: weight {bad} is not representable by alphabet \{{1,3\}} at w_bits=8"):
        dp.check_codes(np.array([bad]), "w")


def test_products_are_the_golden_models():
    x, w = np.arange(-128, 128)[:, None], np.arange(-128, 128)[None, :]
    assert np.array_equal(parse("int8").product(x, w), x * w)
    for spec, fam, p in (("approx:mul-bam,vbl=5,hbl=1", "mul-bam", {"vbl": 5, "hbl": 1}),
                         ("approx:mul-mitchell,frac_bits=4", "mul-mitchell", {"frac_bits": 4})):
        assert np.array_equal(parse(spec).product(x, w), approx_mac.product(x, w, fam, 8, **p))
    c = np.arange(16)
    assert np.array_equal(parse("mfmac").product(c[:, None], c[None, :]),
                          pot.decode(c, 3)[:, None] * pot.decode(c, 3)[None, :])


def test_mac_designs():
    assert parse("int8,acc_bits=20").mac_design == ("int-mac", {"bits": 8, "acc_bits": 20})
    assert parse("mfmac,exp_bits=2").mac_design == ("mfmac-pe", {"exp_bits": 2, "acc_bits": 24})
    assert parse("approx:mul-drum,k=5").mac_design == ("approx-mac", {"multiplier": "mul-drum", "bits": 8,
                                                                      "acc_bits": 24, "k": 5})
    assert parse("asm,alphabet=1/3").mac_design[1]["alphabet"] == (1, 3)


# ---- quantizers ----------------------------------------------------------------------------
QSPECS = ["int8", "approx:mul-drum", "mfmac", "mfmac,exp_bits=2", "asm", "asm,alphabet=1/3,w_bits=4,x_bits=6"]


@pytest.mark.parametrize("spec", QSPECS)
@pytest.mark.parametrize("role", ["x", "w"])
def test_quantizer_reconstructs_within_its_step(spec, role):
    dp = parse(spec)
    rng = np.random.default_rng(1)
    t = rng.standard_normal((40, 30)) * 3
    codes, scale = dp.quantize(t, role)
    dp.check_codes(codes, role)                          # valid (and asm-w representable) codes
    approx_t = dp.values(codes, role) * scale
    pot_like = dp.kind == "mfmac" or (dp.kind == "asm" and role == "w")
    if pot_like:
        assert float(np.log2(scale)).is_integer()        # a power-of-two scale
    if dp.kind == "mfmac":
        nz = approx_t != 0
        ratio = np.abs(t[nz]) / np.abs(approx_t[nz])     # log-domain rounding: within sqrt(2) unless clipped
        assert np.all(ratio <= np.sqrt(2) + 1e-12) and np.all(np.sign(t[nz]) == np.sign(approx_t[nz]))
    elif dp.kind == "asm" and role == "w":
        # nearest representable weight: no representable value lies closer to t / scale
        reps = asm.representable(dp.params["alphabet"], dp.params["w_bits"])
        grid = np.concatenate([-reps[::-1], reps]).astype(float)
        nearest = np.min(np.abs(grid[None, :] - (t / scale).reshape(-1, 1)), axis=1)
        assert np.allclose(np.abs(dp.values(codes, "w") - t / scale).reshape(-1), nearest, atol=1e-9)
    else:
        assert np.max(np.abs(approx_t - t)) <= scale / 2 + 1e-12
        assert np.max(np.abs(codes)) == dp.code_range(role)[1]    # the largest |t| lands on the top code


@pytest.mark.parametrize("spec", ["int8", "mfmac", "asm"])
def test_per_axis_scales(spec):
    dp = parse(spec)
    rng = np.random.default_rng(2)
    t = rng.standard_normal((6, 5)) * np.array([1e-3, 1, 10, 100, 0.5])[None, :]
    codes, scale = dp.quantize(t, "w", axis=1)
    assert np.shape(scale) == (1, 5)
    for j in range(5):                                   # each column quantized on its own
        c1, s1 = dp.quantize(t[:, j], "w")
        assert np.array_equal(codes[:, j], c1) and scale[0, j] == s1
    assert np.allclose(dp.values(codes, "w") * scale, t, rtol=0.5, atol=0)


def test_quantize_refuses_nan_and_fp32_passes_through():
    with pytest.raises(ValueError, match="cannot quantize a tensor holding NaN or Inf"):
        parse("int8").quantize(np.array([1.0, np.nan]))
    t = np.array([0.1, -2.0], np.float32)
    codes, scale = parse("fp32").quantize(t)
    assert scale == 1.0 and np.array_equal(codes, t)


# ---- the energy model takes the same specs -----------------------------------------------------
def test_energy_refuses_a_bare_table_and_prices_a_circuit(tmp_path, monkeypatch, capsys):
    """lut:FILE.npy has no circuit: energy refuses it in one line. lut:FILE.v is approx-mac's
    shell with its multiplier swapped for the circuit: the accumulate share is the shell's."""
    from ecomac.cli import main
    from synth import network as N
    _table_files(tmp_path)
    with pytest.raises(ValueError, match="a bare table has no circuit to price; energy needs the multiplier as "
                                         r"Verilog \(lut:FILE.v\)"):
        N.mac_energy(f"lut:{tmp_path / 'drum.npy'}", "static")
    net = tmp_path / "net.json"
    net.write_text('{"layers": [{"kind": "linear", "in": 8, "out": 4}]}')
    assert main(["energy", "net", "--net", str(net), "--datapath", f"lut:{tmp_path / 'drum.npy'}"]) == 2
    err = capsys.readouterr().err
    assert "a bare table has no circuit to price" in err and err.count("\n") == 1
    v = tmp_path / "exact_mul.v"
    v.write_text("module exact_mul(input [7:0] a, input [7:0] b, output [15:0] p);\n"
                 "  assign p = a * b;\nendmodule\n")
    # the circuit's table (characterization is synth/characterize.py's job, stubbed here)
    monkeypatch.setattr(N, "_verilog_table", lambda path, top: approx.table("mul-array", bits=8))
    lut = N.mac_energy(f"lut:{v}", "static")
    shell = N.mac_energy("approx:mul-array", "static")
    assert lut["mac_design"] == "approx-mac" and lut["multiplier_circuit"] == "exact_mul"
    assert lut["accumulate_pj"] == pytest.approx(shell["accumulate_pj"])
    assert lut["circuit_pj"] > 0 and lut["multiply_pj"] > 0
    assert N.datapath("int8,acc_bits=32").mac == ("int-mac", {"bits": 8, "acc_bits": 32})
