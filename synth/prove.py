"""Formal proofs with Yosys's SAT solver: a design's generated Verilog against a behavioural
reference written here, independently, from the golden definition (never from the RTL).

Each proof is a harness module instantiating the design and the reference on the same free
inputs with an immediate `assert` that their outputs agree (read with `read_verilog
-formal`), flattened, then `sat -verify -prove-asserts -show-inputs` (combinational units)
or `sat -verify -tempinduct -prove-asserts -set-init-zero` (the MACs: equality of the
accumulators from reset, for every input sequence, by temporal induction). `proven` means
the solver found no input (sequence) breaking an assert; `counterexample` comes with the
inputs the solver found. A proof that does not finish within its time limit is `undecided`.

Multipliers defeat SAT as whole units (mul-array against a*b: undecided after 120 s at
N = 8), so the array family and asm-mul are proven white-box: the netlist is cut at the
internal sums the RTL records (row by row, quartet by quartet; see "row-by-row proofs" below)
and one lemma per row or quartet is proven for every value of the state before it.

Properties (PROVABLE lists the designs):
  mul-array,   p == const + sum_j b_j ((a & mask_j) << j), the golden definition by rows
  mul-trunc,   (golden/approx.py `_kept_sum`), row by row at any N; at N <= 8 also the whole
  mul-bam      unit against the sum of its kept partial-product bits, and for mul-array the
               row sum against Yosys's own a*b
  mul-exact,   p == the golden definition as a whole unit (mul-exact: a*b)
  mul-drum,
  mul-mitchell
  mfmac-pe     the PoT product (sign, one-hot magnitude) == behavioural shift, and the whole
               MAC (pipelined or not) == a behavioural MAC on that product
  int-mac      the whole MAC == a behavioural MAC on x*w (signed)
  luq-quant    (rng=input) code == golden/luq.py's luq_fixed for every x, kmax and random word:
               leading one, the R bits below max(p, kmax - top), compare, exponent, saturation
  asm-mul      quartet by quartet: q_j == nz_j ? (a[idx_j] * x) << s_j : 0 for every word
               whose index names a member, and p == (-1)^sign sum_j q_j << 4j: golden/asm.py's
               w*x (exact for every word the encoder emits); at w_bits = 4 also the whole unit
               against x * decode(w) over the decodable words
"""
from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

from . import cache
from .proc import ToolTimeout, run_tool
from .yosys import SynthError, _yosys_cmd

__all__ = ["PROVABLE", "prove", "reference_verilog", "DEFAULT_TIMEOUT_S"]

PROVE_VERSION = "2"
DEFAULT_TIMEOUT_S = 600.0
PROVABLE = ("mul-array", "mul-exact", "mul-trunc", "mul-bam", "mul-drum", "mul-mitchell",
            "mfmac-pe", "int-mac", "asm-mul", "luq-quant")


# ---- behavioural references (from the golden definitions) ---------------------------------
def _mul_reference(design: str, p: dict, form: str = "sum") -> str:
    """module ref_mul(a, b, p) computing the golden definition of `design` behaviourally."""
    n = p["bits"]
    w2 = 2 * n
    head = (f"module ref_mul(input wire [{n - 1}:0] a, input wire [{n - 1}:0] b, output reg [{w2 - 1}:0] p);\n"
            "  integer i, j;\n")
    if design == "mul-exact" or (design == "mul-array" and form == "product"):
        return (f"module ref_mul(input wire [{n - 1}:0] a, input wire [{n - 1}:0] b, output wire [{w2 - 1}:0] p);\n"
                "  assign p = a * b;\nendmodule\n")
    if design in ("mul-array", "mul-trunc", "mul-bam"):
        if design == "mul-array":
            # a*b as the sum of every partial-product bit a_i b_j 2^(i+j) (binary multiplication's
            # definition); the miter against Yosys's own `a*b` is form="product" (SAT: minutes at N=8)
            keep, const = "1", 0
        elif design == "mul-trunc":
            from golden.approx import trunc_correction
            keep = f"i + j >= {p['k']}"
            const = trunc_correction(n, p["k"]) if p["correction"] else 0
        else:
            keep = f"j >= {p['hbl']} && i + j >= {p['vbl']}"
            const = 0
        # the sum of the kept partial-product bits a_i b_j 2^(i+j), plus the constant
        return head + (f"  always @* begin\n    p = {w2}'d{const};\n"
                       f"    for (i = 0; i < {n}; i = i + 1)\n      for (j = 0; j < {n}; j = j + 1)\n"
                       f"        if ({keep} && a[i] && b[j]) p = p + ({w2}'d1 << (i + j));\n"
                       "  end\nendmodule\n")
    if design == "mul-drum":
        k = p["k"]
        # per operand: leading one t; if t + 1 > k keep bits t-k+1..t with the lowest forced to 1
        return head + (f"  integer ta, tb, sa, sb;\n  reg [{n - 1}:0] ar, br;\n"
                       "  always @* begin\n    ta = -1; tb = -1;\n"
                       f"    for (i = 0; i < {n}; i = i + 1) begin if (a[i]) ta = i; if (b[i]) tb = i; end\n"
                       f"    if (ta + 1 > {k}) begin sa = ta - {k} + 1; ar = (a >> sa) | 1; end else begin sa = 0; ar = a; end\n"
                       f"    if (tb + 1 > {k}) begin sb = tb - {k} + 1; br = (b >> sb) | 1; end else begin sb = 0; br = b; end\n"
                       f"    p = ({w2}'d0 + ar * br) << (sa + sb);\n"
                       "  end\nendmodule\n")
    if design == "mul-mitchell":
        f = p["frac_bits"]
        big = 4 * n + f + 2
        # a = 2^k1 (1 + x1): x1 = the bits below the leading one, left-aligned, top f bits kept
        return head + (f"  integer k1, k2, c, e;\n  reg [{big - 1}:0] xa, xb, s, mant, prod;\n"
                       "  always @* begin\n    k1 = 0; k2 = 0;\n"
                       f"    for (i = 0; i < {n}; i = i + 1) begin if (a[i]) k1 = i; if (b[i]) k2 = i; end\n"
                       f"    xa = ((({big}'d0 + a) << ({n - 1} - k1)) & {big}'d{(1 << (n - 1)) - 1}) >> {n - 1 - f};\n"
                       f"    xb = ((({big}'d0 + b) << ({n - 1} - k2)) & {big}'d{(1 << (n - 1)) - 1}) >> {n - 1 - f};\n"
                       f"    s = xa + xb;\n    c = s >> {f};\n"
                       f"    mant = {big}'d{1 << f} + (s & {big}'d{(1 << f) - 1});\n    e = k1 + k2 + c;\n"
                       f"    prod = (mant << e) >> {f};\n"
                       f"    p = (a == 0 || b == 0) ? {w2}'d0 : prod[{w2 - 1}:0];\n"
                       "  end\nendmodule\n")
    raise ValueError(f"no reference for {design}")


def _pot_product_reference(e: int) -> str:
    mw = 2 * ((1 << e) - 2) + 1
    return (f"module ref_pot(input wire [{e}:0] x, input wire [{e}:0] w, output wire sign, output reg [{mw - 1}:0] mag);\n"
            "  integer k;\n"
            f"  assign sign = x[{e}] ^ w[{e}];\n"
            f"  always @* begin\n    k = x[{e - 1}:0] + w[{e - 1}:0] - 2;\n"
            f"    mag = (x[{e - 1}:0] != 0 && w[{e - 1}:0] != 0) ? ({mw}'d1 << k) : {mw}'d0;\n"
            "  end\nendmodule\n")


def _mac_reference(design: str, p: dict) -> str:
    """module ref_mac: if rst acc <= 0; elif clear acc <= valid ? x*w : 0; elif valid acc += x*w."""
    a = p["acc_bits"]
    if design == "int-mac":
        b = p["bits"]
        ports = f"input wire signed [{b - 1}:0] x, input wire signed [{b - 1}:0] w"
        prod = f"  wire signed [{a - 1}:0] prod = x * w;\n"
    else:
        e = p["exp_bits"]
        ports = f"input wire [{e}:0] x, input wire [{e}:0] w"
        # value(x) * value(w) = (-1)^(sx^sw) 2^(ex+ew-2), 0 when either exponent field is 0
        prod = (f"  integer k;\n  reg signed [{a - 1}:0] prod;\n"
                f"  always @* begin\n    k = x[{e - 1}:0] + w[{e - 1}:0] - 2;\n"
                f"    if (x[{e - 1}:0] == 0 || w[{e - 1}:0] == 0) prod = 0;\n"
                f"    else if (x[{e}] ^ w[{e}]) prod = -({a}'sd1 <<< k);\n"
                f"    else prod = {a}'sd1 <<< k;\n  end\n")
    body = (f"module ref_mac(input wire clk, input wire rst, {ports}, input wire valid, input wire clear,\n"
            f"               output reg signed [{a - 1}:0] acc);\n" + prod)
    if p.get("pipeline"):
        body += (f"  reg signed [{a - 1}:0] prod_q; reg valid_q, clear_q;\n"
                 "  always @(posedge clk)\n"
                 "    if (rst) begin prod_q <= 0; valid_q <= 0; clear_q <= 0; end\n"
                 "    else begin prod_q <= prod; valid_q <= valid; clear_q <= clear; end\n")
        v, c, pr = "valid_q", "clear_q", "prod_q"
    else:
        v, c, pr = "valid", "clear", "prod"
    # pipeline = 2 (the split accumulator): the whole-width accumulator, its output one more
    # register late, as a behavioural description places it (no halves, no carry register)
    late = int(p.get("pipeline") or 0) >= 2
    sum_ = "mac" if late else "acc"
    if late:
        body += f"  reg signed [{a - 1}:0] mac;\n  always @(posedge clk) acc <= rst ? 0 : mac;\n"
    body += (f"  always @(posedge clk)\n    if (rst) {sum_} <= 0;\n"
             f"    else if ({c}) {sum_} <= {v} ? {pr} : 0;\n    else if ({v}) {sum_} <= {sum_} + {pr};\nendmodule\n")
    return body


def _asm_reference(p: dict) -> str:
    """module ref_asm(x, w, p, ok): p = x * decode(w) (golden/asm.py's layout); ok = w decodes."""
    from golden.asm import encoded_bits, index_bits, parse_alphabet, product_bits, quartet_field_bits
    alpha = parse_alphabet(p["alphabet"])
    xb, wb = p["x_bits"], p["w_bits"]
    eb, ib, fb, pb = encoded_bits(alpha, wb), index_bits(alpha), quartet_field_bits(alpha), product_bits(xb, wb)
    q = wb // 4
    # golden/asm.py: w*x = (-1)^sign sum_j [nz_j] ((a[idx_j] * x) << s_j) << 4j
    members = "".join(f"      {i}: begin a = {v}; ax = x * {v}; end\n" for i, v in enumerate(alpha))
    idx = f"w[j*{fb} + 2 +: {ib}]" if ib else "0"
    return (f"module ref_asm(input wire signed [{xb - 1}:0] x, input wire [{eb - 1}:0] w,\n"
            f"               output reg signed [{pb - 1}:0] p, output reg ok);\n"
            f"  integer j, a, s, nz;\n  reg signed [{pb - 1}:0] ax, sum;\n"
            "  always @* begin\n    sum = 0; ok = 1;\n"
            f"    for (j = 0; j < {q}; j = j + 1) begin\n"
            f"      s = w[j*{fb} +: 2]; nz = w[j*{fb} + {ib + 2}];\n"
            f"      case ({idx})\n{members}      default: begin a = 0; ax = 0; end\n      endcase\n"
            "      if (nz) begin\n"
            "        if (a == 0 || (a << s) > 15) ok = 0;\n"
            "        sum = sum + ((ax <<< s) <<< (4 * j));\n      end\n    end\n"
            f"    p = w[{eb - 1}] ? -sum : sum;\n"
            "  end\nendmodule\n")


def _luq_reference(p: dict) -> str:
    """module ref_luq(x, kmax, r, code): golden/luq.py's luq_fixed, behaviourally."""
    from golden.pot import max_exp
    w, r, e = p["in_bits"], p["rand_bits"], p["exp_bits"]
    kb = max(1, w.bit_length())
    top = max_exp(e)
    return (f"module ref_luq(input wire signed [{w - 1}:0] x, input wire [{kb - 1}:0] kmax, input wire [{r - 1}:0] r,\n"
            f"               output reg [{e}:0] code);\n"
            f"  integer i, p, lo, pos, n;\n  reg [{w - 1}:0] m;\n  reg [{w + r - 1}:0] g;\n  reg up, inside;\n"
            "  always @* begin\n"
            f"    m = x[{w - 1}] ? -x : x;\n    p = 0;\n"
            f"    for (i = 0; i < {w}; i = i + 1) if (m[i]) p = i;\n"
            f"    lo = kmax - {top};\n    inside = (m != 0) && (p >= lo);\n"
            "    pos = inside ? p : (lo < 0 ? 0 : lo);\n"
            f"    g = ({{{r}'d0, m}} << {r}) >> pos;\n"
            f"    up = r < g[{r - 1}:0];\n"
            "    n = inside ? p - lo + 1 + up : up;\n"
            f"    if (n > {top + 1}) n = {top + 1};\n"
            f"    code = {{x[{w - 1}] & (n != 0), n[{e - 1}:0]}};\n"
            "  end\nendmodule\n")


def reference_verilog(design: str, params: dict, part: str = "main") -> str:
    """The behavioural reference module for `design` (part "product" = the PoT product)."""
    if design.startswith("mul-"):
        return _mul_reference(design, params, "product" if part == "product" else "sum")
    if design == "mfmac-pe" and part == "product":
        return _pot_product_reference(params["exp_bits"])
    if design in ("mfmac-pe", "int-mac"):
        return _mac_reference(design, params)
    if design == "asm-mul":
        return _asm_reference(params)
    if design == "luq-quant":
        return _luq_reference(params)
    raise ValueError(f"no formal proof for {design} (provable: {', '.join(PROVABLE)})")


# ---- row-by-row (white-box) proofs: the netlist cut at its internal sums -----------------------
# A multiplier miter is hard for SAT (mul-array against a*b is undecided after 120 s at N = 8),
# but each row of an array multiplier is an adder. So the generated netlist is cut (Yosys
# `expose -cut`) at every signal the RTL recorded as carry-save state: each cut signal becomes
# a free input to its readers and an output of its driver. One assert per row j then states
# value(state after row j) == value(state before row j) + row_j(a, b) for EVERY value of the
# state before it (free inputs), and one more that the final adder's p == value(last state).
# Every cut signal equals its driver in the real circuit, so chaining the row lemmas gives
# p == const + sum_j row_j(a, b): the golden definition (golden/approx.py `_kept_sum`, one
# masked row per bit of b). A lemma true only for reachable states would fail, never pass.
def _array_rows(design: str, p: dict) -> tuple[list[int], int]:
    """The golden definition of an array-family product by rows: (masks, const) with
    p == const + sum_j b_j * ((a & masks[j]) << j) mod 2^(2N) (golden/approx.py)."""
    n = p["bits"]
    full = (1 << n) - 1
    if design == "mul-array":
        vbl, hbl, const = 0, 0, 0
    elif design == "mul-trunc":
        from golden.approx import trunc_correction
        vbl, hbl = p["k"], 0
        const = trunc_correction(n, p["k"]) if p["correction"] else 0
    elif design == "mul-bam":
        vbl, hbl, const = p["vbl"], p["hbl"], 0
    else:
        raise ValueError(f"{design} is not an array multiplier")
    masks = [0 if j < hbl else full & ~((1 << max(vbl - j, 0)) - 1) for j in range(n)]
    return masks, const


def _cut_instance(module: str, ports: list[dict], cuts: list[tuple[str, int]]) -> tuple[list[str], str]:
    """Declarations and the instance of `module` with its cut signals exposed: output `o` and
    input `i` hold the cut signals, concatenated in `cuts` order (name, width)."""
    total = sum(w for _, w in cuts)
    decl = [f"  wire [{total - 1}:0] o;"]
    conns, at = [], 0
    for name, w in cuts:
        conns += [f".\\{name} (o[{at + w - 1}:{at}])", f".\\{name}__i (i[{at + w - 1}:{at}])"]
        at += w
    outs = [p for p in ports if p["direction"] == "out"]
    for o in outs:
        decl.append(f"  wire [{o['width'] - 1}:0] {o['name']};")
    conns = [f".{p['name']}({p['name']})" for p in ports] + conns
    return decl, f"  {module} gate ({', '.join(conns)});"


def _cut_harness(module: str, ports: list[dict], cuts: list[tuple[str, int]], body: list[str],
                 lemmas: list[str]) -> str:
    ins = [p for p in ports if p["direction"] == "in"]
    total = sum(w for _, w in cuts)
    decl = ", ".join([f"input wire {'signed ' if p.get('signed') else ''}[{p['width'] - 1}:0] {p['name']}"
                      for p in ins] + [f"input wire [{total - 1}:0] i"])
    wires, inst = _cut_instance(module, ports, cuts)
    lines = [f"module ecomac_proof({decl});"] + wires + [inst] + body
    lines += [f"  always @* assert ({cond});" for cond in lemmas]
    return "\n".join(lines + ["endmodule"]) + "\n"


def _array_rows_case(design: str, full: dict, text: str, comp, module: str, ports: list[dict]) -> dict:
    n = full["bits"]
    width = 2 * n
    masks, const = _array_rows(design, full)
    rows = comp.carry_save_rows

    def signals(state: dict) -> set:
        return {x for part in ("sum", "carry") for x in state[part].values() if isinstance(x, str)}
    names = sorted(set().union(*(signals(r) for r in rows)))
    at = {name: k for k, name in enumerate(names)}

    def vector(cols: dict, new: set) -> str:
        out = []
        for c in range(width - 1, -1, -1):
            x = cols.get(c)
            out.append("1'b0" if x is None else "1'b1" if x == 1 else f"{'o' if x in new else 'i'}[{at[x]}]")
        return "{" + ", ".join(out) + "}"

    body, lemmas, before, prev = [], [], f"{width}'d{const}", set()
    for j, state in enumerate(rows):
        now = signals(state)
        new = now - prev
        row = f"(b[{j}] ? ({{{n}'d0, a & {n}'d{masks[j]}}} << {j}) : {width}'d0)"
        body += [f"  wire [{width - 1}:0] after{j} = {vector(state['sum'], new)} + {vector(state['carry'], new)};",
                 f"  wire [{width - 1}:0] expect{j} = {before} + {row};"]
        lemmas.append(f"after{j} == expect{j}")
        before = f"{vector(state['sum'], set())} + {vector(state['carry'], set())}"
        prev = now
    body.append(f"  wire [{width - 1}:0] merged = {before};")
    lemmas.append("p == merged")
    what = {"mul-array": "sum_j b_j (a << j)", "mul-trunc": "const + the kept rows (i + j >= k)",
            "mul-bam": "the kept rows (j >= hbl, i + j >= vbl)"}[design]
    return {"property": f"{design} p == {what} for all a, b (N={n}), row by row: "
                        f"{len(rows)} carry-save row lemmas and the final adder, {len(names)} cut signals",
            "text": text, "top": module, "cuts": [(name, 1) for name in names],
            "harness": _cut_harness(module, ports, [(name, 1) for name in names], body, lemmas), "seq": False}


def _asm_lanes_case(full: dict, text: str, module: str, ports: list[dict]) -> dict:
    """asm-mul cut at its quartet terms q_j: lemma j, q_j == nz_j ? (a[idx_j] * x) << s_j : 0
    (the bank and the select, against a behavioural multiple), and the sum lemma
    p == (-1)^sign sum_j q_j << 4j mod 2^P: together golden/asm.py's w*x."""
    from golden.asm import encoded_bits, index_bits, parse_alphabet, product_bits, quartet_field_bits

    from rtl.asm import quartet_term_bits
    alpha = parse_alphabet(full["alphabet"])
    xb, wb = full["x_bits"], full["w_bits"]
    eb, ib, fb, pb = encoded_bits(alpha, wb), index_bits(alpha), quartet_field_bits(alpha), product_bits(xb, wb)
    qb, q = quartet_term_bits(xb), wb // 4
    cuts = [(f"lane.q{j}", qb) for j in range(q)]
    body, lemmas = [], []
    for j in range(q):
        idx = f"w[{j * fb + 2 + ib - 1}:{j * fb + 2}]" if ib else "1'b0"
        members = " ".join(f"{k}: m{j} = x * {v};" for k, v in enumerate(alpha))
        body += [f"  reg signed [{qb - 1}:0] m{j};",
                 f"  always @* begin case ({idx}) {members} default: m{j} = 0; endcase end",
                 f"  wire nz{j} = w[{j * fb + ib + 2}];",
                 f"  wire signed [{qb - 1}:0] want{j} = nz{j} ? (m{j} <<< w[{j * fb + 1}:{j * fb}]) : {qb}'sd0;"]
        # an index past the alphabet is no encoded word (golden/asm.py): excluded when nz
        valid = f"!nz{j} || {idx} < {len(alpha)}" if ib and (1 << ib) > len(alpha) else "1"
        lemmas.append(f"!({valid}) || o[{qb * (j + 1) - 1}:{qb * j}] == want{j}")
        body.append(f"  wire signed [{qb - 1}:0] qi{j} = i[{qb * (j + 1) - 1}:{qb * j}];")
    total = " + ".join(f"(qi{j} <<< {4 * j})" for j in range(q))
    body += [f"  wire signed [{pb - 1}:0] total = {total};",
             f"  wire signed [{pb - 1}:0] want_p = w[{eb - 1}] ? -total : total;"]
    lemmas.append("p == want_p")
    return {"property": f"asm-mul p == (-1)^sign sum_j [nz_j] (a[idx_j] x << s_j) << 4j (golden/asm.py's w*x) "
                        f"for all x and every word (w_bits={wb}, alphabet={','.join(map(str, alpha))}), "
                        f"quartet by quartet: {q} quartet lemmas and the sum",
            "text": text, "top": module, "cuts": cuts, "harness": _cut_harness(module, ports, cuts, body, lemmas),
            "seq": False}


def _row_sum_is_product_case(n: int) -> dict:
    """The row sum (the reference of the row-by-row proof) == Yosys's own a*b: SAT, N <= 8."""
    w2 = 2 * n
    text = (f"module ref_rows(input wire [{n - 1}:0] a, input wire [{n - 1}:0] b, output reg [{w2 - 1}:0] p);\n"
            f"  integer j;\n  always @* begin p = 0;\n"
            f"    for (j = 0; j < {n}; j = j + 1) if (b[j]) p = p + ({{{n}'d0, a}} << j);\n  end\nendmodule\n"
            + _mul_reference("mul-array", {"bits": n}, "product"))
    harness = (f"module ecomac_proof(input wire [{n - 1}:0] a, input wire [{n - 1}:0] b);\n"
               f"  wire [{w2 - 1}:0] rows, prod;\n  ref_rows r (.a(a), .b(b), .p(rows));\n"
               "  ref_mul m (.a(a), .b(b), .p(prod));\n  always @* assert (rows == prod);\nendmodule\n")
    return {"property": f"reference: sum_j b_j (a << j) == a*b for all a, b (N={n})", "text": text,
            "harness": harness, "seq": False}


# ---- harnesses ------------------------------------------------------------------------------
def _decl(ports, skip=()):
    return [p for p in ports if p["name"] not in skip]


def _harness(module: str, ports: list[dict], ref: str, outs: list[str], guard: str | None = None,
             clocked: bool = False) -> str:
    ins = [p for p in ports if p["direction"] == "in" and p["name"] != "clk"]
    decl = ", ".join((["input wire clk"] if clocked else []) +
                     [f"input wire {'signed ' if p.get('signed') else ''}[{p['width'] - 1}:0] {p['name']}" for p in ins])
    lines = [f"module ecomac_proof({decl});"]
    for o in outs:
        w = next(p for p in ports if p["name"] == o)
        lines.append(f"  wire [{w['width'] - 1}:0] gate_{o}, ref_{o};")
    conns = ([".clk(clk)"] if clocked else []) + [f".{p['name']}({p['name']})" for p in ins]
    gate = ", ".join(conns + [f".{o}(gate_{o})" for o in outs])
    refc = ", ".join(conns + [f".{o}(ref_{o})" for o in outs] + ([".ok(ok)"] if guard else []))
    if guard:
        lines.append("  wire ok;")
    lines.append(f"  {module} gate ({gate});")
    lines.append(f"  {ref} reference ({refc});")
    cond = " && ".join(f"gate_{o} == ref_{o}" for o in outs)
    lines.append(f"  always @* if ({guard or '1'}) assert ({cond});")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _cases(design: str, params: dict) -> list[dict]:
    """The proofs for one design point: [{property, gate_text, gate_module, ports, ref, harness, seq}]."""
    from rtl.export import generate_component
    text, sheet, comp = generate_component(design, params)
    full = sheet["parameters"]
    ports = sheet["ports"]
    out = []
    if design in ("mul-array", "mul-trunc", "mul-bam"):
        out.append(_array_rows_case(design, full, text, comp, sheet["module"], ports))
        if full["bits"] <= 8:     # small enough for SAT without cuts: the link to a*b, or the whole unit
            out.append(_row_sum_is_product_case(full["bits"]) if design == "mul-array" else
                       {"property": f"{design} p == golden product for all a, b (N={full['bits']}), whole unit",
                        "text": text + reference_verilog(design, full),
                        "harness": _harness(sheet["module"], ports, "ref_mul", ["p"]), "seq": False})
    elif design.startswith("mul-"):
        ref = reference_verilog(design, full)
        out.append({"property": f"{design} p == golden product for all a, b (N={full['bits']})",
                    "text": text + ref, "harness": _harness(sheet["module"], ports, "ref_mul", ["p"]), "seq": False})
    elif design == "asm-mul":
        out.append(_asm_lanes_case(full, text, sheet["module"], ports))
        if full["w_bits"] == 4:   # one quartet: small enough for SAT on the whole unit (8 bits: 80 s)
            out.append({"property": f"asm-mul p == x * decode(w) for all x and every decodable w "
                                    f"(w_bits={full['w_bits']}, alphabet={','.join(map(str, full['alphabet']))}), "
                                    "whole unit",
                        "text": text + reference_verilog(design, full),
                        "harness": _harness(sheet["module"], ports, "ref_asm", ["p"], guard="ok"), "seq": False})
    elif design == "luq-quant":
        if full["rng"] != "input":
            raise ValueError("luq-quant is proven with rng=input (every random word a free input); its LFSR "
                             "stream is simulated (cocotb_tests/test_luq.py)")
        out.append({"property": f"luq-quant code == golden luq_fixed for every x, kmax, r (E={full['exp_bits']}, "
                                f"in_bits={full['in_bits']}, rand_bits={full['rand_bits']})",
                    "text": text + reference_verilog(design, full),
                    "harness": _harness(sheet["module"], ports, "ref_luq", ["code"]), "seq": False})
    elif design in ("mfmac-pe", "int-mac"):
        if design == "mfmac-pe":
            from amaranth.back import verilog as averilog

            from rtl.pot import PotProduct
            e = full["exp_bits"]
            comp = PotProduct(e)
            ptext = averilog.convert(comp, name="pot_product", emit_src=False)
            pports = [{"name": "x", "direction": "in", "width": e + 1}, {"name": "w", "direction": "in", "width": e + 1},
                      {"name": "sign", "direction": "out", "width": 1},
                      {"name": "mag", "direction": "out", "width": len(comp.mag)}]
            out.append({"property": f"PoT product (sign, one-hot magnitude) == behavioural shift (E={e})",
                        "text": ptext + reference_verilog(design, full, "product"),
                        "harness": _harness("pot_product", pports, "ref_pot", ["sign", "mag"]), "seq": False})
        ref = reference_verilog(design, full)
        mac_ports = [p for p in ports if p["name"] != "clk"]
        what = "pipelined " if full.get("pipeline") else ""
        out.append({"property": f"{what}{design} acc == behavioural MAC for every input sequence from reset "
                                f"({', '.join(f'{k}={v}' for k, v in full.items())})",
                    "text": text + ref, "harness": _harness(sheet["module"], mac_ports, "ref_mac", ["acc"], clocked=True),
                    "seq": True})
    else:
        raise ValueError(f"no formal proof for {design} (provable: {', '.join(PROVABLE)})")
    return out, full


_INPUT_RE = re.compile(r"^\s*(?:\d+|-)?\s*\\(\w+)\s+(-?\d+|x+)\s+\S+\s+\S+\s*$", re.M)


def _run_case(case: dict, timeout: float) -> dict:
    if case["seq"]:
        sat = "sat -verify -tempinduct -prove-asserts -set-init-zero -seq 1 -maxsteps 8 -show-inputs ecomac_proof\n"
    else:
        sat = "sat -verify -prove-asserts -show-inputs ecomac_proof\n"
    cut = ""
    if case.get("cuts"):
        # cut the design (flattened, so submodule signals are reachable) before the harness sees it;
        # a name that is no cell-driven wire leaves its port missing and `hierarchy -check` fails
        cut = (f"hierarchy -top {case['top']}\nproc\nflatten\ninsbuf\n"
               f"expose -cut -sep __ {' '.join('w:' + name for name, _ in case['cuts'])}\n")
    script = ("read_verilog -sv design.v\n" + cut + "read_verilog -formal -sv harness.v\n"
              "hierarchy -check -top ecomac_proof\nproc\nchformal -lower\nflatten\nmemory\nopt -fast\nopt_clean\n" + sat)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ecomac-prove-") as d:
        Path(d, "design.v").write_text(case["text"])
        Path(d, "harness.v").write_text(case["harness"])
        Path(d, "script.ys").write_text(script)
        try:
            proc = run_tool(_yosys_cmd() + ["-l", "yosys.log", "-s", "script.ys"], what="yosys sat", timeout=timeout,
                            cwd=d)
        except ToolTimeout:
            return {"property": case["property"], "result": "undecided", "time_s": round(time.monotonic() - t0, 2),
                    "note": f"the SAT solver did not finish within {timeout:g} s"}
        try:
            log = Path(d, "yosys.log").read_text()
        except OSError:
            log = proc.stdout + proc.stderr
    dt = round(time.monotonic() - t0, 2)
    if proc.returncode == 0 and re.search(r"SUCCESS!", log):
        return {"property": case["property"], "result": "proven", "time_s": dt}
    if re.search(r"model found: FAIL!|FAIL!", log):
        inputs = {}
        for m in _INPUT_RE.finditer(log):
            name = m.group(1)
            if name.startswith("gate_") or name.startswith("ref_"):
                continue
            inputs.setdefault(name, m.group(2))
        out = {"property": case["property"], "result": "counterexample", "time_s": dt, "inputs": inputs}
        if case.get("cuts"):
            out["note"] = ("a lemma failed for these operands and some state `i` of the cut signals (the state "
                           "may be unreachable): simulate the unit at these operands to see whether p is wrong")
        return out
    err = re.search(r"ERROR:\s*(.*)", log)
    raise SynthError(f"the proof of {case['property']} did not run: "
                     f"{err.group(1).strip() if err else f'yosys exit {proc.returncode}'}")


def prove(design: str, params: dict | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> dict:
    """Prove `design` against its behavioural reference(s); cached by design, parameters and
    the Verilog. {design, params, result: proven|counterexample|undecided, proofs: [...], time_s}"""
    if design not in PROVABLE:
        raise ValueError(f"no formal proof for {design} (provable: {', '.join(PROVABLE)})")
    cases, full = _cases(design, params or {})
    k = cache.key("prove", PROVE_VERSION, design, *(c["text"] + c["harness"] for c in cases))
    hit = cache.load("prove", k)
    if hit is not None:
        return hit
    proofs = [_run_case(c, timeout) for c in cases]
    order = ("counterexample", "undecided", "proven")
    result = next(r for r in order if any(p["result"] == r for p in proofs))
    res = {"design": design, "params": full, "result": result, "proofs": proofs,
           "time_s": round(sum(p["time_s"] for p in proofs), 2)}
    if result != "undecided":
        cache.store("prove", k, res)
    return res


def suite() -> list[tuple[str, dict]]:
    """`make prove`: every exact unit at the widths simulation cannot enumerate, the PoT product
    at E = 1..5 (inside the MF-MAC proofs), and each approximate family at N = 8 and N = 12
    (the array-cut families, proven row by row, at N = 16 too)."""
    pts = [("mul-array", {"bits": n}) for n in (8, 12, 16)] + [("mul-exact", {"bits": 16})]
    pts += [("int-mac", {}), ("int-mac", {"bits": 16, "acc_bits": 40})]
    pts += [("asm-mul", {"w_bits": w}) for w in (4, 8, 12)]
    pts += [("mfmac-pe", {"exp_bits": e, "acc_bits": max(24, 2 * ((1 << e) - 2) + 2)}) for e in range(1, 6)]
    pts += [("mfmac-pe", {"pipeline": True}), ("mfmac-pe", {"pipeline": 2})]
    for n in (8, 12):
        pts += [("mul-trunc", {"bits": n, "k": n, "correction": True}), ("mul-bam", {"bits": n, "vbl": n - 2, "hbl": 2}),
                ("mul-drum", {"bits": n, "k": n // 2}), ("mul-mitchell", {"bits": n, "frac_bits": n - 1})]
    pts += [("mul-trunc", {"bits": 16, "k": 16, "correction": True}), ("mul-bam", {"bits": 16, "vbl": 14, "hbl": 2})]
    pts += [("luq-quant", {"rng": "input"}), ("luq-quant", {"rng": "input", "exp_bits": 4, "in_bits": 32})]
    return pts
