"""Compact ASM weight storage (HADES): the golden index format round-trips, and the RTL
decoder equals golden.asm.compact_to_control on every compact word (Amaranth simulator)."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from golden import asm
from rtl.asm import AsmWeightDecoder


@pytest.mark.parametrize("alphabet,w_bits,bits", [((1,), 8, 6), ((1, 3), 8, 7), ((1, 3, 5, 7), 8, 9),
                                                  ((1, 3, 5, 7), 4, 5), ((1, 3), 12, 10)])
def test_compact_bits_and_round_trip(alphabet, w_bits, bits):
    assert asm.compact_bits(alphabet, w_bits) == bits
    reps = asm.representable(alphabet, w_bits)
    w = np.concatenate([-reps[::-1], reps])
    c = asm.compact_encode(w, alphabet, w_bits)
    assert c.max() < 1 << bits and np.array_equal(asm.compact_decode(c, alphabet, w_bits), w)
    assert np.array_equal(asm.compact_to_control(c, alphabet, w_bits), asm.encode(w, alphabet, w_bits))
    assert asm.compact_encode(0, alphabet, w_bits) == 0


def test_compact_rejects():
    with pytest.raises(ValueError, match="weight 9 is not representable with alphabet"):
        asm.compact_encode([9], (1,), 8)
    with pytest.raises(ValueError, match=r"compact weight 64 is outside 0\.\.63 \(6 bits for alphabet \{1\}, w_bits=8\)"):
        asm.compact_decode([64], (1,), 8)


@pytest.mark.parametrize("alphabet,w_bits", [((1,), 8), ((1, 3), 8), ((1, 3, 5, 7), 8), ((1, 3, 5, 7), 12)])
def test_decoder_rtl_exhaustive(alphabet, w_bits):
    dut = AsmWeightDecoder(w_bits, alphabet)
    n = 1 << len(dut.c)
    gold = asm.compact_to_control(np.arange(n), alphabet, w_bits)
    got = []

    async def tb(ctx):
        for c in range(n):
            ctx.set(dut.c, c)
            got.append(ctx.get(dut.w))
    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    assert np.array_equal(np.array(got), gold)


def test_storage_rows_parse():
    from synth.tiles import _datapath_params, storage_label
    assert storage_label((1, 3), "index") == "asm{1,3}/index"
    assert _datapath_params("asm{1,3}/index") == {"datapath": "asm", "x_bits": 8, "w_bits": 8, "alphabet": (1, 3),
                                                  "weight_storage": "index"}


def test_index_storage_prices_decoders_and_narrower_reads():
    from golden import tile as gt
    from synth.movement import arithmetic, movement
    c = gt.spec("near", 2, 16, "asm", alphabet=(1, 3))
    i = gt.spec("near", 2, 16, "asm", alphabet=(1, 3), weight_storage="index")
    ac, ai = arithmetic(c), arithmetic(i)
    assert ai["transistors"] > ac["transistors"]                  # the two decoders
    assert movement(i)["total_pj"] < movement(c)["total_pj"]      # 7-bit instead of 9-bit words
    assert i.row_bits == 2 * 7 and c.row_bits == 2 * 9


def test_vn_decoder_placement_sums_the_measured_parts():
    from ecomac.cmd_tile import _vn_decoder_placement
    from synth.tiles import STORAGE_ALPHABETS, storage_label
    rows = []
    for k, a in enumerate(STORAGE_ALPHABETS):
        for st, arith, reads, bus in (("control", 1000.0, 2000.0, 3000.0 + k), ("index", 1100.0, 1500.0, 2000.0)):
            rows.append({"tile": "tile-vn", "datapath": storage_label(a, st), "arithmetic_pj": arith,
                         "movement_parts_pj": {"weight_reads_pj": reads, "bus_pj": bus},
                         "total_pj": arith + reads + bus})
    text = _vn_decoder_placement(rows)
    # index per lane 4.60 nJ; at the memory: index arithmetic + index reads + control bus
    assert "asm{1} 4.60 nJ per lane vs 5.60 nJ at the memory (control storage 6.00 nJ)" in text
    assert "asm{1,3,5,7} 4.60 nJ per lane vs 5.60 nJ at the memory (control storage 6.00 nJ)" in text


def test_report_prices_asm_tiles_at_their_best_storage(tmp_path, monkeypatch):
    """`make`'s table: index storage only, QUICK_STORAGE_LANES lanes, and which alphabets beat int."""
    import json

    from ecomac import cmd_tile
    from synth import tiles
    seen = {}

    def fake(progress=None, **kw):
        seen.update(kw)
        return [{"tile": t, "datapath": dp, "stored_weight_bits": b, "arithmetic_pj": 1e3, "movement_pj": 1e3,
                 "total_pj": 2e3, "vs_int_pct": v, "saving_pct": v}
                for t in ("tile-vn", "tile-in") for dp, b, v in (("int", 8, 0.0), ("asm{1}/index", 6, 20.0),
                                                                 ("asm{1,3,5,7}/index", 9, -30.0))]
    monkeypatch.setattr(tiles, "storage_table", fake)
    text = cmd_tile._best_storage_section(tmp_path)
    assert seen["lanes"] == cmd_tile.QUICK_STORAGE_LANES < 64 and seen["storages"] == ("index",)
    assert "tile-in: asm{1}; tile-vn: asm{1}." in text and "asm{1,3,5,7}/index" in text
    assert len(json.loads((tmp_path / "tiles_storage_quick.json").read_text())) == 6


def test_storage_table_refuses_an_unknown_storage():
    from synth.tiles import storage_table
    with pytest.raises(ValueError, match="weight storage must be among control, index"):
        storage_table(storages=("compressed",))
