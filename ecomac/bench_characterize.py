"""`make bench` figures for issue 14: the time to characterize an 8x8 multiplier netlist that
assigns a 2,048-bit wire bit by bit (synth/characterize.py: gate netlist bit-parallel plus an
Icarus cross-check on a sample; median of _RUNS runs, each with an empty cache), against
exhaustive Icarus simulation of the same file (the former method) measured in the same run;
and the time of formal proofs (synth/prove.py), each with an empty cache, as a ratio to the
smallest proof (the PoT product at E = 1)."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path


class _EmptyCache:
    def __enter__(self):
        self.old = os.environ.get("ECOMAC_CACHE")
        self.dir = tempfile.TemporaryDirectory(prefix="ecomac-bench-")
        os.environ["ECOMAC_CACHE"] = self.dir.name
        return self

    def __exit__(self, *exc):
        if self.old is None:
            os.environ.pop("ECOMAC_CACHE", None)
        else:
            os.environ["ECOMAC_CACHE"] = self.old
        self.dir.cleanup()
        return False


_RUNS = 3           # characterize runs (each from an empty cache); the median is the figure
_TIMED_PAIRS = 16   # Icarus on this many pairs, scaled to all 65,536 (exhaustive takes hours here)
_TB = """module tb; reg [7:0] a, b; wire [15:0] p; integer i, fd;
wide_mul dut(.a(a), .b(b), .p(p));
initial begin fd = $fopen("t.hex", "w");
  for (i = 0; i < %d; i = i + 1) begin a = i * 37; b = i * 101 + 3; #1 $fwrite(fd, "%%h\\n", p); end
  $fclose(fd); $finish; end
endmodule
""" % _TIMED_PAIRS


def _characterize_wide() -> dict:
    from synth.characterize import bit_by_bit_netlist, characterize_verilog
    from synth.proc import run_tool
    text = bit_by_bit_netlist(8, 2048)
    out = {"netlist": "8x8 exact multiplier, wire [2047:0] assigned bit by bit", "verilog_lines": text.count("\n")}
    with tempfile.TemporaryDirectory(prefix="ecomac-bench-wide-") as d:
        f = Path(d, "wide.v")
        f.write_text(text)
        runs = []
        for _ in range(_RUNS):
            with _EmptyCache():
                t0 = time.perf_counter()
                r = characterize_verilog([f])
                runs.append(round(time.perf_counter() - t0, 2))
        out["characterize_s"] = sorted(runs)[len(runs) // 2]
        out["characterize_runs_s"] = runs
        out["exact"] = r["ep_pct"] == 0
        if shutil.which("iverilog"):
            Path(d, "tb.v").write_text(_TB)
            t0 = time.perf_counter()
            run_tool(["iverilog", "-g2012", "-o", "sim.vvp", "-s", "tb", "tb.v", "wide.v"], what="iverilog", cwd=d)
            run_tool(["vvp", "-n", "sim.vvp"], what="vvp", cwd=d)
            dt = time.perf_counter() - t0
            out["icarus_pairs_timed"] = _TIMED_PAIRS
            out["icarus_exhaustive_estimate_s"] = round(dt * 65536 / _TIMED_PAIRS, 1)
            out["speedup_vs_icarus_estimate"] = round(out["icarus_exhaustive_estimate_s"] / out["characterize_s"], 1)
        out["icarus_checked_pairs"] = r["icarus_checked_pairs"]
        out["icarus_reading_checked_pairs"] = r["icarus_reading_checked_pairs"]
    return out


_PROOFS = [("mfmac-pe", {"exp_bits": 1, "acc_bits": 4}), ("mfmac-pe", {"exp_bits": 5, "acc_bits": 64}),
           ("mfmac-pe", {"pipeline": True}), ("int-mac", {}), ("mul-trunc", {"bits": 8, "k": 8, "correction": True}),
           ("mul-drum", {"bits": 8, "k": 4}), ("mul-mitchell", {"bits": 8, "frac_bits": 7}),
           ("mul-bam", {"bits": 8, "vbl": 6, "hbl": 2}), ("asm-mul", {})]


def _proof_times() -> dict:
    from synth.prove import prove
    out = {}
    with _EmptyCache():
        for name, params in _PROOFS:
            r = prove(name, params, timeout=600)
            key = name + "".join(f" {k}={v}" for k, v in params.items())
            out[key] = {"result": r["result"], "seconds": r["time_s"]}
    base = next(iter(out.values()))["seconds"]
    for v in out.values():
        v["ratio_to_smallest"] = round(v["seconds"] / base, 2) if base else None
    return out


def run(outdir) -> dict:
    del outdir
    return {"characterize_wide_netlist": _characterize_wide(), "proofs": _proof_times()}


if __name__ == "__main__":
    import json
    print(json.dumps(run(None), indent=2))
