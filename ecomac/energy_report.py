"""Tables, plots and report sections of the energy commands (ecomac/cmd_energy.py): printing
only; the figures come from synth/energy.py, synth/network_comparison.py and synth/accumulators.py."""
from __future__ import annotations

from pathlib import Path

from synth import energy as E
from synth import network as N
from synth import network_comparison as NC
from synth import reference
from synth.cache import atomic_write

from .plot import figure_bytes, png_bytes
from .table import format_table

__all__ = ["report_sections", "heavy_report_sections", "fmt_pj", "design_label", "liberty_table",
           "headline_table", "accumulator_table", "comparison_table", "plot_layers"]


def fmt_pj(v: float) -> str:
    for unit, scale in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.4g} {unit}"
    return f"{v:.4g} pJ"


def design_label(r) -> str:
    p = ",".join(f"{k}={v}" for k, v in r["params"].items())
    return f"{r['design']} {p}".strip()


def liberty_table(res: dict, lib_name: str) -> str:
    rows = sorted(res["points"], key=lambda r: r["model_pj"])
    body = [[design_label(r), f"{r['model_pj']:.4g}", f"{r['liberty_pj']:.4g}", f"{r['liberty_pj'] / r['model_pj']:.3g}"]
            for r in rows]
    return format_table(body, ["design", f"model pJ ({res['mode']}, 45 nm)", f"{lib_name} pJ", "ratio"],
                        title=f"{len(rows)} designs: Spearman rank correlation {res['spearman']:.3f}")


def headline_table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        e = r["energy"]
        body.append([r["net"], fmt_pj(e["fp32"]["arithmetic_pj"]), fmt_pj(e["mfmac"]["arithmetic_pj"]),
                     f"{r['mfmac_vs_fp32_arithmetic_pct']:.1f}%", fmt_pj(e["fp32"]["energy_pj"]),
                     fmt_pj(e["mfmac"]["energy_pj"]), f"{r['mfmac_vs_fp32_total_pct']:.1f}%",
                     f"{r['paper_arithmetic_pct']}%"])
    return format_table(body, ["net", "FP32 arith", "MF-MAC arith", "arith saved", "FP32 total",
                               "MF-MAC total", "total saved", "paper (arith)"])


def accumulator_table(rows: list[dict], mode: str) -> str:
    body = [[r["accumulator"], r["chunk"], r["k"], r["clocks"], r["transistors"], r["flip_flops"],
             f"{r['pj_per_mac']:.4f}", f"{r['clock_pj_per_mac']:.4f}", f"{r['saving_vs_fp32_pct']:.2f}%"]
            for r in rows]
    return format_table(body, ["accumulator", "MACs/clock", "K", "clocks", "transistors", "flip-flops",
                               "pJ/MAC", "of it clock", "saved vs FP32 MAC"],
                        title=f"mfmac-pe (exp_bits=3, acc_bits=24) per MAC over one K-step dot product, {mode} mode; "
                              f"FP32 MAC (fp32-mac) {rows[0]['fp32_mac_pj']:.4g} pJ")


def plot_layers(res: dict, fmt: str = "png") -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    layers = res["layers"]
    names = [r["name"] for r in layers]
    parts = [("multiply", "multiply_pj", "#d62728"), ("accumulate", "accumulate_pj", "#ff7f0e"),
             ("SRAM", "sram_pj", "#1f77b4"), ("DRAM", "dram_pj", "#7f7f7f")]
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(names) + 2), 4.5))
    bottom = [0.0] * len(names)
    for label, key, color in parts:
        vals = [r[key] / 1e6 for r in layers]
        ax.bar(names, vals, bottom=bottom, label=label, color=color)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylabel("energy (µJ)")
    kind = "training step" if res["training"] else "inference"
    ax.set_title(f"{res['net']}: {res['datapath']} datapath, one {kind} "
                 f"(total {fmt_pj(res['energy_pj'])})")
    ax.tick_params(axis="x", labelrotation=60, labelsize=8)
    ax.legend()
    fig.tight_layout()
    return figure_bytes(fig, fmt)


# ---- report ---------------------------------------------------------------------------------
def _calibration_section() -> str:
    static = {r["op"]: r for r in E.calibration_table("static")}
    timed = {r["op"]: r for r in E.calibration_table("timed")}
    act = E.calibration_table("activity")
    rows = [[r["op"], design_label(r), r["reference_pj"], static[r["op"]]["predicted_pj"], static[r["op"]]["ratio"],
             r["predicted_pj"], r["ratio"], timed[r["op"]]["predicted_pj"], timed[r["op"]]["ratio"],
             f"{100 * timed[r['op']]['glitch_share']:.1f}%"] for r in act]
    cs, ca, ct = E.calibration("static"), E.calibration("activity"), E.calibration("timed")
    missing = [op for op, name, _, _ in E.CALIBRATION_POINTS if op not in static]
    text = [
        f"One constant per mode, set so that `{cs['design']}` bits=8 (exact unsigned 8x8 array multiplier) "
        f"costs {reference.MUL8_PJ} pJ per operation ({reference.SOURCE}); every other row is a prediction "
        "(ratio = predicted / reference). Static: energy proportional to the netlist's CMOS transistors. "
        "Activity: zero-delay toggles of every cell output on uniform random operands, weighted by the "
        "cell's transistors, plus flip-flop clock energy. Timed: the same streams swept with a unit delay "
        "per gate, every transition counted (glitches included); glitch share = the part of the timed "
        "toggle energy that zero-delay simulation does not see. "
        f"Constants: static {cs['pj_per_unit']:.4g} pJ/transistor, activity {ca['pj_per_unit']:.4g} "
        f"pJ/transistor-toggle, timed {ct['pj_per_unit']:.4g} pJ/transistor-toggle.",
        "", "```",
        format_table(rows, ["op", "design", "reference pJ", "static pJ", "static ratio",
                            "activity pJ", "activity ratio", "timed pJ", "timed ratio", "glitch share"]), "```"]
    if missing:
        text.append(f"\nNot available (design not registered): {', '.join(missing)}.")
    return "\n".join(text)


def _plot_headline(rows: list[dict]) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    dps = ("fp32", "int8", "mfmac")
    parts = [("multiply", "multiply_pj", "#d62728"), ("accumulate", "accumulate_pj", "#ff7f0e"),
             ("SRAM", "sram_pj", "#1f77b4"), ("DRAM", "dram_pj", "#7f7f7f")]
    fig, axes = plt.subplots(1, len(rows), figsize=(5.2 * len(rows), 4.4), squeeze=False)
    for ax, r in zip(axes[0], rows):
        bottom = [0.0] * len(dps)
        for label, key, color in parts:
            vals = [r["energy"][dp][key] / 1e9 for dp in dps]
            ax.bar(dps, vals, bottom=bottom, label=label, color=color)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_ylabel("energy per training step (mJ)")
        ax.set_title(f"{r['net']}: MF-MAC saves {r['mfmac_vs_fp32_arithmetic_pct']:.1f}% of arithmetic,\n"
                     f"{r['mfmac_vs_fp32_total_pct']:.1f}% of the total (paper: "
                     f"{r['paper_arithmetic_pct']}% arithmetic)", fontsize=9)
        for i, dp in enumerate(dps):
            e = r["energy"][dp]
            ax.annotate(f"arith {fmt_pj(e['arithmetic_pj'])}\ntotal {fmt_pj(e['energy_pj'])}",
                        (i, e["energy_pj"] / 1e9), ha="center", va="bottom", fontsize=7.5)
        ax.margins(y=0.15)
    axes[0][0].legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return png_bytes(fig)


SIGN_MAGNITUDE_REF = "approx:mul-array"      # approx-mac with the exact array: sign-magnitude alone


def comparison_table(rows: list[dict]) -> str:
    def pct(v):
        return f"{v:+.1f}%" if v is not None else "-"
    body = [[r["datapath"], r["mac_design"], f"{r['mac_pj']:.4f}", f"{r['multiply_pj']:.4f}",
             f"{r['accumulate_pj']:.4f}", pct(r["mac_vs_fp32_pct"]), pct(r["mac_vs_int8_pct"]),
             "exact" if r["product_mre_pct"] is None else f"{r['product_mre_pct']:.2f}%",
             fmt_pj(r["arithmetic_pj"]), fmt_pj(r["energy_pj"]), pct(r["total_vs_fp32_pct"]),
             pct(r["total_vs_int8_pct"])] for r in rows]
    return format_table(body, ["datapath", "MAC unit", "pJ/MAC", "multiply", "accumulate", "MAC saved vs FP32",
                               "vs int8", "product MRE", "step arith", "step total", "total saved vs FP32",
                               "vs int8"])


def _sign_magnitude_note(rows: list[dict]) -> str:
    """What sign-magnitude alone buys, and what the approximate multipliers add to it."""
    by = {r["datapath"]: r for r in rows}
    ref = by.get(SIGN_MAGNITUDE_REF)
    if ref is None or "int8" not in by:
        return ""
    approx = [r for r in rows if r["datapath"].startswith(N.APPROX_PREFIX) and r is not ref]
    parts = [f"{r['datapath']} {100 * (1 - r['mac_pj'] / ref['mac_pj']):+.1f}%" for r in approx]
    return (f"`{SIGN_MAGNITUDE_REF}` is approx-mac with the exact array multiplier: sign-magnitude alone saves "
            f"{ref['mac_vs_int8_pct']:.1f}% per MAC against int-mac's two's-complement multiply on these N(0,1) "
            "operands (a small negative value has few 1 bits as a magnitude, but all its high bits set in two's complement), so the approximate "
            "multipliers' own saving is measured against it: " + ", ".join(parts) + " per MAC (negative = "
            "costs more).")


def _headline_section(outdir: Path) -> str:
    rows = NC.headline(mode="activity")
    static = {r["net"]: r for r in NC.headline(mode="static")}
    png = outdir / "energy_training.png"
    atomic_write(png, _plot_headline(rows))
    compare = NC.datapath_comparison(mode="activity")
    body = [
        "Linear and conv layers of the two example nets (`examples/nets/`), one training step = "
        "forward, backward-data and weight-gradient products (3 x the forward MACs). Arithmetic = "
        "multiplies + accumulations on ecomac's synthesized MAC units (activity mode, N(0,1) operands "
        "in each format); memory = SRAM + DRAM traffic of the model in `synth/network.py` "
        f"(DRAM {reference.DRAM_USED_PJ:g} pJ and 32 KB SRAM "
        f"{reference.sram_access_pj(32 * 1024):g} pJ per 64-bit access, {reference.SOURCE}).",
        "", f"Per MAC (pJ) and one {compare[0]['net']} training step on each datapath (saved = positive):",
        "", "```", comparison_table(compare), "```", "",
        "asm = `asm-pe-row` (alphabet {1,3,5,7}, 16 lanes sharing one pre-computer bank, x_bits = w_bits = 8); "
        "its weights are N(0,1) quantized onto the alphabet's set (`golden.asm.quantize`) and encoded, its "
        "multiply share = one select-shift-add lane + 1/16 of the bank. approx:FAMILY,... = `approx-mac` "
        "(signed 8-bit, the family's unsigned 8x8 multiplier on |x|, |w|, conditional negate); its multiply "
        "share = that signed multiply unit alone. Product MRE = mean |error| / |exact product| of the "
        "datapath's products on its own N(0,1) int8 operand stream (pairs with a non-zero product); the "
        "asm product is exact on its projected weights (weight error: see the ASM section). int8, asm and "
        "approx store every tensor at 8 bits (the asm weights' sign + 8-bit magnitude is charged as 8 bits).",
        "", _sign_magnitude_note(compare),
        "", "Training step, MF-MAC vs FP32 MAC:", "", "```", headline_table(rows), "```", "",
        "The last column is the ALS-POTQ paper's own figure (arithmetic of linear layers in training), "
        "a reference, not a measurement. Static mode (energy ~ transistors) gives "
        + ", ".join(f"{n}: {static[n]['mfmac_vs_fp32_arithmetic_pct']:.1f}% arithmetic, "
                    f"{static[n]['mfmac_vs_fp32_total_pct']:.1f}% total" for n in static) + ".",
        "", f"![training energy breakdown]({png.name})"]
    return "\n".join(body)


def _accumulator_section() -> str:
    rows = NC.accumulator_table(mode="activity")
    body = [[dp, r["net"], fmt_pj(r["energy"]["mfmac"]["arithmetic_pj"]), f"{r['mfmac_vs_fp32_arithmetic_pct']:.1f}%",
             f"{r['mfmac_vs_fp32_total_pct']:.1f}%"]
            for dp, per in NC.accumulator_headlines(mode="activity").items() for r in per]
    return "\n".join([
        "The serial MF-MAC adds each product to its 24-bit register: the register's clock alone is "
        "most of its energy per MAC, and a sign-extended addend flips the high bits of the adder whenever "
        "the product's sign changes. `accumulator=treeC` (golden/pot_acc.py, rtl/pot_acc.py) takes C "
        "products per clock (C consecutive steps of K), routes each one-hot magnitude by its sign into "
        "one of two unsigned adder trees, and adds their narrow difference to the register once per clock: "
        "bit-exact with the serial sum (cocotb: every chunk where there are at most 2^16, random wrap streams). "
        "Energy per MAC over one K-step dot product (N(0,1) PoT operands, the clear of the next one included):",
        "", "```", accumulator_table(rows, "activity"), "```", "",
        "Training step of the example nets with each accumulator (arithmetic and total saved vs the FP32 MAC; "
        "network per-MAC figures from the 33-clock stream of `synth/network.py`):",
        "", "```", format_table(body, ["datapath", "net", "MF-MAC arith", "arith saved", "total saved"]), "```"])


def _glitch_section() -> str:
    """Glitch share of every default design (timed mode, its default uniform random streams)."""
    rows = [[r["design"], f"{r['zero_delay_toggles_per_cycle']:.1f}", f"{r['toggles_per_cycle']:.1f}",
             f"{100 * r['glitch_share']:.1f}%", f"{r['energy_pj']:.4g}"] for r in E.glitch_table()]
    return "\n".join([
        "Timed mode (unit delay per generic gate) on every default design: cell-output transitions per cycle "
        "without and with glitches, the glitch share of the toggle energy, and the timed energy per operation "
        "(one constant: `mul-array` bits=8 = 0.2 pJ).", "", "```",
        format_table(rows, ["design", "zero-delay toggles", "timed toggles", "glitch share", "timed pJ/op"]), "```"])


def _liberty_section() -> str:
    import sys
    lib = E.default_liberty()
    if lib is None:
        return ("No cell library: set ECOMAC_LIBERTY to a .lib/.lib.gz (the sky130 typical corner in "
                "../shared/pdk is used when present). ecomac ships no PDK and downloads none.")
    name = Path(lib).name
    cal = [[r["op"], design_label(r), r["reference_pj"], r["predicted_pj"], r["liberty_pj"]]
           for r in E.liberty_calibration(lib)]
    points = E.liberty_points()
    res = E.liberty_correlation(points, lib, "activity",
                                progress=lambda t: print(f"liberty energy {t}", file=sys.stderr))
    timed = E.liberty_correlation(points, lib, "timed")
    static = E.liberty_correlation(points, lib, "static")
    return "\n".join([
        f"`{name}` mapped by Yosys (`dfflibmap`, `abc -liberty`), the mapped netlist simulated bit-parallel "
        "from the cells' Liberty functions (zero-delay, the same uniform random streams as activity mode). "
        "Energy per operation = for every cell output transition the library's internal energy (mean of its "
        "rise and fall tables over the related pins, read at a 0.05 ns input slew and the net's actual load: "
        "the fan-out's pin capacitances) + 1/2 C V^2 of that load, + the input pins' internal energy, + both "
        "clock edges of every flip-flop's clock pin, + leakage x one cycle at 100 MHz. pJ at the library's "
        "node and voltage (sky130: 130 nm, 1.8 V), not 45 nm: compare ranks, not values.",
        "", "Calibration points:", "", "```",
        format_table(cal, ["op", "design", "45 nm reference pJ", "model pJ (activity)", f"{name} pJ"]), "```", "",
        f"Rank correlation (Spearman) between the calibrated transistor model and the library's energy over "
        f"{len(res['points'])} designs (every default design and the approximate-multiplier sweep): activity "
        f"{res['spearman']:.3f}, timed {timed['spearman']:.3f}, static {static['spearman']:.3f}.",
        "", "```", liberty_table(res, name), "```"])


def heavy_report_sections():
    """The cell-library energy of ~45 designs: about 20 minutes cold (ecomac/report.py)."""
    return [(22, "Energy from a real cell library", 20, lambda outdir: _liberty_section())]


def report_sections(outdir) -> list[tuple[int, str, str]]:
    outdir = Path(outdir)
    return [(20, "Energy model calibration (45 nm reference table)", _calibration_section()),
            (21, "Glitches: timed activity per design", _glitch_section()),
            (30, "ALS-POTQ headline: MF-MAC vs FP32 training energy", _headline_section(outdir)),
            (31, "MF-MAC accumulators beyond the paper", _accumulator_section())]
