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
