"""Network energy on accelerators (synth/zigzag.py, synth/zigzag_arch.py): the stream model unchanged,
the energy's parts against their definitions, residency and batch, ZigZag's access counts against the
tile golden model, caching, and one-line errors."""
import math

import pytest

pytest.importorskip("zigzag")

from golden import tile as gtile  # noqa: E402
from synth import zigzag as Z  # noqa: E402
from synth.network import mac_energy, net_energy, parse_net  # noqa: E402
from synth.zigzag_arch import parse_arch  # noqa: E402

NET = parse_net({"name": "tiny", "layers": [
    {"kind": "linear", "name": "fc1", "in": 32, "out": 16, "tokens": 2},
    {"kind": "conv", "name": "c1", "in_ch": 4, "out_ch": 8, "kernel": 3, "H": 6, "W": 6, "padding": 1, "repeat": 2}]})
SMALL = "lanes=8,depth=16,parallel=2"


def test_stream_is_the_stream_model():
    got = Z.network_energy(NET, "int8")
    want = net_energy(NET, "int8")
    assert got["arch"] == "stream" and got["batch"] == 1
    for k in ("energy_pj", "arithmetic_pj", "memory_pj", "sram_pj", "dram_pj"):
        assert got[k] == want[k]


def test_stream_batch_amortizes_weights_per_inference():
    one = Z.network_energy(NET, "int8", "stream", 1)
    many = Z.network_energy(NET, "int8", "stream", 8)
    assert many["batch"] == 8 and many["macs"] == pytest.approx(one["macs"])
    assert many["arithmetic_pj"] == pytest.approx(one["arithmetic_pj"])
    assert many["dram_pj"] < one["dram_pj"]                 # the weights cross DRAM once per 8 inferences


@pytest.mark.parametrize("arch", ["tile-vn", "tile-near", "tile-in"])
def test_energy_parts_follow_their_definitions(arch):
    r = Z.network_energy(NET, "int8", f"{arch},{SMALL}")
    per = mac_energy("int8")
    assert r["arch"] == f"{arch},{SMALL}" and r["batch"] == 1
    assert r["macs"] == NET.macs                          # every MAC counted
    assert r["arithmetic_pj"] == pytest.approx(NET.macs * per["mac_pj"])
    assert r["energy_pj"] == pytest.approx(r["arithmetic_pj"] + r["memory_pj"])
    assert math.fsum(r["levels"].values()) == pytest.approx(r["memory_pj"])
    assert ("bus" in r["levels"]) == (arch == "tile-vn")
    assert ("bank" in r["levels"]) == (arch == "tile-in")
    assert r["weights_resident"] and r["weight_load_pj"] > 0
    for row in r["layers"]:
        assert row["energy_pj"] == pytest.approx(row["arithmetic_pj"] + row["memory_pj"])


def test_no_bus_no_beats_below_von_neumann():
    """tile-near and tile-in move no weight over a bus and read no bus word per beat: below tile-vn."""
    e = {a: Z.network_energy(NET, "int8", f"{a},{SMALL}")["energy_pj"] for a in ("tile-vn", "tile-near", "tile-in")}
    assert max(e["tile-in"], e["tile-near"]) < e["tile-vn"]


def test_batch_amortizes_weights_that_are_not_resident():
    fixed = f"tile-near,{SMALL},tiles=4"      # 512 weights: each layer fits, the net's 1,088 do not
    one, many = (Z.network_energy(NET, "int8", fixed, b) for b in (1, 16))
    assert not one["weights_resident"] and one["weight_load_pj"] == 0
    assert many["levels"]["dram"] < one["levels"]["dram"]
    assert many["arithmetic_pj"] == pytest.approx(one["arithmetic_pj"])
    res1, res16 = (Z.network_energy(NET, "int8", f"tile-near,{SMALL}", b) for b in (1, 16))
    assert res16["energy_pj"] == pytest.approx(res1["energy_pj"])   # resident: nothing per batch


def test_asm_index_storage_adds_a_decoder_per_mac():
    r = Z.network_energy(NET, "asm,alphabet=1/3", f"tile-in,{SMALL}")
    c = Z.network_energy(NET, "asm,alphabet=1/3", f"tile-in,{SMALL},storage=control")
    per = mac_energy("asm,alphabet=1/3")
    assert r["decode_pj_per_mac"] > 0 and c["decode_pj_per_mac"] == 0
    assert r["arithmetic_pj"] == pytest.approx(NET.macs * (per["mac_pj"] + r["decode_pj_per_mac"]))


@pytest.mark.parametrize("kind,params", [
    ("vn", {"lanes": 4, "depth": 6, "datapath": "int", "bus_bits": 16}),
    ("near", {"lanes": 4, "depth": 6, "datapath": "mfmac"}),
    ("in", {"lanes": 4, "depth": 6, "datapath": "int"}),
    ("in", {"lanes": 3, "depth": 4, "datapath": "asm", "alphabet": (1, 3), "weight_storage": "index"}),
])
def test_zigzag_mvm_counts_equal_the_golden_tile_counts(kind, params):
    """The golden counts are what the RTL counters show (cocotb_tests/tb_tile.py); the RTL itself is
    compared in tests/test_zigzag_tiles.py."""
    s = gtile.spec(kind, **params)
    want = gtile.counts(s, s.depth, s.depth)
    got = Z.mvm_counts(s)
    for k, v in got.items():
        assert v == want[k], (k, got, want)


def test_mappings_are_cached(monkeypatch):
    Z.network_energy(NET, "int8", f"tile-in,{SMALL}")

    def boom(*a, **k):
        raise AssertionError("ZigZag ran although the mapping is cached")
    monkeypatch.setattr(Z, "_run_zigzag", boom)
    assert Z.network_energy(NET, "int8", f"tile-in,{SMALL}")["energy_pj"] > 0


@pytest.mark.parametrize("arch,batch,msg", [
    ("tile-in", 0, "batch must be a positive integer"),
    ("tile-in,lanes=0", 1, "lanes must be an integer"),
    ("tile-in,storage=rom", 1, "storage must be index or control"),
    ("tile-vn,bus_mm=-1", 1, "bus_mm must be a length"),
    ("tpu", 1, "unknown architecture 'tpu'"),
    ("missing.yaml", 1, "does not exist"),
])
def test_bad_architectures_and_batches_are_one_line(arch, batch, msg):
    with pytest.raises(ValueError, match=msg) as e:
        Z.network_energy(NET, "int8", arch, batch)
    assert "\n" not in str(e.value)


def test_a_rejected_accelerator_file_and_an_unmappable_layer(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmemories: {}\n")
    with pytest.raises(ValueError, match="ZigZag rejects it"):
        Z.network_energy(NET, "int8", str(bad))
    small = tmp_path / "small.yaml"       # one 64-bit buffer for everything: no layer fits
    small.write_text("""name: small
memories:
  buf:
    size: 64
    r_cost: 1
    w_cost: 1
    area: 0
    latency: 1
    operands: [I1, I2, O]
    ports:
      - {name: r_port_1, type: read, bandwidth_min: 8, bandwidth_max: 8, allocation: ["I1, tl", "I2, tl", "O, tl", "O, th"]}
      - {name: w_port_1, type: write, bandwidth_min: 8, bandwidth_max: 8, allocation: ["I1, fh", "I2, fh", "O, fh", "O, fl"]}
    served_dimensions: [D1]
operational_array: {unit_energy: 0.1, unit_area: 1, dimensions: [D1], sizes: [2]}
""")
    with pytest.raises(ValueError, match="layer fc1: ZigZag cannot map it") as e:
        Z.network_energy(NET, "int8", str(small))
    assert "\n" not in str(e.value)


def test_parse_arch_defaults():
    a = parse_arch("tile-in")
    assert a.kind == "tile-in" and a.params["lanes"] == 64 and a.params["tiles"] == "auto"
    assert parse_arch("stream").kind == "stream"


def test_grouped_conv_and_activation_products_map_with_every_mac():
    """Layer kinds and keys of the layer list's grammar beyond today's parser (groups, dilation,
    pairs, activation x activation `matmul`): built directly, every MAC reaches ZigZag."""
    from synth.network import Layer, Net
    dw = {"in_ch": 8, "out_ch": 8, "kernel": [3, 3], "H": 6, "W": 6, "stride": [1, 1], "padding": [1, 1, 1, 1],
          "groups": 8, "dilation": 1, "repeat": 1}
    mm = {"M": 4, "K": 8, "N": 4, "count": 2, "repeat": 1}
    net = Net("kinds", [Layer("dw", "conv", "dw", 8 * 9 * 36, 8 * 9, 8 * 36, 8 * 36, dw),
                        Layer("mm", "matmul", "mm", 2 * 4 * 8 * 4, 0, 2 * (32 + 32), 2 * 16, mm)])
    r = Z.network_energy(net, "int8", f"tile-in,{SMALL}")
    assert r["macs"] == net.macs
    assert r["layers"][1]["weights_from_dram"] == "sample"     # activations are never resident
