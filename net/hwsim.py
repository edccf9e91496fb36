"""A whole network on the generated hardware, bit for bit (what `ecomac nn hwsim` runs).

    run(model, ds, spec, samples=None, engine="gates", array=(4, 4), batch=1, ...) -> result dict
    HwMismatch                                   the first product whose hardware result differs

Method. The model is prepared and converted exactly as `nn eval` does it (net.evaluate.prepare: every
product lifted to a module, BatchNorm folded; net.graph.convert: per-channel weights, activation
scales calibrated on `calib_size` training samples drawn with `seed`), then the first `samples` test
samples run twice:
  1. the emulator (nn eval's run): logits and predictions;
  2. the hardware: every product an emulated layer computes (net.kernels.matmul; conv2d as im2col
     patches x the reshaped weights, one product per group; bmm, activation x activation, one
     product per batch element) goes to the datapath's array
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
(MACs x the unit's per-MAC energy on Gaussian random operands, synth.network.mac_energy, as
net_energy prices a layer; for asm on the same asm-pe-row lanes=C the array is built of): energy_pj_real_data and
energy_pj_random_operands are that arithmetic energy. Memory traffic is the same model in both (it
does not depend on the values): memory_pj, and total_pj_* = arithmetic + memory (total_pj_random_operands
is nn eval's energy_pj).
"""
from __future__ import annotations

import contextlib
import time

import numpy as np
import torch

from . import evaluate, graph, layers
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
    """Stands in for net.kernels inside net.layers while the hardware runs: matmul, conv2d and bmm
    go to the engine (each checked against the real kernel on the same codes); anything else
    passes through to net.kernels."""

    def __init__(self, engine, dp, batch: int, progress=None):
        self.engine, self.dp, self.batch, self.progress = engine, dp, batch, progress
        self.done = 0
        self.layer = None               # set by a forward pre-hook
        self.samples = 0                # samples of the current chunk
        self.first = 0                  # index of the chunk's first sample
        self.rows: dict = {}            # per layer: statistics

    def __getattr__(self, name):
        return getattr(_kernels, name)

    # ---- the kernels' interface ----------------------------------------------------------------
    def matmul(self, datapath, X, W, **kw):
        ref = _kernels.matmul(datapath, X, W, **kw)
        Xn, Wn, refn = _np(X), _np(W), _np(ref)
        self._shape_check(Xn, Wn, 2)
        Y = self._stacked("linear", [(Xn, Wn, refn)], Xn.shape[1], Wn.shape[1])[0]
        return _like(Y, ref)

    def conv2d(self, datapath, X, W, stride=1, padding=0, dilation=1, groups=1, **kw):
        ref = _kernels.conv2d(datapath, X, W, stride, padding, dilation, groups, **kw)
        Xn, Wn, refn = _np(X), _np(W), _np(ref)
        N, cout, Ho, Wo = refn.shape
        _, cg, kh, kw_ = Wn.shape
        cols = _np(_kernels.im2col(Xn, kh, kw_, stride, padding, dilation=dilation))   # rows (n, ho, wo)
        flat_ref = refn.transpose(0, 2, 3, 1).reshape(-1, cout)
        og = cout // groups                 # each group: its own product (patches of its channels)
        parts = [(cols[:, g * cg * kh * kw_:(g + 1) * cg * kh * kw_], Wn[g * og:(g + 1) * og].reshape(og, -1).T,
                  flat_ref[:, g * og:(g + 1) * og]) for g in range(groups)]
        Ys = self._stacked("conv" if groups == 1 else f"conv groups={groups}", parts, cg * kh * kw_, og)
        Y = np.concatenate(Ys, axis=1).reshape(N, Ho, Wo, cout).transpose(0, 3, 1, 2)
        return _like(np.ascontiguousarray(Y), ref)

    def bmm(self, datapath, A, B, **kw):
        """Batched activation x activation products: each batch element its own product (own
        right operand), the elements of one sample one after another on the array."""
        ref = _kernels.bmm(datapath, A, B, **kw)
        refn = _np(ref)
        batch = refn.shape[:-2]
        An = np.broadcast_to(_np(A), batch + _np(A).shape[-2:]).reshape(-1, *_np(A).shape[-2:])
        Bn = np.broadcast_to(_np(B), batch + _np(B).shape[-2:]).reshape(-1, *_np(B).shape[-2:])
        Y = self._batched(An, Bn, refn.reshape(-1, *refn.shape[-2:]))
        return _like(Y.reshape(refn.shape), ref)

    # ---- mapping onto the array -------------------------------------------------------------------
    def _shape_check(self, X, W, nd):
        if X.ndim != nd or W.ndim != nd:
            raise ValueError(f"hwsim: layer {self.layer}: a product of {X.shape} by {W.shape} codes is not mapped "
                             f"onto the array")

    def _row(self, kind, K, N, P):
        return self.rows.setdefault(self.layer, {
            "layer": self.layer, "kind": kind, "product": f"{P}x{K} . {K}x{N}", "calls": 0, "chunks": {},
            "macs": 0, "cycles_x_samples": 0.0, "compared_accumulations": 0, "mismatched_accumulations": 0,
            "units": 0.0, "sim_s": 0.0})

    def _submit(self, X, W):
        """One engine product; returns (Y, cycles per lane group, energy units, seconds)."""
        st = self.engine.stats
        before = (st.units(), st.cycles, st.sim_s)
        Y = self.engine.product(X, W)
        return Y, st.cycles - before[1], st.units() - before[0], st.sim_s - before[2]

    def _stacked(self, kind, parts, K, N):
        """Products X (S*P x K) . W (K x N) sharing W, one per part (a conv group): `batch` samples'
        rows stacked into one product per lane group."""
        S, B = self.samples, self.batch
        M = parts[0][0].shape[0]
        if S < 1 or M % S:
            raise ValueError(f"hwsim: layer {self.layer}: a product of {M} rows for {S} samples")
        P = M // S
        G = -(-S // B)
        row = self._row(kind, K, N * len(parts), P)
        out = []
        for X, W, ref in parts:
            Xg = np.zeros((G * B, P, K), np.int64)
            Xg[:S] = X.reshape(S, P, K)
            Y, cyc, units, secs = self._submit(Xg.reshape(G, B * P, K), W)
            Y = Y.reshape(G * B, P, N)[:S].reshape(M, N)
            self._account(row, S, M * K * N, M * N, cyc / B, units, secs)
            self._compare(row, Y, ref, lambda m, n: self._where_stacked(m, n, P, B))
            out.append(Y)
        self._step()
        return out

    def _batched(self, A, Bm, ref):
        S = self.samples
        Bt, M, K = A.shape
        N = Bm.shape[2]
        if S < 1 or Bt % S:
            raise ValueError(f"hwsim: layer {self.layer}: {Bt} batched products for {S} samples")
        E = Bt // S                          # products per sample, one after another on the array
        row = self._row("matmul (batched)", K, N, M)
        Y, cyc, units, secs = self._submit(A, Bm)
        self._account(row, S, Bt * M * K * N, Bt * M * N, cyc * E, units, secs)
        R, C = self.engine.array.rows, self.engine.array.cols

        def where(i, n):
            b, m = divmod(i, M)
            s, e = divmod(b, E)
            return s, f"product {e}, row {m}", [m // R, n // C], [m % R, n % C]
        self._compare(row, Y.reshape(Bt * M, N), ref.reshape(Bt * M, N), where)
        self._step()
        return Y

    def _where_stacked(self, m, n, P, B):
        s, p = divmod(m, P)
        r = (s % B) * P + p                  # the row within the lane group's product
        R, C = self.engine.array.rows, self.engine.array.cols
        return s, f"output position {p}", [r // R, n // C], [r % R, n % C]

    def _account(self, row, S, macs, outputs, cycles_per_inference, units, secs):
        row["calls"] += 1
        row["macs"] += macs
        row["cycles_x_samples"] += cycles_per_inference * S
        row["units"] += units
        row["sim_s"] += secs
        row["compared_accumulations"] += outputs
        row["chunks"][self.first] = S            # samples per chunk, once however often the layer ran

    def _step(self):
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, f"{self.layer} ({self.first + self.samples} samples)")

    def _compare(self, row, Y, ref, where):
        bad = np.argwhere(Y != ref)
        if not bad.size:
            return
        row["mismatched_accumulations"] += len(bad)
        m, n = (int(v) for v in bad[0])
        s, pos, tile, pe = where(m, n)
        info = {"layer": self.layer, "sample": self.first + s, "position": pos, "output": n, "tile": tile, "pe": pe,
                "hardware": int(Y[m, n]), "emulator": int(ref[m, n]), "mismatched_accumulations": int(len(bad)),
                "compared_accumulations": int(Y.size)}
        info["message"] = (f"layer {self.layer}: {len(bad)} of {Y.size} accumulations differ; first at test sample "
                           f"{info['sample']}, {pos}, output {n} (tile {tile[0]},{tile[1]}, PE {pe[0]},{pe[1]}): "
                           f"hardware {info['hardware']}, emulator {info['emulator']}")
        raise HwMismatch(info)


def _like(Y: np.ndarray, ref):
    """The engine's result in the type the kernel returned (a tensor on the kernel's device)."""
    if isinstance(ref, torch.Tensor):
        return torch.from_numpy(np.ascontiguousarray(Y)).to(ref.device)
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
        timed: bool = False, progress=None) -> dict:
    """Run the first `samples` test samples of `ds` through `model` on `spec`'s hardware (see the
    module docstring). timed: also the timed-mode energy (unit delays, glitches included; gates engine).
    netlist: the unit's gate netlist to use instead of the synthesized one (the
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
    model = evaluate.prepare(model, ds, meta)          # nn eval's canonical model
    n_test = len(ds.y_test)
    samples = n_test if samples is None else samples
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= n_test:
        raise ValueError(f"samples must be 1..{n_test} (the test split of {ds.name}), got {samples!r}")
    chunk = max(batch, chunk // batch * batch)       # a chunk holds whole batches
    x, y = ds.x_test[:samples], np.asarray(ds.y_test[:samples])
    q = graph.convert(model, spec, calib=evaluate.calibration_batch(ds, calib_size, seed))
    _forward(q, x[:1], chunk)                  # warm-up: the kernels' plans are built once, outside the timing
    t0 = time.perf_counter()
    logits_emu = _forward(q, x, chunk)
    emu_s = time.perf_counter() - t0
    eng = hwsim.engine(engine, arr, netlist, timed)
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
                           f"(net.layers no longer calls net.kernels.matmul/conv2d/bmm)")
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
    from synth.energy import calibration
    from synth.hwsim import energy_pj
    pj_unit = calibration("activity")["pj_per_unit"] if eng.name == "gates" else None
    rows = []
    for r in products.rows.values():
        n = sum(r["chunks"].values()) or 1          # samples this layer ran
        cyc = r["cycles_x_samples"] / n
        per_inf_macs = r["macs"] / n
        rows.append({"layer": r["layer"], "kind": r["kind"], "product": r["product"],
                     "macs_per_inference": int(round(per_inf_macs)), "cycles_per_inference": cyc,
                     "utilization_pct": 100.0 * per_inf_macs / (cyc * arr.rows * arr.cols) if cyc else 0.0,
                     "compared_accumulations": r["compared_accumulations"],
                     "mismatched_accumulations": r["mismatched_accumulations"],
                     "energy_pj_real_data": pj_unit * r["units"] / n if pj_unit else None, "sim_s": r["sim_s"]})
    cycles = sum(r["cycles_per_inference"] for r in rows)
    macs = sum(r["macs_per_inference"] for r in rows)
    st = eng.stats
    return {"layers": rows, "compared_accumulations": sum(r["compared_accumulations"] for r in rows),
            "mismatched_accumulations": sum(r["mismatched_accumulations"] for r in rows),
            "cycles_per_inference": cycles, "macs_per_inference": macs,
            "utilization_pct": 100.0 * macs / (cycles * arr.rows * arr.cols) if cycles else 0.0,
            "arithmetic_pj_real_data": energy_pj(st) / samples if pj_unit else None,     # the array's energy
            **({"energy_pj_real_data_timed": energy_pj(st, timed=True) / samples,
                "glitch_share": 1 - st.toggle_units / st.timed_toggle_units if st.timed_toggle_units else 0.0}
               if st.timed_toggle_units is not None else {}),
            "simulated_macs": st.macs, "sim_s": st.sim_s, "hardware_s": hw_s, "emulator_s": emu_s,
            "simulated_macs_per_s": st.macs / st.sim_s if st.sim_s else None,
            "emulator_macs_per_s": st.macs / emu_s if emu_s else None,
            "slowdown_vs_emulator": hw_s / emu_s if emu_s else None}


def _energy(model, ds, dp, arr, result: dict) -> dict:
    """The random-operand figure beside the real-data one: nn eval's arithmetic energy, MACs x the
    unit's per-MAC energy on Gaussian random operands (synth.network.mac_energy, as net_energy
    prices every layer), per layer and in total; memory traffic from nn eval's layer list."""
    from synth.network import mac_energy, net_energy
    espec = energy_spec(dp, arr)
    mac_pj = mac_energy(espec)["mac_pj"]
    for row in result["layers"]:
        row["energy_pj_random_operands"] = row["macs_per_inference"] * mac_pj
        if row["energy_pj_real_data"] is not None and row["energy_pj_random_operands"]:
            row["real_over_random"] = row["energy_pj_real_data"] / row["energy_pj_random_operands"]
    rnd = sum(r["energy_pj_random_operands"] for r in result["layers"])
    try:
        memory = net_energy(evaluate.model_net(model, ds.input_shape, getattr(ds, "name", "model")), espec)["memory_pj"]
    except (ValueError, TypeError, RuntimeError):
        memory = None                        # a layer list synth.network cannot describe: no memory figure
    real = result.get("arithmetic_pj_real_data")
    out = {"energy_spec": espec, "random_mac_pj": mac_pj, "energy_pj_real_data": real, "energy_pj_random_operands": rnd,
           "memory_pj": memory}
    if memory is not None:
        out["total_pj_random_operands"] = rnd + memory
        out["total_pj_real_data"] = real + memory if real is not None else None
    if real is not None and rnd:
        out["energy_real_over_random"] = real / rnd
    if result.get("energy_pj_real_data_timed") is not None:          # the same pair in timed mode
        macs = sum(r["macs_per_inference"] for r in result["layers"])
        out["energy_pj_random_operands_timed"] = macs * mac_energy(espec, "timed")["mac_pj"]
        out["energy_real_over_random_timed"] = result["energy_pj_real_data_timed"] / out["energy_pj_random_operands_timed"]
    return out
