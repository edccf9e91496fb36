"""A network's energy on an accelerator: ZigZag maps every layer and counts every memory access, ecomac
prices them (its MAC netlists, synth/movement.py's memories and bus).

    network_energy(net, datapath, arch="stream", batch=None, ...)   the one entry every caller uses

arch "stream" is synth.network.net_energy (unchanged; with `batch` the net is re-batched and the result
is per inference). Any other architecture (synth/zigzag_arch.py: tile-vn, tile-near, tile-in, or a
ZigZag accelerator YAML):

  * each layer becomes one ZigZag layer of one sample (linear: O[b][d][k] += W[k][c] I[b][d][c], d =
    tokens; conv: O[b][k][oy][ox] += W[k][c][fy][fx] I[b][c][iy][ix] with stride and padding); `repeat`
    identical layers are mapped once and counted `repeat` times, and identical layers anywhere in the
    net are mapped once;
  * ZigZag (LOMA temporal-mapping search, minimal energy) returns the accesses of every memory level
    per operand (reads to the level below / above, writes from above / below), in its port words;
  * energy = MACs x the datapath's MAC energy (synth.network.mac_energy, the synthesized fused MAC,
    activity mode by default) [+ asm index storage: one weight decoder per MAC, from its netlist]
    [+ tile-in: the bank's entry reads, selectors per MAC] + sum(accesses x ecomac's energy per access);
  * weight residency and batch: when the whole network's weights fit the accelerator's weight memories
    (tile archs: tiles=auto always, else tiles x lanes x depth weights), they stay resident across
    inferences: the DRAM reads of weights and the weight memories' fills are a one-time load
    (`weight_load_pj`, not in the energy per inference). Otherwise a layer whose weights fit is loaded
    once per batch (that traffic / batch); a layer whose weights do not fit is fetched as ZigZag's
    per-sample mapping fetches it. Everything else is per sample (the batch runs sample after sample
    over the loaded weights): ZigZag maps one sample, which keeps its search (LOMA: every ordering
    of the loops' prime factors) at seconds per layer instead of minutes with a batch loop.
Mappings are cached (synth.cache, kind "zigzag") by the layer, the accelerator description (its
per-access energies included: ZigZag optimizes for them), the mapping, ZigZag's version and this
code's version; a repeated run only prices the cached counts.
"""
from __future__ import annotations

import json
import math

__all__ = ["network_energy", "zigzag_layer", "map_layer", "rebatch", "LEVEL_PARTS"]

_CACHE_VERSION = "1"
LPF_LIMIT = 6          # LOMA's loop prime factor limit (ZigZag's default)
LEVEL_PARTS = ("dram", "act", "wmem", "bus", "bank", "acc")
SEARCH_DATAPATH = "int8"   # tile accelerators: ZigZag searches each layer's loop order at these widths


def _pair(v, default=1) -> tuple:
    v = default if v is None else v
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def zigzag_layer(layer, prec) -> dict:
    """The ZigZag layer (its list-of-dicts workload format) of one sample of one ecomac Layer (one repeat).
    linear: O[b][d][k] += W[k][c] I[b][d][c] (d = tokens); conv: O[b][g][k][oy][ox] += W[g][k][c][fy][fx]
    I[b][g][c][iy][ix] (groups g, stride, dilation, padding); matmul (activation x activation, `count`
    products): O[b][d][k] += W[b][c][k] I[b][d][c], b = count, its second operand in W's place."""
    d = layer.dims
    if not d:
        raise ValueError(f"layer {layer.name}: has no shape (built without synth.network.parse_net)")
    base = {"id": 0, "name": layer.name, "operand_source": {"W": 0, "I": 0},
            "operand_precision": {"W": prec.w_bits, "I": prec.x_bits, "O": prec.acc_bits, "O_final": prec.x_bits}}
    if layer.kind == "linear":
        return {**base, "operator_type": "Gemm", "equation": "O[b][d][k]+=W[k][c]*I[b][d][c]",
                "loop_dims": ["B", "D", "K", "C"], "loop_sizes": [1, d["tokens"], d["out"], d["in"]]}
    if layer.kind == "matmul":
        return {**base, "operator_type": "Gemm", "equation": "O[b][d][k]+=W[b][c][k]*I[b][d][c]",
                "loop_dims": ["B", "D", "K", "C"], "loop_sizes": [d.get("count", 1), d["M"], d["N"], d["K"]]}
    if layer.kind != "conv":
        raise ValueError(f"layer {layer.name}: kind {layer.kind} has no ZigZag description here")
    kern = d["kernel"]
    kh, kw = _pair(kern)
    (sh, sw), (dh, dw) = _pair(d.get("stride")), _pair(d.get("dilation"))
    pad = d.get("padding", 0)
    t, l, b, r = (pad if isinstance(pad, (list, tuple)) and len(pad) == 4 else (*_pair(pad, 0), *_pair(pad, 0)))
    g = d.get("groups", 1)
    ho, wo = (d["H"] + t + b - dh * (kh - 1) - 1) // sh + 1, (d["W"] + l + r - dw * (kw - 1) - 1) // sw + 1
    conv = {**base, "operator_type": "Conv",
            "dimension_relations": [f"ix={sw}*ox+{dw}*fx", f"iy={sh}*oy+{dh}*fy"],
            "pr_loop_dims": ["IY", "IX"], "pr_loop_sizes": [d["H"], d["W"]], "padding": [[t, b], [l, r]]}
    if g == 1:
        return {**conv, "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
                "loop_dims": ["B", "K", "C", "OY", "OX", "FY", "FX"],
                "loop_sizes": [1, d["out_ch"], d["in_ch"], ho, wo, kh, kw]}
    return {**conv, "equation": "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]",
            "loop_dims": ["B", "G", "K", "C", "OY", "OX", "FY", "FX"],
            "loop_sizes": [1, g, d["out_ch"] // g, d["in_ch"] // g, ho, wo, kh, kw]}


def _zigzag_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("zigzag-dse")
    except PackageNotFoundError:
        return "unknown"


def _run_zigzag(layer: dict, accel: dict, mapping: list[dict]) -> dict:
    """ZigZag on one layer: the minimal-energy mapping's accesses per operand and memory level."""
    import logging

    from zigzag.mapping.temporal_mapping import TemporalMappingType
    from zigzag.parser.accelerator_factory import AcceleratorFactory
    from zigzag.parser.accelerator_validator import AcceleratorValidator
    from zigzag.parser.mapping_validator import MappingValidator
    from zigzag.parser.workload_factory import WorkloadFactory
    from zigzag.parser.workload_validator import WorkloadValidator
    from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
    from zigzag.stages.main import MainStage
    from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
    from zigzag.stages.mapping.temporal_mapping_generator_stage import TemporalMappingGeneratorStage
    from zigzag.stages.results.reduce_stages import MinimalEnergyStage
    from zigzag.stages.workload_iterator import WorkloadStage

    logging.disable(logging.CRITICAL)
    try:
        av = AcceleratorValidator(json.loads(json.dumps(accel)))
        adata = av.normalized_data
        if not av.validate():
            raise ValueError(f"ZigZag rejects the accelerator ({str(av.validator.errors)[:200]})")
        mv = MappingValidator(json.loads(json.dumps(mapping)))
        mdata = mv.normalized_data
        if not mv.validate():
            raise ValueError(f"ZigZag rejects the mapping ({str(mv.validator.errors)[:200]})")
        wv = WorkloadValidator([json.loads(json.dumps(layer))])
        wdata = wv.normalized_data
        if not wv.validate():
            raise ValueError(f"ZigZag rejects the layer ({str(wv.validator.errors)[:200]})")
        main = MainStage([WorkloadStage, MinimalEnergyStage, SpatialMappingGeneratorStage, MinimalEnergyStage,
                          TemporalMappingGeneratorStage, CostModelStage],
                         accelerator=AcceleratorFactory(adata).create(), workload=WorkloadFactory(wdata, mdata).create(),
                         loma_lpf_limit=LPF_LIMIT, loma_show_progress_bar=False, nb_mappings_generated=3,
                         enable_mix_spatial_mapping_generation=False, access_same_data_considered_as_no_access=True,
                         temporal_mapping_type=TemporalMappingType("uneven"))
        cmes = main.run()
    finally:
        logging.disable(logging.NOTSET)
    if not cmes:
        raise ValueError("ZigZag found no mapping")
    cme = cmes[0][0]
    levels = []
    for op, accesses in cme.memory_word_access.items():
        mem_op = cme.memory_operand_links.layer_to_mem_op(op)
        names = [lv.name for lv in cme.accelerator.memory_hierarchy.get_memory_levels(mem_op)]
        for name, a in zip(names, accesses):
            levels.append({"memory": name, "operand": str(op), **{str(k.value if hasattr(k, "value") else k): int(v)
                                                                  for k, v in a.data.items()}})
    return {"levels": levels, "macs": int(cme.layer.total_mac_count), "cycles": float(cme.latency_total2),
            "zigzag_energy_pj": float(cme.energy_total), "spatial": str(cme.spatial_mapping),
            "temporal": str(cme.temporal_mapping)}


def map_layer(layer: dict, accel: dict, mapping: list[dict]) -> dict:
    """_run_zigzag, cached; a ZigZag failure is a one-line ValueError naming the layer."""
    from . import cache
    k = cache.key("zigzag", _CACHE_VERSION, _zigzag_version(), json.dumps([{**layer, "name": ""}, accel, mapping],
                                                                          sort_keys=True))
    hit = cache.load("zigzag", k)
    if hit is not None:
        return hit
    try:
        res = _run_zigzag(layer, accel, mapping)
    except ValueError as e:
        raise ValueError(f"layer {layer['name']}: {e}") from None
    except Exception as e:                                     # noqa: BLE001 - ZigZag asserts and raises anything
        p = layer["operand_precision"]
        raise ValueError(f"layer {layer['name']}: ZigZag cannot map it ({type(e).__name__}: "
                         f"{(str(e).splitlines() or [''])[0][:120]}; operands W {p['W']} b, I {p['I']} b, "
                         f"partial sums {p['O']} b must fit the memories)") from None
    cache.store("zigzag", k, res)
    return res


def ordering(mapped: dict) -> list[list]:
    """The complete temporal loop order (innermost first, [dim, size]) of a mapped layer (the weight
    operand's loops over all its levels), as a ZigZag mapping's `temporal_ordering`."""
    import re
    text = mapped["temporal"]
    i = text.index("W: [") + 3
    depth, j = 0, i
    while True:                                    # the bracket-balanced list after "W: "
        depth += {"[": 1, "]": -1}.get(text[j], 0)
        j += 1
        if depth == 0:
            break
    out = []
    for dim, size in re.findall(r"\((\w+), ([\d.]+)\)", text[i:j]):
        f = float(size)
        out.append([dim, int(f) if f == int(f) else f])
    return out


def map_reusing(layer: dict, accel: dict, mapping: list[dict], search_accel: dict, search_layer: dict) -> dict:
    """The layer mapped on `accel` with the loop order ZigZag's search found on `search_accel` (the
    reference widths): ZigZag re-allocates that order to `accel`'s memories and counts its accesses.
    One search per layer and accelerator kind instead of one per datapath (LOMA tries every order
    of the loops' prime factors: ~720 cost-model runs per 3x3 conv layer); a full search when the
    order does not fit `accel`'s memories."""
    found = map_layer(search_layer, search_accel, mapping)
    if search_accel == accel and search_layer == layer:
        return found
    fixed = [{**mapping[0], "temporal_ordering": ordering(found)}]
    try:
        return {**map_layer(layer, accel, fixed), "order_from": "search"}
    except ValueError:
        return map_layer(layer, accel, mapping)


def rebatch(net, batch: int):
    """The same net at another batch (every layer rebuilt from its shape)."""
    from .net_spec import Net, layer_from_spec
    from dataclasses import replace
    layers = [replace(layer_from_spec(i, {"kind": l.kind, "name": l.name, **l.dims}, batch), float=l.float)
              for i, l in enumerate(net.layers)]
    return Net(net.name, layers, batch, dict(net.memory))


def _check_batch(batch):
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ValueError(f"batch must be a positive integer, got {batch!r}")


def check_arch(arch, batch=None):
    """Validate an architecture spec (a ZigZag YAML: read and validated by ZigZag) and a batch before
    any work; one-line ValueError. Returns the Arch."""
    from .zigzag_arch import Arch, load_user, parse_arch
    _check_batch(batch)
    a = arch if isinstance(arch, Arch) else parse_arch(arch)
    if a.kind == "yaml":
        load_user(a, 0.0)
    return a


def network_energy(net, datapath: str, arch="stream", batch: int | None = None, training: bool = False,
                   mode: str = "activity", operands: str = "gaussian", progress=None) -> dict:
    """Energy of one inference of `net` on `datapath` on architecture `arch` (a spec or an Arch) at
    batch `batch` (None: the net's own batch). The result has energy_pj, arithmetic_pj, memory_pj,
    `arch`, `batch` and, on an accelerator, `levels` (pJ per memory level) and per-layer rows."""
    from .network import net_energy
    a = check_arch(arch, batch)
    if a.kind == "stream":
        if batch is None:
            res = net_energy(net, datapath, training=training, mode=mode, operands=operands)
            return {**res, "arch": "stream", "per_inference": net.batch == 1}
        res = net_energy(rebatch(net, batch), datapath, training=training, mode=mode, operands=operands)
        for r in res["layers"]:
            for k in [k for k in r if k.endswith("_pj") or k == "macs"]:
                r[k] = r[k] / batch
        for k in [k for k in res if k.endswith("_pj") or k == "macs"]:
            res[k] = res[k] / batch
        return {**res, "arch": "stream", "batch": batch, "per_inference": True}
    if training:
        raise ValueError(f"training energy is priced on the stream model only, not on {a.label}")
    return _accelerator_energy(net, datapath, a, batch or net.batch, mode, operands, progress)


def _instances(mem: dict, dims: list[str], sizes: list[int]) -> int:
    """How many copies of a ZigZag memory the array has (one per unit of every dimension it does not serve)."""
    return math.prod(n for d, n in zip(dims, sizes) if d not in mem["served_dimensions"])


def _accelerator_energy(net, datapath, a, batch, mode, operands, progress) -> dict:
    from .network import mac_energy
    from .zigzag_arch import accelerator, layer_mapping, load_user, precision, tile_bits
    prec = precision(datapath, a.params.get("storage", "index"))
    per = mac_energy(datapath, mode, operands)
    decode_pj = _decoder_pj(prec, mode) if prec.decoder is not None and a.kind != "yaml" else 0.0
    weight_bits = sum(l.weights for l in net.layers) * prec.w_bits
    if a.kind == "yaml":
        accel, prices = load_user(a, 0.0)
        tiles = None
    else:
        tb = tile_bits(a, prec)
        tiles = max(1, -(-weight_bits // tb)) if a.params["tiles"] == "auto" else a.params["tiles"]
        accel, prices = accelerator(a, prec, 0.0, tiles)
        on_chip = accelerator(a, prec, 0.0, tiles, act_on_chip=True)[0]
        act_bits = a.params["act_kb"] * 1024 * 8
        ref = precision(SEARCH_DATAPATH)                 # the loop orders are searched at int8's widths
        ref_tiles = (max(1, -(-sum(l.weights for l in net.layers) * ref.w_bits // tile_bits(a, ref)))
                     if a.params["tiles"] == "auto" else tiles)
        ref_accel = {False: accelerator(a, ref, 0.0, ref_tiles)[0],
                     True: accelerator(a, ref, 0.0, ref_tiles, act_on_chip=True)[0]}
    mems = accel["memories"]
    top = max(mems, key=lambda n: mems[n]["size"])
    oa = accel["operational_array"]
    w_chain = [n for n, m in mems.items() if "I2" in m["operands"]]     # bottom up, as ZigZag lists them
    w_top = w_chain[-1]
    w_store = w_chain[-2] if len(w_chain) > 1 else None                  # where weights stay on chip
    cap = (mems[w_store]["size"] * _instances(mems[w_store], oa["dimensions"], oa["sizes"])
           if w_store is not None else 0)
    resident = weight_bits <= cap
    rows, seen = [], {}
    if progress is not None:
        progress(0, len(net.layers), "")
    for i, layer in enumerate(net.layers):
        zl = zigzag_layer(layer, prec)
        rep = layer.dims.get("repeat", 1)
        one = 1.0 / (rep * net.batch)                 # one repeat, one sample
        # tiles: a layer whose inputs and outputs fit the activation buffer keeps them there (when ZigZag
        # finds a mapping that does; else DRAM holds its activations too)
        fits = a.kind != "yaml" and (layer.inputs + layer.outputs) * prec.x_bits * one <= act_bits
        key = json.dumps([{**zl, "name": ""}, fits], sort_keys=True)
        if key not in seen and a.kind == "yaml":
            seen[key] = map_layer(zl, accel, layer_mapping(a, zl))
        elif key not in seen:
            rl = zigzag_layer(layer, ref)
            ref_fits = (layer.inputs + layer.outputs) * ref.x_bits * one <= act_bits
            seen[key] = None
            if fits:
                try:
                    seen[key] = map_reusing(zl, on_chip, layer_mapping(a, zl), ref_accel[ref_fits], rl)
                except ValueError:
                    fits = False
            if seen[key] is None:
                seen[key] = map_reusing(zl, accel, layer_mapping(a, zl), ref_accel[False], rl)
            seen[key] = {**seen[key], "act_on_chip": fits}
        fits = seen[key].get("act_on_chip", False)
        # weights loaded from DRAM: once (resident), once per batch (the layer's weights fit the weight
        # memories), or as often as the per-sample mapping fetches them
        w_fit = layer.weights / rep * prec.w_bits <= cap
        how = "sample" if layer.kind == "matmul" else "resident" if resident else "batch" if w_fit else "sample"
        row = _price_layer(layer, seen[key], rep, prices, per, decode_pj, prec, top, (w_top, w_store), how, batch)
        row["datapath"] = datapath
        if layer.float:    # no datapath covers it: its arithmetic at the fp32 MAC (its traffic at the datapath's width)
            fp = mac_energy("fp32", mode, operands)
            mul, acc = row["macs"] * fp["multiply_pj"], row["macs"] * fp["accumulate_pj"]
            row["energy_pj"] += mul + acc - row["arithmetic_pj"]
            row.update(multiply_pj=mul, accumulate_pj=acc, arithmetic_pj=mul + acc, datapath="fp32")
        if fits:       # the network's input and output cross DRAM once; between layers data stays on chip
            io = ((layer.inputs if i == 0 else 0) + (layer.outputs if i == len(net.layers) - 1 else 0)) / net.batch
            e = io * prec.x_bits / prices["dram"]["word_bits"] * prices["dram"]["read_pj"]
            row["levels"]["dram"] += e
            row["dram_pj"] += e
            row["memory_pj"] += e
            row["energy_pj"] += e
        rows.append(row)
        if progress is not None:
            progress(i + 1, len(net.layers), layer.name)

    def tot(k):
        return math.fsum(r[k] for r in rows)
    levels = {}
    for r in rows:
        for k, v in r["levels"].items():
            levels[k] = levels.get(k, 0.0) + v
    return {"net": net.name, "datapath": datapath, "arch": a.label, "arch_spec": a.name, "batch": batch,
            "training": False, "products_per_layer": 1, "per_inference": True,
            "tiles": tiles, "weights_resident": resident, "weight_bits": weight_bits,
            "weight_capacity_bits": cap, "per_mac": per, "decode_pj_per_mac": decode_pj,
            "macs": tot("macs"), "energy_pj": tot("energy_pj"), "arithmetic_pj": tot("arithmetic_pj"),
            "multiply_pj": tot("multiply_pj"), "accumulate_pj": tot("accumulate_pj"),
            "memory_pj": tot("memory_pj"), "dram_pj": tot("dram_pj"), "sram_pj": tot("sram_pj"),
            "levels": levels, "weight_load_pj": tot("weight_load_pj"),
            "cycles": tot("cycles"), "layers": rows}


def _price_layer(layer, m, rep, prices, per, decode_pj, prec, top, w_path, weights: str, batch: int) -> dict:
    """One layer's energy per inference (all repeats) from ZigZag's access counts of one sample.
    w_path = (the top weight memory, the on-chip one below it). weights: "resident" (the top's weight
    reads and the on-chip one's fills are the one-time weight_load_pj), "batch" (they happen once per
    batch: / batch) or "sample" (as counted)."""
    w_top, w_store = w_path
    levels = {k: 0.0 for k in prices}
    counts = {}
    load = 0.0
    for lv in m["levels"]:
        name, op = lv["memory"], lv["operand"]
        pr = prices[name]
        beats = pr.get("beats", 1)
        reads = lv["rd_out_to_low"] + lv["rd_out_to_high"]
        writes = lv["wr_in_by_high"] + lv["wr_in_by_low"]
        fetch = 0.0                                    # weight traffic from DRAM into the weight memories
        if op == "W" and weights != "sample":
            fetch = (lv["rd_out_to_low"] * pr["read_pj"] if name == w_top else
                     lv["wr_in_by_high"] * pr["write_pj"] if name == w_store else 0.0)
        e = (reads * pr["read_pj"] + writes * pr["write_pj"]) * beats - fetch * beats
        if weights == "resident":
            load += fetch * beats
        elif weights == "batch":
            e += fetch * beats / batch
        levels[name] += e
        bus = lv["rd_out_to_low"] * beats * pr.get("bus_pj", 0.0)
        if bus:
            levels["bus"] = levels.get("bus", 0.0) + bus
        c = counts.setdefault(name, {"reads": 0, "writes": 0})
        c["reads"] += reads * beats
        c["writes"] += writes * beats
    macs = m["macs"]
    if "bank" in prices:
        levels["bank"] += macs * prec.bank[2] * prices["bank"]["entry_read_pj"]
    levels = {k: v * rep for k, v in levels.items()}
    n = macs * rep
    mul = n * (per["multiply_pj"] + decode_pj)
    acc = n * per["accumulate_pj"]
    mem = math.fsum(levels.values())
    return {"name": layer.name, "kind": layer.kind, "shape": layer.shape, "macs": n,
            "multiply_pj": mul, "accumulate_pj": acc, "arithmetic_pj": mul + acc, "memory_pj": mem,
            "dram_pj": levels.get(top, 0.0), "sram_pj": mem - levels.get(top, 0.0),
            "energy_pj": mul + acc + mem, "levels": levels, "weight_load_pj": load * rep,
            "weights_from_dram": weights, "accesses": {k: {kk: vv * rep for kk, vv in v.items()} for k, v in counts.items()},
            "cycles": m["cycles"] * rep, "spatial": m["spatial"], "temporal": m["temporal"]}


def zigzag_own_energy(net, yaml_path: str, datapath: str = "int8") -> dict:
    """ZigZag's own energy of one inference of `net` on its accelerator file `yaml_path` (the file's
    per-access costs and MAC energy, ZigZag's minimal-energy mapping of each layer, one sample), and
    the same mapping's accesses re-priced by ecomac (memories as for --arch FILE.yaml, the MAC of
    `datapath` from its netlist)."""
    from .network import mac_energy
    from .zigzag_arch import layer_mapping, load_user, parse_arch, precision
    a = parse_arch(yaml_path)
    prec = precision(datapath)
    accel, _ = load_user(a, 0.0, reprice=False)
    _, prices = load_user(a, 0.0)
    mac_unit = accel["operational_array"]["unit_energy"]
    total = macs = 0.0
    levels: dict = {}
    seen = {}
    for layer in net.layers:
        zl = zigzag_layer(layer, prec)
        key = json.dumps({**zl, "name": ""}, sort_keys=True)
        if key not in seen:
            seen[key] = map_layer(zl, accel, layer_mapping(a, zl))
        m, rep = seen[key], layer.dims.get("repeat", 1)
        total += m["zigzag_energy_pj"] * rep
        macs += m["macs"] * rep
        for lv in m["levels"]:
            pr = prices[lv["memory"]]
            e = ((lv["rd_out_to_low"] + lv["rd_out_to_high"]) * pr["read_pj"]
                 + (lv["wr_in_by_high"] + lv["wr_in_by_low"]) * pr["write_pj"]) * rep
            levels[lv["memory"]] = levels.get(lv["memory"], 0.0) + e
    mac_pj = mac_energy(datapath)["mac_pj"]
    mem = math.fsum(levels.values())
    return {"zigzag": {"energy_pj": total, "arithmetic_pj": macs * mac_unit, "memory_pj": total - macs * mac_unit,
                       "mac_pj": mac_unit},
            "ecomac_priced": {"energy_pj": mem + macs * mac_pj, "arithmetic_pj": macs * mac_pj, "memory_pj": mem,
                              "mac_pj": mac_pj, "levels": levels,
                              "per_access_pj": {k: v["read_pj"] for k, v in prices.items()},
                              "file_per_access_pj": {k: v["file_read_pj"] for k, v in prices.items()}},
            "macs": macs}


def _decoder_pj(prec, mode: str) -> float:
    """Energy of one asm weight decoder (compact index -> control word) per decoded weight, from its
    netlist on uniformly drawn representable weights (cached like every netlist energy)."""
    import numpy as np
    from amaranth.back import verilog

    from golden import asm as gasm
    from rtl.asm import AsmWeightDecoder

    from .energy import netlist_energy
    wb, alph = prec.decoder
    text = verilog.convert(AsmWeightDecoder(wb, alph), name="asm_decoder", emit_src=False)
    stream = None
    if mode in ("activity", "timed"):
        r = np.random.default_rng(24)
        reps = gasm.representable(alph, wb)
        w = reps[r.integers(0, reps.size, (64, 33))] * r.choice([-1, 1], (64, 33))
        stream = {"c": gasm.compact_encode(w, alph, wb).astype(np.int64)}
    return netlist_energy(text, "asm_decoder", mode=mode, stream=stream)["energy_pj"]


def mvm_counts(s) -> dict:
    """ZigZag's access counts of one matrix-vector product (W loaded, one x vector) on the accelerator
    description of a single tile (golden.tile.TileSpec `s`): the counters the RTL tiles report."""
    from .network import parse_net
    from .zigzag_arch import Arch, Precision, accelerator, layer_mapping
    kind = {"vn": "tile-vn", "near": "tile-near", "in": "tile-in"}[s.kind]
    params = {"lanes": s.lanes, "depth": s.depth, "parallel": 1, "tiles": 1, "bus_bits": s.bus_bits or 64,
              "bus_mm": 1.0, "act_kb": 64, "ibuf_b": 0, "storage": s.weight_storage}   # the RTL tile has no x buffer
    arch = Arch(kind, kind, params)
    prec = Precision(s.x_bits, s.w_width, s.acc_bits, s.bank if s.kind == "in" else None, None)
    accel, prices = accelerator(arch, prec, 0.0, 1)
    net = parse_net({"name": "mvm", "layers": [{"kind": "linear", "name": "mvm", "in": s.depth, "out": s.lanes}]})
    zl = zigzag_layer(net.layers[0], prec)
    m = map_layer(zl, accel, layer_mapping(arch, zl))
    beats = prices["wmem"].get("beats", 1)
    lv = {(x["memory"], x["operand"]): x for x in m["levels"]}
    w = lv[("wmem", "W")]
    out = {"mem_reads": w["rd_out_to_low"] * beats, "mem_writes": w["wr_in_by_high"] * beats,
           "bus_beats": w["rd_out_to_low"] * beats if s.kind == "vn" else 0}
    if s.kind == "in":
        out["bank_writes"] = lv[("bank", "I")]["wr_in_by_high"] if ("bank", "I") in lv else 0
    return out
