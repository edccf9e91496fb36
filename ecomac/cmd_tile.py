"""`ecomac tile energy|storage`: energy per MVM of tile-vn, tile-near and tile-in for each datapath,
split into arithmetic and data movement, and the `make report` sections. The rows are computed by
synth/tiles.py (on synth/movement.py); this module prints and plots them."""
from __future__ import annotations

import json
from pathlib import Path

from synth import tiles
from synth.cache import atomic_write
from synth.tiles import DATAPATH_PARAMS, HADES_REFERENCE, storage_label

from .plot import save_png
from .table import format_table, progress_bar

__all__ = ["add_parser", "report_sections", "heavy_report_sections"]


def _rows(table, what: str, **kwargs) -> list[dict]:
    """synth.tiles' `table` (tile_table or storage_table) with its progress on stderr."""
    with progress_bar(what) as step:
        return table(progress=step, **kwargs)


def _storage_body(rows) -> str:
    body = [[r["tile"], r["datapath"], r["stored_weight_bits"], round(r["arithmetic_pj"] / 1e3, 2),
             round(r["movement_pj"] / 1e3, 2), round(r["total_pj"] / 1e3, 2), f"{r['vs_int_pct']:+.1f}%",
             f"{r['saving_pct']:+.1f}%"] for r in sorted(rows, key=lambda r: (r["tile"], r["datapath"] != "int"))]
    return format_table(body, ["tile", "weights", "stored bits", "arith nJ", "movement nJ", "total nJ",
                               "vs same tile int", "vs tile-vn/int"])


def _vn_decoder_placement(rows) -> str:
    parts = [f"{storage_label(d['alphabet'], '')[:-1]} {d['per_lane_pj'] / 1e3:.2f} nJ per lane vs "
             f"{d['at_memory_pj'] / 1e3:.2f} nJ at the memory (control storage {d['control_pj'] / 1e3:.2f} nJ)"
             for d in tiles.vn_decoder_placement(rows)]
    return ("tile-vn, where the decoders sit: after the bus, one per lane, against the same decoders at the "
            "memory with the bus carrying control words: " + "; ".join(parts) + ".")


def _cmd_storage(args) -> int:
    rows = _rows(tiles.storage_table, "tile storage", lanes=args.lanes, depth=args.depth, bus_bits=args.bus_bits,
                 acc_bits=args.acc_bits, mode=args.mode, workers=args.workers)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(_storage_body(rows))
    print(_vn_decoder_placement(rows))
    return 0


def _fmt_rows(rows):
    out = []
    for r in rows:
        p = r["movement_parts_pj"]
        out.append([r["tile"], r["datapath"], round(r["arithmetic_pj"] / 1e3, 2),
                    round(p["weight_reads_pj"] / 1e3, 2), round(p["bus_pj"] / 1e3, 2),
                    round((p["bank_writes_pj"] + p["bank_reads_pj"]) / 1e3, 2),
                    round(r["movement_pj"] / 1e3, 2), round(r["total_pj"] / 1e3, 2),
                    f"{100 * r['movement_pj'] / r['total_pj']:.0f}%", f"{r['saving_pct']:.1f}%"])
    return out


_HEAD = ["tile", "datapath", "arith nJ", "W reads nJ", "bus nJ", "bank nJ", "movement nJ", "total nJ",
         "movement share", "saving vs vn/int"]


def _plot(rows, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [f"{r['tile'][5:]}\n{r['datapath']}" for r in rows]
    arith = [r["arithmetic_pj"] / 1e3 for r in rows]
    move = [r["movement_pj"] / 1e3 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.bar(labels, arith, label="arithmetic")
    ax.bar(labels, move, bottom=arith, label="data movement")
    ax.set_ylabel("nJ per MVM")
    ax.set_title(f"MVM {rows[0]['lanes']} lanes x K={rows[0]['depth']}: energy per tile and datapath")
    ax.legend()
    fig.tight_layout()
    save_png(fig, path)


def _cmd_energy(args) -> int:
    rows = _rows(tiles.tile_table, "tile energy", lanes=args.lanes, depth=args.depth, bus_bits=args.bus_bits,
                 acc_bits=args.acc_bits, mode=args.mode, bus_mm=args.bus_mm, min_sram_bytes=args.min_sram_bytes,
                 workers=args.workers)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(format_table(_fmt_rows(rows), _HEAD,
                       title=f"energy per MVM, {args.lanes} lanes x K={args.depth} ({args.mode} model, "
                             f"tile-vn bus {args.bus_bits} bits, {rows[0]['bus_mm']:g} mm)"))
    print(f"reference: {HADES_REFERENCE}")
    return 0


def add_parser(sub) -> None:
    from golden.tile import MAX_DEPTH, MAX_LANES

    from .args import float_range, int_range
    pt = sub.add_parser("tile", help="compute tiles (von Neumann, near-, in-memory): energy per MVM")
    ts = pt.add_subparsers(dest="tile_command", required=True, parser_class=type(pt))
    p = ts.add_parser("energy", help="arithmetic + data movement per MVM for every tile and datapath")
    p.add_argument("--lanes", type=int_range(1, MAX_LANES), default=64, help="lanes (rows of W), default 64")
    p.add_argument("--depth", type=int_range(1, MAX_DEPTH), default=256, help="K (columns of W), default 256")
    p.add_argument("--bus-bits", type=int_range(1, 4096), default=64, help="tile-vn bus width, default 64")
    from synth.energy import MODES
    from synth.movement import BUS_MM

    from .cli import positive_int
    p.add_argument("--bus-mm", type=float_range(0), default=None, metavar="MM",
                   help=f"tile-vn bus length in mm (an assumption; default {BUS_MM:g} mm)")
    p.add_argument("--min-sram-bytes", type=float_range(0), default=0.0, metavar="BYTES",
                   help="price weight arrays smaller than this like this size per bit (default 0: extrapolate)")
    p.add_argument("--acc-bits", type=int_range(2, 64), default=24)
    p.add_argument("--mode", default="activity", help=f"energy model mode: {' or '.join(MODES)} (default activity)")
    p.add_argument("--workers", type=positive_int, default=2, help="worker processes (default 2)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_energy)

    p = ts.add_parser("storage", help="ASM tiles ({1}, {1,3}, {1,3,5,7}) with control-word or compact-index "
                                      "weight storage, next to the int tiles")
    p.add_argument("--lanes", type=int_range(1, MAX_LANES), default=64, help="lanes (rows of W), default 64")
    p.add_argument("--depth", type=int_range(1, MAX_DEPTH), default=256, help="K (columns of W), default 256")
    p.add_argument("--bus-bits", type=int_range(1, 4096), default=64, help="tile-vn bus width, default 64")
    p.add_argument("--acc-bits", type=int_range(2, 64), default=24)
    p.add_argument("--mode", default="activity", help=f"energy model mode: {' or '.join(MODES)} (default activity)")
    p.add_argument("--workers", type=positive_int, default=2, help="worker processes (default 2)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_storage)


def report_sections(outdir) -> list[tuple[int, str, str]]:
    from synth.movement import BUS_MM, WIRE_PJ_PER_BIT_MM
    outdir = Path(outdir)
    rows = _rows(tiles.tile_table, "tile energy")
    floor = _rows(tiles.tile_table, "tile energy", min_sram_bytes=8192)
    atomic_write(outdir / "tiles.json", json.dumps({"rows": rows, "min_sram_8kb": floor}, indent=2) + "\n")
    _plot(rows, outdir / "tiles.png")

    def pick(rs, tile, dp):
        return next(r for r in rs if r["tile"] == tile and r["datapath"] == dp)
    best = min(rows, key=lambda r: r["total_pj"])
    a = pick(rows, "tile-vn", "int")["per_access_pj"]
    hw = [[r["tile"], r["datapath"], "PeRow" if r["tile"] != "tile-in" else "InMemoryRow",
           r["compute_row_cells"], r["compute_row_transistors"], round(r["pj_per_mac_arithmetic"], 3),
           r["stored_weight_bits"], round(r["weight_load_pj"] / 1e3, 2)] for r in rows]
    body = "\n".join([
        "MVM of 64 lanes x K = 256, 8-bit data (int 8x8; asm 8-bit x, 8-bit sign-magnitude w over "
        "{1,3,5,7}, stored as 11-bit codes; mfmac the 4-bit PoT codes, exp_bits = 3), 24-bit "
        "accumulators. Arithmetic: the synthesized compute row of each tile (activity model), per "
        "element step x K. Data movement: weight-memory accesses (45 nm SRAM model by array size and "
        "width), the tile-vn bus (64 bits per beat; "
        f"{WIRE_PJ_PER_BIT_MM:.4f} pJ/bit/mm x {BUS_MM:g} mm, an ASSUMPTION) and the tile-in bank of x "
        "multiples (register-file model). Model and assumptions: synth/movement.py, docs/tiles.md. "
        f"Per access: tile-vn weight read {a['mem_access_pj']:.2f} pJ per 64 bits of a 16 KB array.",
        "",
        "```",
        format_table(_fmt_rows(rows), _HEAD),
        "```",
        "",
        f"Reference: {HADES_REFERENCE}. Measured here: tile-near/int saves "
        f"{pick(rows, 'tile-near', 'int')['saving_pct']:.0f}%, tile-in/int "
        f"{pick(rows, 'tile-in', 'int')['saving_pct']:.0f}%; the lowest total is {best['tile']}/{best['datapath']} "
        f"({best['saving_pct']:.0f}% below tile-vn/int).",
        "",
        "Near memory saves only the bus in this model (vn and near read the same 16 KB array, and "
        "access energy is linear in width): tile-near/int would reach 50% only with a bus of "
        f"{tiles.half_saving_bus_mm(rows):.1f} mm at the assumed wire energy.",
        "",
        "tile-in's advantage rests on small arrays costing less per bit (the SRAM model extrapolated "
        "below 8 KB). Pricing every weight array under 8 KB like 8 KB per bit instead (the bank keeps its "
        "register-file price), tile-in saves "
        + ", ".join(f"{pick(floor, 'tile-in', dp)['saving_pct']:.0f}% ({dp})" for dp in DATAPATH_PARAMS)
        + " against tile-vn/int.",
        "",
        "Compute rows as synthesized for the arithmetic (64 lanes; the weight memory is the SRAM model, "
        "not synthesized); weight load = one-time energy of writing W:",
        "",
        "```",
        format_table(hw, ["tile", "datapath", "compute row", "cells", "transistors", "pJ/MAC arith",
                          "stored bits/weight", "weight load nJ"]),
        "```",
        "",
        "![tile energy](tiles.png)",
    ])
    return [(60, "Compute tiles: von Neumann vs near- vs in-memory (energy per MVM)", body),
            (61, "ASM tiles at their best storage (compact index)", _best_storage_section(outdir))]


def _storage_section(outdir) -> str:
    outdir = Path(outdir)
    st = _rows(tiles.storage_table, "tile storage")
    atomic_write(outdir / "tiles_storage.json", json.dumps(st, indent=2) + "\n")
    return "\n".join([
        "HADES: an alphabet set lets a weight be stored in fewer bits. `weight_storage=index` stores sign + "
        "the index into the alphabet's representable magnitudes (8-bit weights: {1} 25 magnitudes -> 6 bits, "
        "{1,3} 64 -> 7, {1,3,5,7} 144 -> 9) instead of the lanes' control word (7, 9, 11 bits); one "
        "`AsmWeightDecoder` per lane (a ROM, proven on every word) turns it back into the control word, "
        "priced inside the synthesized compute row. Every lane reads its weight in the same cycle, so a "
        "decoder shared by the row would serialize the lanes; decoding once at weight load is the control "
        "format itself. Same MVM as above (64 lanes x K = 256):",
        "", "```", _storage_body(st), "```", "", _vn_decoder_placement(st)])


QUICK_STORAGE_LANES = 16        # `make`'s ASM storage table: 16 lanes (64 lanes is the heavy section)


def _best_storage_section(outdir) -> str:
    """ASM tiles at their best storage (compact index) beside the int tiles, at QUICK_STORAGE_LANES lanes."""
    st = _rows(tiles.storage_table, "tile storage", lanes=QUICK_STORAGE_LANES, storages=("index",))
    atomic_write(Path(outdir) / "tiles_storage_quick.json", json.dumps(st, indent=2) + "\n")
    wins = {r["tile"]: [] for r in st}
    for r in st:
        if r["datapath"] != "int" and r["vs_int_pct"] > 0:
            wins[r["tile"]].append(r["datapath"].split("/")[0])
    return "\n".join([
        f"HADES's compact weight storage (`weight_storage=index`: sign + the index into the alphabet's "
        f"representable magnitudes, 6 / 7 / 9 bits for {{1}} / {{1,3}} / {{1,3,5,7}} at 8-bit weights, decoded by a "
        f"ROM per lane) against the int tiles, MVM of {QUICK_STORAGE_LANES} lanes x K = 256 (fewer lanes than the "
        "section above so that `make` stays within minutes; `ecomac tile storage` prices both formats, and the "
        "64-lane table with control words beside is the heavy section below):",
        "", "```", _storage_body(st), "```", "",
        "Beating the int tile of the same kind: " + "; ".join(
            f"{t}: {', '.join(w) if w else 'none'}" for t, w in sorted(wins.items())) + "."])


def heavy_report_sections():
    """ASM tiles in both weight formats: a dozen 64-lane compute-row syntheses, about an hour cold."""
    return [(61, "ASM tiles with compact weight storage", 60, _storage_section)]
