"""MF-MAC tree accumulators: the golden model equals the serial MAC on the same products,
the RTL equals the golden model in the Amaranth simulator (the array; the PE is proven by
cocotb_tests/test_pot_acc.py), and bad parameters get one-line messages."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from ecomac.cli import main
from golden import pot, pot_acc
from rtl.pot import MfmacArray, MfmacPe


@pytest.mark.parametrize("accumulator", pot_acc.ACCUMULATORS)
@pytest.mark.parametrize("exp_bits,acc_bits", [(3, 24), (2, 7), (4, 30)])
def test_tree_dot_equals_serial(accumulator, exp_bits, acc_bits):
    rng = np.random.default_rng(11)
    for k in (1, 5, 64, 257):                   # K not a multiple of the chunk: zero-code padding
        x, w = rng.integers(0, 1 << (exp_bits + 1), (2, k))
        serial = int(pot.mac(x, w, exp_bits=exp_bits, acc_bits=acc_bits)[-1])
        assert pot_acc.dot(x, w, exp_bits, acc_bits, accumulator) == serial


def test_tree_parts_are_the_sign_split_sums():
    rng = np.random.default_rng(12)
    x, w = rng.integers(0, 16, (2, 500, 8))
    p, n = pot_acc.tree_parts(x, w)
    prods = pot.product(x, w)
    assert np.array_equal(p, np.where(prods > 0, prods, 0).sum(-1))
    assert np.array_equal(n, np.where(prods < 0, -prods, 0).sum(-1))
    assert np.array_equal(pot_acc.chunk_sum(x, w), prods.sum(-1))


def test_tree_mac_per_clock_matches_serial_at_chunk_ends():
    # valid/clear per clock of the tree = the same per step of its chunk in the serial PE
    rng = np.random.default_rng(13)
    c, T = 4, 50
    x, w = rng.integers(0, 16, (2, T, c))
    valid, clear = rng.integers(0, 2, (2, T))
    tree = pot_acc.mac(x, w, valid, clear, accumulator="tree4", acc_bits=12)
    sv, sc = np.repeat(valid, c), np.zeros(T * c, int)
    sc[::c] = clear
    serial = pot.mac(x.ravel(), w.ravel(), sv, sc, acc_bits=12)
    assert np.array_equal(tree, serial[c - 1::c])


def _sim(dut, steps, check):
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def tb(ctx):
        for apply in steps:
            apply(ctx)
            await ctx.tick()
            check(ctx)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("accumulator", ["tree2", "tree4"])
def test_array_tree_against_golden_matmul(accumulator):
    c = pot_acc.chunk(accumulator)
    rows, cols, K = 2, 3, 10                   # K = 10: the last chunk is padded
    rng = np.random.default_rng(14)
    A, B = rng.integers(0, 16, (rows, K)), rng.integers(0, 16, (K, cols))
    Ac, Bc = pot_acc.to_chunks(A, c), pot_acc.to_chunks(B.T, c)        # (rows, n, c), (cols, n, c)
    n = Ac.shape[1]
    dut = MfmacArray(rows, cols, accumulator=accumulator)
    got = []

    def step(t):
        def apply(ctx):
            for i in range(rows):
                for jj in range(c):
                    ctx.set(dut.a[i * c + jj], int(Ac[i, t, jj]))
            for j in range(cols):
                for jj in range(c):
                    ctx.set(dut.b[j * c + jj], int(Bc[j, t, jj]))
            ctx.set(dut.valid, 1)
            ctx.set(dut.clear, int(t == 0))
        return apply
    _sim(dut, [step(t) for t in range(n)], lambda ctx: got.append([ctx.get(dut.c[i]) for i in range(rows * cols)]))
    assert np.array_equal(np.array(got[-1]).reshape(rows, cols), pot.matmul(A, B))


def test_pe_ports_and_op_count():
    from rtl.registry import get_design
    pe = MfmacPe(accumulator="tree8")
    assert len(pe.x.as_value()) == 8 * 4 and pe.latency == 1
    d = get_design("mfmac-pe")
    assert d.op_count(d.full_params({"accumulator": "tree8"})) == 8
    a = get_design("mfmac-array")
    assert a.op_count(a.full_params({"accumulator": "tree4", "rows": 2, "cols": 3})) == 24


@pytest.mark.parametrize("argv,msg", [
    (["--param", "accumulator=tree3"], "accumulator must be one of serial, tree2, tree4, tree8, tree16, got 'tree3'"),
    (["--param", "accumulator=tree4", "--param", "pipeline=1"],
     "pipeline applies to accumulator=serial only, got accumulator=tree4"),
])
def test_bad_accumulator_is_one_line(tmp_path, capsys, argv, msg):
    out = tmp_path / "pe.v"
    assert main(["verilog", "mfmac-pe", *argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(msg) and "\n" not in err
    assert not out.exists()


def test_golden_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"tree4: x and w must be \(cycles, 4\) code arrays"):
        pot_acc.mac(np.zeros((3, 2)), np.zeros((3, 2)), accumulator="tree4")
    with pytest.raises(ValueError, match="accumulator must be one of"):
        pot_acc.chunk("parallel")


# ---- energy ------------------------------------------------------------------------------
def test_dot_energy_amortizes_over_k():
    from synth.accumulators import dot_energy
    r = dot_energy("tree2", 9)                  # 5 clocks, the last chunk padded
    assert r["clocks"] == 5 and r["chunk"] == 2
    assert r["pj_per_mac"] == pytest.approx(r["pj_per_clock"] * 5 / 9)
    assert 0 < r["clock_pj_per_mac"] < r["pj_per_mac"]
    with pytest.raises(ValueError, match="K must be a positive integer, got 0"):
        dot_energy("tree2", 0)


def test_tree_datapaths_in_the_network_model():
    from synth import network as N
    from synth.accumulators import spec
    for acc in pot_acc.ACCUMULATORS:
        dp = N.datapath(spec(acc))
        assert dp.mac[0] == "mfmac-pe" and dp.mac[1].get("accumulator", "serial") == acc
    dp = N.datapath("mfmac,accumulator=tree4")
    rng = np.random.default_rng(0)
    x = dp.operand(rng, (3, 5))
    assert x.shape == (3, 5, 4)
    word = dp.mac_stream(x, x)["x"]
    assert np.array_equal((word >> 4) & 15, x[..., 1])


def test_cli_accumulators_bad_k(capsys):
    assert main(["energy", "accumulators", "--k", "0"]) == 2
    assert capsys.readouterr().err.strip() == "ecomac: error: --k must be an integer >= 1, got 0"


def test_cli_headline_rejects_unknown_accumulator(capsys):
    assert main(["energy", "headline", "--accumulator", "tree3"]) == 2
    assert "invalid choice: 'tree3'" in capsys.readouterr().err


def test_cli_accumulator_choices_follow_golden():
    from ecomac.cmd_energy import _ACCUMULATORS
    assert _ACCUMULATORS == pot_acc.ACCUMULATORS
