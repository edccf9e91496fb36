"""A network's products on the generated hardware: an output-stationary array, tile by tile.

    array_for(datapath, rows, cols)      -> Array: which RTL unit the R x C array is built of
    GateEngine(array, netlist=None, timed=False)   the synthesized gate netlist through synth.gatesim
    RtlEngine(array)                     the generated Verilog through cocotb + Icarus (array_verilog)
    engine(name, array, ...)             one of the two by name ("gates", "rtl")
    engine.product(X, W) -> Y            X: G x M x K codes (G independent lane groups), W: K x N codes
                                         shared by the groups, or G x K x N (one per group: batched products)
    fault_netlist(netlist, cell)         the netlist with one cell's output inverted (fault test)
    energy_pj(stats, timed=False)        the array's energy over what an engine counted

The array (R x C outputs, output-stationary): a product Y = X . W of one lane group (one
inference, or a batch of them) is cut into output tiles of R rows of X by C columns of W,
row-major (tile (tm, tn) covers rows tm*R.. and columns tn*C..). A tile streams K steps: step k
presents column k of the tile's X rows on the array's row inputs and row k of its W columns on
the column inputs with valid high and clear high on k = 0, so every PE's accumulator starts
afresh; one clock after its last step the tile's R x C accumulations are read while the next
tile's first step is already in (no bubble). Edge tiles are padded with the zero code (0 for
every datapath), their padded PEs accumulate zeros: cycles per group = tiles x K, plus one
(the last tile's register) per product.

Units (what the RTL offers per datapath; the array is R/Ru x C/Cu units, wired as mfmac-array
wires its PEs: a row's x broadcast along the row, a column's w down the column, one valid and
one clear for the whole array, no logic between units):
  mfmac[,exp_bits=E]   one `mfmac-array` rows=R cols=C (the array itself, serial accumulator);
  int8                 R x C `int-mac` bits=8;
  approx:FAMILY,...    R x C `approx-mac` (the family multiplier in sign-magnitude);
  asm,...              R `asm-pe-row` lanes=C (each row: one pre-computer bank for its x, C lanes;
                       the weight codes go in as golden.asm.encode's control words).
The gate engine simulates one unit's netlist with one lane (bit) per unit instance and lane
group, lanes in lockstep; flip-flop state and the previous cycle's net values carry from tile to
tile and product to product, so every transition of the real operand stream is counted (only the
first cycle after a change of the lane count, i.e. of a run and of a smaller last chunk of samples,
has no predecessor). Energy is synth.energy's activity model on those
toggles: pJ = activity calibration x (sum of toggles x cell transistors + clock units per
flip-flop and cycle), all units of the array, idle (padded) PEs included.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden import datapath as gdp

from .gatesim import ONES, GateNetlist

__all__ = ["Array", "Unit", "array_for", "GateEngine", "RtlEngine", "HwStats", "fault_netlist", "engine",
           "energy_pj", "array_verilog", "unit_netlist", "ENGINES", "parse_array", "SUPPORTED"]

ENGINES = ("gates", "rtl")
SUPPORTED = "int8, mfmac (serial accumulator), asm, approx:FAMILY"


def _tally(s, G: int, M: int, N: int, K: int, pes: int, tiles: int) -> int:
    """Count one G x (M x K . K x N) product on an array of `pes` PEs in `tiles` output tiles into
    stats `s`; returns its cycles (K per tile, one to drain)."""
    cycles = tiles * K + 1
    s.products += 1
    s.cycles += cycles
    s.macs += G * M * N * K
    s.pe_cycles += G * cycles * pes
    return cycles


@dataclass(frozen=True)

class Unit:
    """One RTL design the array is built of: it covers rows x cols outputs of the array."""
    design: str
    params: dict
    rows: int
    cols: int
    x_port: str            # rows fields of x_bits (field i = row i)
    w_port: str            # cols fields of w_bits (field j = column j)
    out_port: str          # rows*cols fields of acc_bits, row-major
    x_bits: int
    w_bits: int
    acc_bits: int


@dataclass(frozen=True)
class Array:
    datapath: gdp.Datapath
    rows: int
    cols: int
    unit: Unit
    description: str
    encode_w: object = None            # codes -> the w port's words (asm), or None

    @property
    def units(self) -> tuple[int, int]:
        return self.rows // self.unit.rows, self.cols // self.unit.cols

    def w_words(self, W: np.ndarray) -> np.ndarray:
        return self.encode_w(W) if self.encode_w is not None else W


def parse_array(text: str) -> tuple[int, int]:
    """'RxC' -> (R, C), each 1..64 (mfmac-array's limits); one-line ValueError otherwise."""
    r, sep, c = str(text).strip().lower().partition("x")
    try:
        R, C = int(r), int(c)
    except ValueError:
        raise ValueError(f"--array must look like RxC (e.g. 4x4), got {text!r}") from None
    if not sep or not (1 <= R <= 64 and 1 <= C <= 64):
        raise ValueError(f"--array RxC needs 1 <= R, C <= 64, got {text!r}")
    return R, C


def array_for(dp, rows: int = 4, cols: int = 4) -> Array:
    """The R x C array of datapath `dp` (a spec or golden Datapath)."""
    if isinstance(dp, str):
        from .network import parse_spec
        dp = parse_spec(dp)
    p = dp.params
    if dp.kind == "mfmac":
        if p["accumulator"] != "serial":
            raise ValueError(f"datapath {dp.spec!r}: hwsim runs mfmac-array with the serial accumulator "
                             f"(accumulator={p['accumulator']} has no array design)")
        E, acc = p["exp_bits"], p["acc_bits"]
        unit = Unit("mfmac-array", {"rows": rows, "cols": cols, "exp_bits": E, "acc_bits": acc}, rows, cols,
                    "a", "b", "c", E + 1, E + 1, acc)
        return Array(dp, rows, cols, unit, f"one mfmac-array {rows}x{cols} (exp_bits={E}, {acc}-bit accumulators)")
    if dp.kind in ("int8", "approx"):
        design, params = dp.mac_design
        unit = Unit(design, dict(params), 1, 1, "x", "w", "acc", 8, 8, p["acc_bits"])
        shown = ",".join(f"{k}={v}" for k, v in params.items())
        return Array(dp, rows, cols, unit, f"{rows}x{cols} {design} PEs ({shown})")
    if dp.kind == "asm":
        from golden.asm import encode, encoded_bits
        alphabet, wb, xb, acc = tuple(p["alphabet"]), p["w_bits"], p["x_bits"], p["acc_bits"]
        params = {"x_bits": xb, "w_bits": wb, "alphabet": alphabet, "lanes": cols, "acc_bits": acc}
        unit = Unit("asm-pe-row", params, 1, cols, "x", "w", "acc", xb, encoded_bits(alphabet, wb), acc)
        return Array(dp, rows, cols, unit,
                     f"{rows} asm-pe-row lanes={cols} (alphabet {{{','.join(map(str, alphabet))}}}, one bank per row)",
                     encode_w=lambda W: encode(W, alphabet, wb).astype(np.int64))
    raise ValueError(f"datapath {dp.spec!r}: hwsim runs {SUPPORTED} (no array of this kind in rtl/)")


# ---- what a run measured --------------------------------------------------------------------
@dataclass
class HwStats:
    products: int = 0
    cycles: int = 0                 # per lane group, all products
    macs: int = 0                   # real MACs (no padding), all groups
    pe_cycles: int = 0              # cycles x R x C, all groups
    toggle_units: float = 0.0       # transistor-weighted toggles, all unit lanes
    clock_units: float = 0.0
    timed_toggle_units: float | None = None     # the same with unit delays, glitches included (timed)
    sim_s: float = 0.0
    extra: dict = field(default_factory=dict)

    def units(self) -> float:
        return self.toggle_units + self.clock_units


def _tiles(M: int, N: int, R: int, C: int) -> tuple[int, int]:
    return -(-M // R), -(-N // C)


def _padded(X: np.ndarray, W: np.ndarray, R: int, C: int):
    """X G x M x K, W Gw x K x N (Gw = 1 or G) -> zero-padded to whole tiles, and the tile counts."""
    G, M, K = X.shape
    N = W.shape[2]
    Tm, Tn = _tiles(M, N, R, C)
    Xp = np.zeros((G, Tm * R, K), np.int64)
    Xp[:, :M] = X
    Wp = np.zeros((W.shape[0], K, Tn * C), np.int64)
    Wp[:, :, :N] = W
    return Xp, Wp, Tm, Tn


def _check_product(X, W):
    """(X G x M x K, W Gw x K x N with Gw = 1 (shared) or G)."""
    X = np.asarray(X, np.int64)
    W = np.asarray(W, np.int64)
    if W.ndim == 2:
        W = W[None]
    if X.ndim != 3 or W.ndim != 3 or X.shape[2] != W.shape[1] or W.shape[0] not in (1, X.shape[0]):
        raise ValueError(f"product: X must be G x M x K and W K x N or G x K x N, got {X.shape} and {W.shape}")
    return X, W


# ---- the gate netlist ---------------------------------------------------------------------------
def unit_netlist(array: Array) -> dict:
    """The unit's Yosys JSON netlist (generic flow, cached by synth.yosys)."""
    from .energy import _design_verilog
    from .yosys import synthesize
    text, top, _, _ = _design_verilog(array.unit.design, array.unit.params)
    return synthesize(text, top, netlist=True)["netlist"]


_INVERSE = {"$_AND_": "$_NAND_", "$_NAND_": "$_AND_", "$_OR_": "$_NOR_", "$_NOR_": "$_OR_",
            "$_XOR_": "$_XNOR_", "$_XNOR_": "$_XOR_", "$_ANDNOT_": "$_ORNOT_", "$_ORNOT_": "$_ANDNOT_",
            "$_NOT_": "$_BUF_", "$_BUF_": "$_NOT_"}


def fault_netlist(netlist: dict, cell: str | None = None) -> tuple[dict, str]:
    """(a copy of `netlist` with one gate's output inverted, the cell's name): a stuck-inverted
    gate, the fault test's model of a broken cell (a mux gets its data inputs swapped instead).
    The cell: `cell`, or the gate driving the D input of the flip-flop behind the top module's
    first output bit (an accumulator's bit 0). ANDNOT <-> ORNOT is the inversion by De Morgan
    with the inputs swapped."""
    import copy
    net = copy.deepcopy(netlist)
    mod = next(m for m in net["modules"].values() if str(m.get("attributes", {}).get("top", "0")).strip("0"))
    cells = mod["cells"]
    if cell is None:
        out_bit = next(p["bits"][0] for p in mod["ports"].values() if p["direction"] == "output")
        ff = next(c for c in cells.values() if c["type"] == "$_DFF_P_" and c["connections"]["Q"][0] == out_bit)
        d = ff["connections"]["D"][0]
        cell = next(n for n, c in cells.items() if c["type"] != "$_DFF_P_" and c["connections"].get("Y", [None])[0] == d)
    c = cells[cell]
    if c["type"] == "$_MUX_":              # NMUX is not simulated: swap the data inputs
        c["connections"]["A"], c["connections"]["B"] = c["connections"]["B"], c["connections"]["A"]
    elif c["type"] in ("$_ANDNOT_", "$_ORNOT_"):
        # Y = A & ~B  ->  ~Y = ~A | B = B | ~A: ORNOT with the inputs swapped
        c["type"] = _INVERSE[c["type"]]
        c["connections"]["A"], c["connections"]["B"] = c["connections"]["B"], c["connections"]["A"]
    elif c["type"] in _INVERSE:
        c["type"] = _INVERSE[c["type"]]
    else:
        raise ValueError(f"cell {cell} ({c['type']}) cannot be faulted")
    return net, cell


def _pack_fields(vals: np.ndarray, width: int, W: int) -> np.ndarray:
    """vals (F, T, L) integers -> bit planes (F*width, T, W) uint64, lane l in bit l%64 of word l//64
    (field f's bit b is row f*width + b; two's complement modulo 2^width)."""
    F, T, L = vals.shape
    u = vals.astype(np.uint64, copy=False) if vals.dtype == np.uint64 else vals.astype(np.int64).view(np.uint64)
    pad = W * 64 - L
    shifts = np.arange(width, dtype=np.uint64)
    bits = ((u[:, None, :, :] >> shifts[None, :, None, None]) & np.uint64(1)).astype(np.uint8)  # F,w,T,L
    if pad:
        bits = np.concatenate([bits, np.zeros((F, width, T, pad), np.uint8)], axis=3)
    packed = np.packbits(bits.reshape(F * width, T, W, 64), axis=3, bitorder="little")          # ...,W,8
    return packed.reshape(F * width, T, W * 8).view("<u8").astype(np.uint64, copy=False)


def _unpack_fields(words: np.ndarray, F: int, width: int, L: int) -> np.ndarray:
    """(F*width, W) uint64 -> (F, L) signed int64 (width <= 62)."""
    b = np.unpackbits(np.ascontiguousarray(words.astype("<u8")).view(np.uint8).reshape(F * width, -1),
                      axis=1, bitorder="little")[:, :L].astype(np.int64).reshape(F, width, L)
    val = (b << np.arange(width, dtype=np.int64)[None, :, None]).sum(axis=1)
    return np.where(val >= (1 << (width - 1)), val - (1 << width), val)


class GateEngine:
    """The array's unit netlist, bit-parallel over unit instances and lane groups (synth.gatesim).
    timed: also sweep every cycle with a unit delay per gate (gatesim.evaluate_timed) and count every
    transition, glitches included (synth.energy's timed mode; several times slower)."""
    name = "gates"

    def __init__(self, array: Array, netlist: dict | None = None, timed: bool = False):
        self.array, self.timed = array, bool(timed)
        u = array.unit
        self.g = g = GateNetlist(netlist if netlist is not None else unit_netlist(array))
        for port, want in ((u.x_port, u.rows * u.x_bits), (u.w_port, u.cols * u.w_bits),
                           (u.out_port, u.rows * u.cols * u.acc_bits)):
            have = len(g.inputs.get(port, g.outputs.get(port, [])))
            if have != want:
                raise ValueError(f"{u.design} netlist: port {port} has {have} bits, expected {want}")
        self.valid = g.inputs["valid"]
        self.clear = g.inputs["clear"]
        self.xr = g.inputs[u.x_port]
        self.wr = g.inputs[u.w_port]
        # outputs that are flip-flop outputs read straight from the state
        qpos = {int(q): i for i, q in enumerate(g.dff_q)}
        out = g.outputs[u.out_port]
        self.out_from_state = np.array([qpos.get(int(r), -1) for r in out], np.intp)
        self.out_rows = np.array(out, np.intp)
        self.stats = HwStats(timed_toggle_units=0.0 if self.timed else None)
        self._L = None

    def _lanes(self, G: int):
        ur, uc = self.array.units
        L = G * ur * uc
        if L != self._L:                       # a new lane count: start from the reset state
            self._L, self._W = L, -(-L // 64)
            self.V = np.zeros((self.g.n_rows, self._W), np.uint64)
            self.state = np.zeros((len(self.g.dff_q), self._W), np.uint64)
            self.prev = None
            mask = np.full(self._W, ONES, np.uint64)
            if L % 64:
                mask[-1] = np.uint64((1 << (L % 64)) - 1)
            self.mask = mask
        return L

    def _read(self) -> np.ndarray:
        u = self.array.unit
        if (self.out_from_state >= 0).all():
            words = self.state[self.out_from_state]
        else:                                   # peek: settle the outputs from the state, inputs held
            V = self.V.copy()
            V[self.g.dff_q] = self.state
            self.g.evaluate(V)
            words = V[self.out_rows]
        return _unpack_fields(words, u.rows * u.cols, u.acc_bits, self._L)

    def product(self, X, W) -> np.ndarray:
        X, W = _check_product(X, W)
        t0 = time.perf_counter()
        a, u, g = self.array, self.array.unit, self.g
        R, C = a.rows, a.cols
        ur, uc = a.units
        G, M, K = X.shape
        N = W.shape[2]
        L = self._lanes(G)
        Wd = self._W
        Xp, Wp, Tm, Tn = _padded(X, W, R, C)
        Ww = a.w_words(Wp)
        Y = np.zeros((G, Tm * R, Tn * C), np.int64)
        V, cost = self.V, g.cost
        ones = np.full(Wd, ONES, np.uint64)
        zero = np.zeros(Wd, np.uint64)
        toggles = np.zeros(len(g.cost_rows), np.int64)
        timed = np.zeros(g.n_rows, np.int64) if self.timed else None
        for tm in range(Tm):
            # x fields per lane (g, unit row, unit col): rows tm*R + r*Ru + i, all k
            xt = Xp[:, tm * R:(tm + 1) * R, :].reshape(G, ur, u.rows, K)
            xv = np.broadcast_to(xt[:, :, None], (G, ur, uc, u.rows, K)).transpose(3, 4, 0, 1, 2)
            xplanes = _pack_fields(xv.reshape(u.rows, K, L), u.x_bits, Wd)
            for tn in range(Tn):
                wt = Ww[:, :, tn * C:(tn + 1) * C].reshape(-1, K, uc, u.cols)          # (1 or G), K, uc, Cu
                wv = np.broadcast_to(wt[:, :, None], (G, K, ur, uc, u.cols)).transpose(4, 1, 0, 2, 3)
                wplanes = _pack_fields(wv.reshape(u.cols, K, L), u.w_bits, Wd)
                for k in range(K):
                    V[self.xr] = xplanes[:, k]
                    V[self.wr] = wplanes[:, k]
                    V[self.valid] = ones
                    V[self.clear] = ones if k == 0 else zero
                    if timed is not None and self.prev is not None:
                        # V holds the last cycle's settled values: the new inputs and Q apply at step 0
                        q_flips = np.bitwise_count((V[g.dff_q] ^ self.state) & self.mask).sum(axis=1, dtype=np.int64)
                        V[g.dff_q] = self.state
                        timed += g.evaluate_timed(V, self.mask)
                        timed[g.dff_q] += q_flips
                    else:
                        V[g.dff_q] = self.state
                        g.evaluate(V)
                    Xn = V[g.cost_rows]
                    if self.prev is not None:
                        toggles += np.bitwise_count((Xn ^ self.prev) & self.mask).sum(axis=1, dtype=np.int64)
                    self.prev = Xn
                    self.state = V[g.dff_d]
                acc = self._read().reshape(u.rows, u.cols, G, ur, uc)      # field (i, j), lane (g, r, c)
                Y[:, tm * R:(tm + 1) * R, tn * C:(tn + 1) * C] = \
                    acc.transpose(2, 3, 0, 4, 1).reshape(G, R, C)
        cycles = _tally(self.stats, G, M, N, K, R * C, Tm * Tn)
        s = self.stats
        s.toggle_units += float(toggles @ cost)
        if timed is not None:
            s.timed_toggle_units += float(timed[g.cost_rows] @ cost)
        from .energy import CLOCK_UNITS_PER_FF
        s.clock_units += float(G * ur * uc) * (Tm * Tn * K) * g.flip_flops * CLOCK_UNITS_PER_FF
        s.sim_s += time.perf_counter() - t0
        return Y[:, :M, :N]


# ---- the Verilog through cocotb + Icarus ---------------------------------------------------------
def array_verilog(array: Array) -> tuple[str, str]:
    """(Verilog text, top) of the whole R x C array: the unit's generated module instantiated
    R/Ru x C/Cu times in a wrapper `hwsim_array` (ports clk, rst, a: R x_bits fields, b: C w_bits
    fields, valid, clear, c: R*C acc_bits fields row-major) that only wires them."""
    from .energy import _design_verilog
    u = array.unit
    text, top, _, _ = _design_verilog(u.design, u.params)
    R, C = array.rows, array.cols
    ur, uc = array.units
    if not (u.rows == 1 or u.cols == C):
        raise ValueError("array_verilog: a unit must cover one row or whole rows")
    xb, wb, ab = u.x_bits, u.w_bits, u.acc_bits
    lines = [f"module hwsim_array(clk, rst, a, b, valid, clear, c);",
             "  input clk;", "  input rst;", f"  input [{R * xb - 1}:0] a;", f"  input [{C * wb - 1}:0] b;",
             "  input valid;", "  input clear;", f"  output [{R * C * ab - 1}:0] c;"]
    for r in range(ur):
        for q in range(uc):
            xlo, wlo = r * u.rows * xb, q * u.cols * wb
            clo = (r * u.rows * C + q * u.cols) * ab
            lines.append(f"  {top} u_{r}_{q}(.clk(clk), .rst(rst), .{u.x_port}(a[{xlo + u.rows * xb - 1}:{xlo}]), "
                         f".{u.w_port}(b[{wlo + u.cols * wb - 1}:{wlo}]), .valid(valid), .clear(clear), "
                         f".{u.out_port}(c[{clo + u.rows * u.cols * ab - 1}:{clo}]));")
    lines.append("endmodule")
    return text + "\n" + "\n".join(lines) + "\n", "hwsim_array"


class _output_to:
    """Redirect this process's stdout and stderr file descriptors (the simulator subprocesses
    inherit them) to `path` for the duration of a with-block."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        import sys
        sys.stdout.flush()
        sys.stderr.flush()
        self.log = open(self.path, "ab")
        self.saved = [os.dup(1), os.dup(2)]
        os.dup2(self.log.fileno(), 1)
        os.dup2(self.log.fileno(), 2)
        return self

    def __exit__(self, *exc):
        import sys
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in zip((1, 2), self.saved):
            os.dup2(saved, fd)
            os.close(saved)
        self.log.close()
        return False


class RtlEngine:
    """The array's Verilog (array_verilog) simulated by Icarus under cocotb
    (cocotb_tests/tb_hwsim.py): one simulation per product, the lane groups one after another."""
    name = "rtl"
    TESTBENCH = "cocotb_tests.tb_hwsim"

    def __init__(self, array: Array, build_dir=None):
        self.array = array
        self.text, self.top = array_verilog(array)
        root = Path(build_dir) if build_dir is not None else Path(tempfile.mkdtemp(prefix="ecomac-hwsim-"))
        self.build_dir = root
        self.stats = HwStats()

    def product(self, X, W) -> np.ndarray:
        from cocotb_tools.runner import get_results, get_runner
        X, W = _check_product(X, W)
        t0 = time.perf_counter()
        a, u = self.array, self.array.unit
        R, C = a.rows, a.cols
        G, M, K = X.shape
        N = W.shape[2]
        Xp, Wp, Tm, Tn = _padded(X, W, R, C)
        Ww = a.w_words(Wp)
        # a[g, t, k, i] = row i of tile t at step k; b[g, t, k, j] = column j (g: 0 for shared weights)
        xa = np.stack([Xp[:, tm * R:(tm + 1) * R, :] for tm in range(Tm) for _ in range(Tn)], axis=1)
        wb = np.stack([Ww[:, :, tn * C:(tn + 1) * C] for _ in range(Tm) for tn in range(Tn)], axis=1)
        d = self.build_dir / f"product{self.stats.products}"
        d.mkdir(parents=True, exist_ok=True)
        src = d / "hwsim_array.v"
        src.write_text(self.text)
        ops, out = d / "operands.npz", d / "results.npz"
        np.savez(ops, a=xa.transpose(0, 1, 3, 2), b=wb, x_bits=u.x_bits, w_bits=u.w_bits, acc_bits=u.acc_bits)
        runner = get_runner(os.environ.get("SIM", "icarus"))
        with _output_to(d / "sim.log"):          # the simulator's chatter goes to the log, not the CLI's output
            runner.build(sources=[str(src)], hdl_toplevel=self.top, build_dir=d, timescale=("1ns", "1ps"),
                         always=True)
            xml = runner.test(hdl_toplevel=self.top, test_module=self.TESTBENCH, build_dir=d,
                              timescale=("1ns", "1ps"), results_xml=str(d / "results.xml"),
                              extra_env={"ECOMAC_HWSIM_OPERANDS": str(ops), "ECOMAC_HWSIM_RESULTS": str(out)})
        n, failed = get_results(Path(xml))
        if n == 0 or failed or not out.exists():
            raise RuntimeError(f"rtl engine: the cocotb run failed (log in {d})")
        c = np.load(out)["c"].reshape(G, Tm, Tn, R, C)
        Y = c.transpose(0, 1, 3, 2, 4).reshape(G, Tm * R, Tn * C)
        _tally(self.stats, G, M, N, K, R * C, Tm * Tn)
        self.stats.sim_s += time.perf_counter() - t0
        return Y[:, :M, :N]


def engine(name: str, array: Array, netlist: dict | None = None, timed: bool = False):
    if name == "gates":
        return GateEngine(array, netlist, timed)
    if timed:
        raise ValueError("timed (glitch) energy needs the gate engine; the rtl engine counts no toggles")
    if name == "rtl":
        return RtlEngine(array)
    raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {name!r}")


def energy_pj(stats: HwStats, timed: bool = False) -> float:
    """The array's energy over everything `stats` counted, in pJ: activity mode (zero-delay toggles),
    or with `timed` the timed mode (unit-delay transitions, glitches included)."""
    from .energy import calibration
    if timed:
        return calibration("timed")["pj_per_unit"] * (stats.timed_toggle_units + stats.clock_units)
    return calibration("activity")["pj_per_unit"] * stats.units()
