"""Published 45 nm reference energies (M. Horowitz, "Computing's energy problem",
ISSCC 2014, 0.9 V). These are *references* printed beside ecomac's own predictions;
the only one the model uses as an input is the calibration point (8x8 multiply)."""

# arithmetic, pJ per operation
MUL8_PJ = 0.2          # 8-bit integer multiply: the single calibration point
ADD8_PJ = 0.03
ADD32_PJ = 0.1
MUL32_PJ = 3.1
FADD32_PJ = 0.9
FMUL32_PJ = 3.7

# memory, pJ per 64-bit access
SRAM_8KB_PJ = 10.0
SRAM_32KB_PJ = 20.0
SRAM_1MB_PJ = 100.0
DRAM_PJ = (1300.0, 2600.0)   # range given by the reference; ecomac uses the low end
DRAM_USED_PJ = DRAM_PJ[0]

SOURCE = "Horowitz, ISSCC 2014, 45 nm"

_SRAM_POINTS = ((8 * 1024, SRAM_8KB_PJ), (32 * 1024, SRAM_32KB_PJ), (1024 * 1024, SRAM_1MB_PJ))


def sram_access_pj(size_bytes: float, width_bits: int = 64) -> float:
    """Energy of one access to an SRAM of `size_bytes`, moving `width_bits` bits.

    Piecewise log-log interpolation between the three reference points (8 KB,
    32 KB, 1 MB per 64-bit access), extrapolated with the nearest segment's slope
    outside them (so a small register file costs less than 8 KB SRAM); energy
    scales linearly with the access width. A model, not a reference figure.
    """
    import math
    if size_bytes <= 0:
        raise ValueError(f"size_bytes must be > 0, got {size_bytes}")
    if width_bits <= 0:
        raise ValueError(f"width_bits must be > 0, got {width_bits}")
    pts = _SRAM_POINTS
    ls = math.log(size_bytes)
    seg = 0 if size_bytes <= pts[1][0] else 1
    (s0, e0), (s1, e1) = pts[seg], pts[seg + 1]
    slope = (math.log(e1) - math.log(e0)) / (math.log(s1) - math.log(s0))
    e64 = math.exp(math.log(e0) + slope * (ls - math.log(s0)))
    return e64 * width_bits / 64.0
