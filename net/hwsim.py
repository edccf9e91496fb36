"""A whole network on the generated hardware, bit for bit (what `ecomac nn hwsim` runs).

    run(model, ds, spec, samples=None, engine="gates", array=(4, 4), batch=1, ...) -> result dict
    HwMismatch                                   the first product whose hardware result differs

Method. The model is converted exactly as `nn eval` converts it (net.layers.convert, per-channel
weights, activation scales calibrated on `calib_size` training samples drawn with `seed`), then
the first `samples` test samples run twice:
  1. the emulator (nn eval's run): logits and predictions;
  2. the hardware: every product an emulated layer computes (net.kernels.matmul / conv2d, the
     latter as im2col patches x the reshaped weights) goes to the datapath's array
     (synth.hwsim: the gate netlist, or the Verilog under cocotb), while everything between
     products — quantizing activations, scaling the accumulations, bias, activations, pooling —
     stays on the host, computed by the emulator's own code from the HARDWARE's accumulations.
     Each product's accumulations are compared with the emulator kernel's on the same codes
     (`last_accumulations`) before the host goes on; the first difference stops the run with
     the layer, tile, sample and values. At the end every logit and prediction of run 2 is
     compared with run 1's.
Mapping: a product of one inference is rows x K codes times K x N codes (linear: one row per
sample; conv: one row per output position); `batch` samples are stacked into the rows of one
product (batch 1: one inference at a time). Cycles per inference = the array's cycles for one
batch / batch; utilization = MACs / (cycles x R x C).
Energy per inference: the array's activity-mode energy on the toggles of the real operand stream
(synth.hwsim, idle PEs of edge tiles included) beside the random-operand figure nn eval gives
(synth.network.net_energy: MACs x the unit's per-MAC energy on Gaussian random operands, for asm
on the same asm-pe-row lanes=C the array is built of): energy_pj_real_data and
energy_pj_random_operands are that arithmetic energy. Memory traffic is the same model in both (it
does not depend on the values): memory_pj, and total_pj_* = arithmetic + memory (total_pj_random_operands
is nn eval's energy_pj).
"""
from __future__ import annotations

import contextlib
import time

import numpy as np
import torch

from . import evaluate, layers
from . import kernels as _kernels
from .datapath import parse

__all__ = ["run", "HwMismatch", "energy_spec"]


class HwMismatch(Exception):
    """A hardware accumulation (or logit) differs from the emulator's."""

    def __init__(self, info: dict):
        self.info = info
        super().__init__(info["message"])


def energy_spec(dp, array) -> str:
    """The spec whose random-operand energy prices the same unit the array uses (asm: lanes=C)."""
    if dp.kind != "asm":
        return dp.spec
    items = [s for s in dp.canonical.split(",") if not s.startswith("lanes=")]
    return ",".join(items + [f"lanes={array.cols}"])


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().cpu()) if isinstance(t, torch.Tensor) else np.asarray(t)


class _Products:
    """Stands in for net.kernels inside net.layers while the hardware runs: matmul and conv2d
    go to the engine (and are checked against the real kernels); anything else passes through."""

    def __init__(self, engine, dp, batch: int, progress=None):
        self.engine, self.dp, self.batch, self.progress = engine, dp, batch, progress
        self.done = 0
        self.layer = None               # set by a forward pre-hook
        self.samples = 0                # samples of the current chunk
        self.first = 0                  # index of the chunk's first sample
        self.rows: dict = {}            # per layer: statistics

    def __getattr__(self, name):
        return getattr(_kernels, name)

    def matmul(self, datapath, X, W, **kw):
        ref = _kernels.matmul(datapath, X, W, **kw)
        Y = self._run(_np(X), _np(W), _np(ref), kind="linear")
        return torch.from_numpy(Y) if isinstance(ref, torch.Tensor) else Y

    def conv2d(self, datapath, X, W, stride=1, padding=0, **kw):
        ref = _kernels.conv2d(datapath, X, W, stride, padding, **kw)
        Xn, Wn, refn = _np(X), _np(W), _np(ref)
        if kw.get("groups", 1) != 1 or kw.get("dilation", 1) not in (1, (1, 1)):
            raise ValueError(f"hwsim: layer {self.layer}: grouped or dilated convolutions are not mapped "
                             f"onto the array yet")
        N, cout, Ho, Wo = refn.shape
        cout, _, kh, kw_ = Wn.shape
        cols = _kernels.im2col(Xn, kh, kw_, stride, padding)            # rows (n, ho, wo)
        flat_ref = refn.transpose(0, 2, 3, 1).reshape(-1, cout)
        Y = self._run(cols, Wn.reshape(cout, -1).T, flat_ref, kind="conv")
        Y = Y.reshape(N, Ho, Wo, cout).transpose(0, 3, 1, 2)
        return torch.from_numpy(np.ascontiguousarray(Y)) if isinstance(ref, torch.Tensor) else Y

    def _run(self, X, W, ref, kind: str) -> np.ndarray:
        if X.ndim != 2 or W.ndim != 2:
            raise ValueError(f"hwsim: layer {self.layer}: a product of {X.shape} by {W.shape} codes is not mapped "
                             f"onto the array (only M x K . K x N products)")
        S, B = self.samples, self.batch
        M, K = X.shape
        N = W.shape[1]
        if S < 1 or M % S:
            raise ValueError(f"hwsim: layer {self.layer}: a product of {M} rows for {S} samples")
        P = M // S
        G = -(-S // B)
        Xg = np.zeros((G * B, P, K), np.int64)
        Xg[:S] = X.reshape(S, P, K)
        st = self.engine.stats
        before = (st.units(), st.cycles, st.sim_s)
        Y = self.engine.product(Xg.reshape(G, B * P, K), W).reshape(G * B, P, N)[:S].reshape(M, N)
        row = self.rows.setdefault(self.layer, {"layer": self.layer, "kind": kind, "rows_per_sample": P, "K": K,
                                                "N": N, "calls": 0, "samples": 0, "macs": 0, "cycles": 0,
                                                "compared_accumulations": 0, "mismatched_accumulations": 0,
                                                "units": 0.0, "sim_s": 0.0})
        row["calls"] += 1
        row["samples"] += S
        row["macs"] += M * K * N
        row["cycles"] += st.cycles - before[1]
        row["units"] += st.units() - before[0]
        row["sim_s"] += st.sim_s - before[2]
        row["compared_accumulations"] += M * N
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, f"{self.layer} ({self.first + S} samples)")
        bad = np.argwhere(Y != ref)
        if bad.size:
            row["mismatched_accumulations"] += len(bad)
            m, n = (int(v) for v in bad[0])
            s, p = divmod(m, P)
            g, b = divmod(s, B)
            r = b * P + p                       # the row within the lane group's product
            R, C = self.engine.array.rows, self.engine.array.cols
            info = {"layer": self.layer, "sample": self.first + s, "position": p, "output": n,
                    "tile": [r // R, n // C], "pe": [r % R, n % C], "hardware": int(Y[m, n]),
                    "emulator": int(ref[m, n]), "mismatched_accumulations": int(len(bad)),
                    "compared_accumulations": int(M * N)}
            info["message"] = (f"layer {self.layer}: {len(bad)} of {M * N} accumulations differ; first at test "
                               f"sample {info['sample']}, output position {p}, output {n} (tile {r // R},{n // C}, "
                               f"PE {r % R},{n % C}): hardware {info['hardware']}, emulator {info['emulator']}")
            raise HwMismatch(info)
        return Y


@contextlib.contextmanager
def _on_hardware(q, products: _Products):
    """Inside: every emulated layer of q computes its products through `products`."""
    emu = layers.emulated_layers(q)
    hooks = [m.register_forward_pre_hook(lambda mod, args, name=name: setattr(products, "layer", name))
             for name, m in emu.items()]
    saved = layers.kernels
    layers.kernels = products
    try:
        yield
    finally:
        layers.kernels = saved
        for h in hooks:
            h.remove()


def _forward(q, x: np.ndarray, chunk: int, on_chunk=None) -> np.ndarray:
    out = []
    q.eval()
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            xb = x[i:i + chunk]
            if on_chunk is not None:
                on_chunk(i, len(xb))
            out.append(_np(q(torch.from_numpy(np.ascontiguousarray(xb, np.float32)))).astype(np.float32))
    return np.concatenate(out)


def run(model, ds, spec: str, *, samples: int | None = None, engine: str = "gates", array=(4, 4), batch: int = 1,
        meta: dict | None = None, calib_size: int = 512, seed: int = 0, chunk: int = 512, netlist: dict | None = None,
        progress=None) -> dict:
    """Run the first `samples` test samples of `ds` through `model` on `spec`'s hardware (see the
    module docstring). netlist: the unit's gate netlist to use instead of the synthesized one (the
    fault test). progress(done, total, note): called after every product on the hardware (total: the
    emulated layers x the chunks of `chunk` samples). Raises HwMismatch at the
    first difference (its .info, plus .result: what was measured up to there)."""
    from synth import hwsim
    dp = parse(spec)
    if dp.is_float:
        raise ValueError("hwsim runs an integer datapath's hardware; fp32 has no array here")
    arr = hwsim.array_for(dp, *array)
    if engine not in hwsim.ENGINES:
        raise ValueError(f"engine must be one of {', '.join(hwsim.ENGINES)}, got {engine!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    evaluate.check_fit(model, ds, meta)
    n_test = len(ds.y_test)
    samples = n_test if samples is None else samples
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= n_test:
        raise ValueError(f"samples must be 1..{n_test} (the test split of {ds.name}), got {samples!r}")
    chunk = max(batch, chunk // batch * batch)       # a chunk holds whole batches
    x, y = ds.x_test[:samples], np.asarray(ds.y_test[:samples])
    q = layers.convert(model, spec, calib=evaluate.calibration_batch(ds, calib_size, seed))
    _forward(q, x[:1], chunk)                  # warm-up: the kernels' plans are built once, outside the timing
    t0 = time.perf_counter()
    logits_emu = _forward(q, x, chunk)
    emu_s = time.perf_counter() - t0
    eng = hwsim.engine(engine, arr, netlist)
    total = len(layers.emulated_layers(q)) * -(-samples // chunk)
    products = _Products(eng, dp, batch, None if progress is None else
                         lambda done, note: progress(min(done, total), total, note))

    def on_chunk(i, n):
        products.first, products.samples = i, n
    t0 = time.perf_counter()
    result = {"model_layers": list(layers.emulated_layers(q)), "engine": engine, "datapath": spec,
              "array": f"{arr.rows}x{arr.cols}", "hardware": arr.description, "unit": arr.unit.design,
              "samples": samples, "batch": batch}
    try:
        with _on_hardware(q, products):
            logits_hw = _forward(q, x, chunk, on_chunk)
    except HwMismatch as e:
        result.update(_summary(products, eng, samples, batch, arr, emu_s, time.perf_counter() - t0))
        result.update(mismatch=e.info, mismatched_accumulations=e.info["mismatched_accumulations"])
        e.result = result
        raise
    hw_s = time.perf_counter() - t0
    missing = [n for n in result["model_layers"] if n not in products.rows]
    if missing:
        raise RuntimeError(f"hwsim: the products of layer(s) {', '.join(missing)} did not reach the hardware "
                           f"(net.layers no longer calls net.kernels.matmul/conv2d)")
    result.update(_summary(products, eng, samples, batch, arr, emu_s, hw_s))
    bad_logits = int(np.count_nonzero(logits_hw != logits_emu))
    pred_hw, pred_emu = logits_hw.argmax(-1), logits_emu.argmax(-1)
    result.update(mismatched_logits=bad_logits, compared_logits=int(logits_hw.size),
                  mismatched_predictions=int(np.count_nonzero(pred_hw != pred_emu)),
                  accuracy_pct=100.0 * int(np.sum(pred_hw == y)) / len(y),       # as evaluate.accuracy
                  emulator_accuracy_pct=100.0 * int(np.sum(pred_emu == y)) / len(y))
    result.update(_energy(model, ds, dp, arr, result))
    if bad_logits:
        i = int(np.argwhere(logits_hw != logits_emu)[0][0])
        info = {"layer": "logits", "sample": i, "message": f"logits of test sample {i} differ: hardware "
                f"{logits_hw[i].tolist()}, emulator {logits_emu[i].tolist()}"}
        result["mismatch"] = info
        err = HwMismatch(info)
        err.result = result
        raise err
    return result


def _summary(products: _Products, eng, samples: int, batch: int, arr, emu_s: float, hw_s: float) -> dict:
    from synth.hwsim import energy_pj
    from synth.energy import calibration
    pj_unit = calibration("activity")["pj_per_unit"] if eng.name == "gates" else None
    rows = []
    for r in products.rows.values():
        groups = -(-r["samples"] // batch)
        cyc = r["cycles"] / max(1, r["calls"]) / batch          # per inference (each call: one chunk)
        per_inf_macs = r["macs"] / r["samples"]
        rows.append({"layer": r["layer"], "kind": r["kind"], "product": f"{r['rows_per_sample']}x{r['K']} . "
                     f"{r['K']}x{r['N']}", "macs_per_inference": int(per_inf_macs),
                     "cycles_per_inference": cyc,
                     "utilization_pct": 100.0 * per_inf_macs / (cyc * arr.rows * arr.cols) if cyc else 0.0,
                     "compared_accumulations": r["compared_accumulations"],
                     "mismatched_accumulations": r["mismatched_accumulations"],
                     "energy_pj_real_data": pj_unit * r["units"] / r["samples"] if pj_unit else None,
                     "sim_s": r["sim_s"], "groups": groups})
    cycles = sum(r["cycles_per_inference"] for r in rows)
    macs = sum(r["macs_per_inference"] for r in rows)
    st = eng.stats
    return {"layers": rows, "compared_accumulations": sum(r["compared_accumulations"] for r in rows),
            "mismatched_accumulations": sum(r["mismatched_accumulations"] for r in rows),
            "cycles_per_inference": cycles, "macs_per_inference": macs,
            "utilization_pct": 100.0 * macs / (cycles * arr.rows * arr.cols) if cycles else 0.0,
            "arithmetic_pj_real_data": energy_pj(st) / samples if pj_unit else None,     # the array's energy
            "simulated_macs": st.macs, "sim_s": st.sim_s, "hardware_s": hw_s, "emulator_s": emu_s,
            "simulated_macs_per_s": st.macs / st.sim_s if st.sim_s else None,
            "emulator_macs_per_s": st.macs / emu_s if emu_s else None,
            "slowdown_vs_emulator": hw_s / emu_s if emu_s else None}


def _energy(model, ds, dp, arr, result: dict) -> dict:
    """The random-operand figure (nn eval's) per layer and in total, beside the real-data one."""
    from synth.network import net_energy
    net = evaluate.model_net(model, ds.input_shape, getattr(ds, "name", "model"))
    espec = energy_spec(dp, arr)
    rnd = net_energy(net, espec)
    by_name = {r["name"]: r for r in rnd["layers"]}
    for row in result["layers"]:
        e = by_name.get(row["layer"])
        row["energy_pj_random_operands"] = e["arithmetic_pj"] if e else None
        if e and row["energy_pj_real_data"] is not None and e["arithmetic_pj"]:
            row["real_over_random"] = row["energy_pj_real_data"] / e["arithmetic_pj"]
    real = result.get("arithmetic_pj_real_data")
    out = {"energy_spec": espec, "energy_pj_real_data": real, "energy_pj_random_operands": rnd["arithmetic_pj"],
           "memory_pj": rnd["memory_pj"], "total_pj_random_operands": rnd["energy_pj"],
           "total_pj_real_data": real + rnd["memory_pj"] if real is not None else None,
           "random_mac_pj": rnd["per_mac"]["mac_pj"]}
    if real is not None and rnd["arithmetic_pj"]:
        out["energy_real_over_random"] = real / rnd["arithmetic_pj"]
    return out
