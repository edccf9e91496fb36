"""The training loop of the network level: one loop for every mode.

    train(model, dataset, datapath=None, errors=None, epochs=10, seed=0, lr=1e-3, ...)
        -> (model, history)

Modes (chosen by `datapath`, a golden.datapath spec):

    None / fp32        plain float32 training (the baseline)
    mfmac[,exp_bits=E] ALS-POTQ (net/potq.py): forward, backward-data and weight-gradient products
                       all on PoT codes through the bit-exact MF-MAC kernel; `errors` picks the
                       error datapath (default: the same mfmac; "fp32" keeps float errors)
    int8, asm[,...]    quantization-aware training (net/qat.py): forward on the datapath,
                       straight-through estimator backward (asm: weights projected onto the
                       alphabet's representable set)
    approx:..., lut:.. approximate-aware fine-tuning (net/qat.py): forward on the approximate
                       product, backward by STE (grad="ste") or by the table's own finite
                       differences (grad="table")

Optimizer: Adam (default; betas 0.9/0.999) or SGD with momentum 0.9 (`optimizer="sgd"`). The
master weights and the optimizer state stay float32 in every mode: only the products of the
linear layers run on the datapath. `lr_pow2=True` rounds the learning rate to the nearest power
of two so that the lr multiplication of the update is an exponent shift (with SGD the whole
update is then a shift of the momentum buffer).

Determinism: torch.manual_seed(seed) before the model is touched and one
np.random.default_rng(seed) drawing each epoch's sample order, so the same seed gives the same
run on the same machine (thread count aside for float sums).

Device and processes: `device` (net.device: cpu, cuda; None = where the model is) holds the model,
the data and every product. Launched by torchrun (WORLD_SIZE > 1) the loop runs data-parallel
(net/distributed.py: DistributedDataParallel, each global batch split over the processes, the
global batch's loss, gradient and quantization scales).

Divergence: a non-finite loss (or gradient) stops the run with `TrainingDiverged` (a
ValueError, one line naming the layer whose output or gradient first went non-finite and the
step); the model is restored to the last good state (the end of the last finished epoch, or the
initial weights) and, when `checkpoint` is given, that state is saved there.
"""
from __future__ import annotations

import copy
import math
import sys
import time

import numpy as np
import torch
from torch import nn

from . import distributed
from .device import model_device

__all__ = ["train", "TrainingDiverged", "OPTIMIZERS", "pow2_lr", "accuracy_pct", "validate_options"]

OPTIMIZERS = ("adam", "sgd")


class TrainingDiverged(ValueError):
    """The loss went NaN/Inf: one line naming the layer and the step."""


def pow2_lr(lr: float) -> float:
    """The power of two nearest lr in the log domain (a shift instead of a multiplication)."""
    return float(2.0 ** round(math.log2(lr)))


def accuracy_pct(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Top-1 accuracy (percent) of `model` (in eval mode, no grad, on its device) on float arrays x, y."""
    if len(y) == 0:
        return float("nan")
    was = model.training
    model.eval()
    dev = model_device(model)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            out = model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size], np.float32)).to(dev))
            correct += int((out.argmax(1).cpu().numpy() == y[i:i + batch_size]).sum())
    model.train(was)
    return 100.0 * correct / len(y)


def _check_number(name, v, lo, hi=None, integer=False, lo_open=False):
    ok_type = isinstance(v, (int, np.integer)) and not isinstance(v, bool) if integer else \
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    if not ok_type or (not integer and not math.isfinite(float(v))):
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"{name} must be {kind}, got {v!r}")
    if (v <= lo if lo_open else v < lo) or (hi is not None and v > hi):
        rng = f"> {lo}" if lo_open else f">= {lo}"
        rng += f" and <= {hi}" if hi is not None else ""
        raise ValueError(f"{name} must be {rng}, got {v!r}")


def validate_options(*, epochs, seed, lr, batch_size, optimizer, lr_pow2) -> None:
    """The loop's own options (each mode validates its own): one-line ValueError."""
    _check_number("epochs", epochs, 1, 100000, integer=True)
    _check_number("seed", seed, 0, 2**32 - 1, integer=True)
    _check_number("lr", lr, 0.0, 10.0, lo_open=True)
    _check_number("batch_size", batch_size, 1, 1 << 20, integer=True)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    if not isinstance(lr_pow2, bool):
        raise ValueError(f"lr_pow2 must be True or False, got {lr_pow2!r}")


def _check_dataset(model, dataset) -> None:
    for name in ("x_train", "y_train", "x_test", "y_test", "num_classes"):
        if not hasattr(dataset, name):
            raise ValueError(f"dataset must be a net.data.Dataset (missing {name})")
    if len(dataset.y_train) == 0:
        raise ValueError("dataset has no training samples")
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")


class _NonFiniteWatch:
    """Forward hooks on every leaf module: the first layer (qualified name) whose output is not
    finite in the current step (gradients: _first_nonfinite_grad)."""

    def __init__(self, model: nn.Module):
        self.first = None
        self.handles = []
        for name, m in model.named_modules():
            if name and not list(m.children()):
                self.handles.append(m.register_forward_hook(self._fwd(name)))

    def _fwd(self, name):
        def hook(mod, inp, out):
            if self.first is None and isinstance(out, torch.Tensor) and not torch.isfinite(out).all():
                self.first = (name, "output")
        return hook

    def reset(self):
        self.first = None

    def remove(self):
        for h in self.handles:
            h.remove()


def make_mode(datapath=None, errors=None, **mode_options):
    """The training mode object for `datapath` (None for fp32), every option validated (one-line
    ValueError): net.potq.PotqMode for mfmac, net.qat.QatMode for int8/asm/approx/lut."""
    if datapath is not None:
        from .datapath import parse
        dp = parse(datapath)
        if dp.kind != "fp32":
            if dp.kind == "mfmac":
                from .potq import PotqMode as cls
                allowed = ("wbc", "prc", "prc_min", "err_rounding", "err_scale", "wgrad_exp_bits", "fwd_rounding",
                           "rand_bits")
            else:
                from .qat import QatMode as cls
                allowed = ("grad", "anneal")
            bad = sorted(set(mode_options) - set(allowed))
            if bad:
                raise ValueError(f"option {bad[0]} does not apply to datapath {dp.spec} "
                                 f"({dp.kind} training takes: {', '.join(allowed)})")
            return cls(dp, errors=errors, **mode_options)
    if errors is not None and str(errors).strip() != "fp32":
        raise ValueError("errors= needs a datapath (the error datapath of ALS-POTQ: --datapath mfmac)")
    if mode_options:
        raise ValueError(f"option(s) {', '.join(sorted(mode_options))} need a datapath "
                         f"(fp32 training takes none)")
    return None


def _prepare(model, datapath, errors, mode_options):
    """(model to train, mode object or None); the mode converts every product of the model to its own
    training layers (net.graph.convert_for_mode: the mode's convert, then its make(kind, ...) for the
    products convert leaves: activation x activation matmuls, conv1d)."""
    mode = make_mode(datapath, errors, **mode_options)
    if mode is None:
        return model, None
    from .graph import convert_for_mode
    return convert_for_mode(model, mode), mode


def train(model: nn.Module, dataset, *, datapath=None, errors=None, epochs: int = 10, seed: int = 0,
          lr: float = 1e-3, batch_size: int = 64, init=None, progress: bool = True,
          optimizer: str = "adam", lr_pow2: bool = False, checkpoint=None, device=None, **mode_options):
    """Train `model` on `dataset` (net.data.Dataset) on `datapath` (see the module doc).

    init: a state_dict (or a path to a checkpoint of net.models.save) loaded before training
    (fine-tuning starts from it). checkpoint: where the last good float state goes if the run
    diverges (a path for net.models.save, or a callable given the plain float model). mode_options go to the mode (net.potq / net.qat): e.g. wbc=, prc=, grad=.
    device: a torch device or name for the model, the data and the products (None: the model's).

    Returns (trained model, history) with history = {"epochs": [{epoch, loss,
    train_accuracy_pct, test_accuracy_pct, seconds, ...mode statistics}], "test_accuracy_pct",
    "train_accuracy_pct", "lr", "optimizer", "datapath", "errors", "steps_per_epoch", ...}.
    The returned model computes on the datapath (its layers are the mode's); net.train.to_float
    gives back a plain model with the trained float master weights."""
    validate_options(epochs=epochs, seed=seed, lr=lr, batch_size=batch_size, optimizer=optimizer,
                     lr_pow2=lr_pow2)
    _check_dataset(model, dataset)
    torch.manual_seed(seed)
    if init is not None:
        _load_init(model, init)
    dev = model_device(model) if device is None else torch.device(device)
    ddp = distributed.setup(dev)
    if ddp is not None:
        dev = ddp.device
        progress = progress and ddp.rank == 0
    model, mode = _prepare(model.to(dev), datapath, errors, dict(mode_options))
    model = model.to(dev)
    fwd = distributed.wrap(model, ddp)
    if mode is not None:
        mode.set_epochs(epochs)
    lr_used = pow2_lr(lr) if lr_pow2 else float(lr)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.Adam(params, lr=lr_used) if optimizer == "adam"
           else torch.optim.SGD(params, lr=lr_used, momentum=0.9))
    rng = np.random.default_rng(seed)
    x_tr = torch.from_numpy(np.ascontiguousarray(dataset.x_train, np.float32)).to(dev)
    y_tr = torch.from_numpy(np.ascontiguousarray(dataset.y_train, np.int64)).to(dev)
    n = len(y_tr)
    steps_per_epoch = (n + batch_size - 1) // batch_size
    history = {"datapath": None if datapath is None else str(datapath),
               "errors": None if errors is None else str(errors),
               "optimizer": optimizer, "lr": lr_used, "batch_size": batch_size, "seed": seed,
               "steps_per_epoch": steps_per_epoch, "epochs": []}
    if mode is not None:
        history["mode"] = mode.describe()
    good_state = copy.deepcopy(model.state_dict())
    watch = _NonFiniteWatch(model)
    step = 0
    try:
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            model.train()
            if mode is not None:
                mode.start_epoch(epoch)
            order = torch.from_numpy(rng.permutation(n))
            bar = _bar(steps_per_epoch, f"epoch {epoch}/{epochs}", progress)
            loss_sum, correct, seen = 0.0, 0, 0
            for b in range(steps_per_epoch):
                idx = order[b * batch_size:(b + 1) * batch_size]
                n_global = len(idx)
                idx = distributed.shard(idx, ddp).to(dev)
                xb, yb = x_tr[idx], y_tr[idx]
                step += 1
                watch.reset()
                with distributed.synced_scales(ddp):
                    out = fwd(xb)
                    if ddp is None:
                        loss = nn.functional.cross_entropy(out, yb)
                    else:       # DDP averages over processes: the global batch's mean loss
                        loss = nn.functional.cross_entropy(out, yb, reduction="sum") * (ddp.world / n_global)
                    if not torch.isfinite(loss.detach()):
                        _diverged(model, good_state, checkpoint, watch, step, epoch, "loss")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                bad = _first_nonfinite_grad(model)
                if watch.first is not None or bad is not None:
                    _diverged(model, good_state, checkpoint, watch, step, epoch, "gradient", bad)
                opt.step()
                if mode is not None:
                    mode.after_step(model)
                loss_sum += loss.item() * (len(yb) if ddp is None else n_global / ddp.world)
                correct += int((out.argmax(1) == yb).sum())
                seen += len(yb)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100.0 * correct / seen:.1f}%")
            if ddp is not None:
                loss_sum, correct, seen = distributed.all_sum((loss_sum, correct, seen), ddp)
            stats = mode.end_epoch() if mode is not None else {}
            recalibrate_bn(model, x_tr)
            test_acc = accuracy_pct(model, dataset.x_test, dataset.y_test)
            rec = {"epoch": epoch, "loss": loss_sum / seen, "train_accuracy_pct": 100.0 * correct / seen,
                   "test_accuracy_pct": test_acc, **stats}
            rec["seconds"] = time.perf_counter() - t0
            history["epochs"].append(rec)
            if bar is not None:
                bar.set_postfix(loss=f"{rec['loss']:.4f}", acc=f"{rec['train_accuracy_pct']:.1f}%",
                                test=f"{test_acc:.1f}%")
                bar.close()
            good_state = copy.deepcopy(model.state_dict())
    finally:
        watch.remove()
    history["train_accuracy_pct"] = accuracy_pct(model, dataset.x_train, dataset.y_train)
    history["test_accuracy_pct"] = history["epochs"][-1]["test_accuracy_pct"]
    history["seconds"] = sum(e["seconds"] for e in history["epochs"])
    return model, history


BN_RECALIBRATION_SAMPLES = 2048


def recalibrate_bn(model: nn.Module, x, samples: int = BN_RECALIBRATION_SAMPLES, batch: int = 256) -> int:
    """Re-estimate every BatchNorm's running statistics with the model's current weights: `samples`
    inputs of `x` drawn once by a fixed generator (the same draw in every process, every mode and
    every epoch; a random draw, not the first rows: data sets stored by class, as MNIST-5k is, would
    bias the statistics towards the first classes), everything else
    in eval mode, no gradient, a cumulative average. The running averages training leaves behind
    mix the statistics of weights that changed over the epoch; a quantized forward (ALS-POTQ's PoT
    activations) moves them far enough that eval-mode accuracy collapses (ResNet-20, one ALS-POTQ
    epoch on MNIST-5k: 10.5% with the training averages, 93.1% re-estimated). Every mode, FP32
    included, gets the same treatment. Returns the number of BatchNorm layers re-estimated."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns:
        return 0
    was = model.training
    saved = [m.momentum for m in bns]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None            # cumulative moving average over the recalibration batches
        m.train()
    try:
        with torch.no_grad():
            n = min(samples, len(x))
            pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:n].to(x.device)
            for i in range(0, n, batch):
                model(x[pick[i:i + batch]])
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
        model.train(was)
    return len(bns)


def to_float(model: nn.Module) -> nn.Module:
    """A plain copy of a trained model: every mode layer back to nn.Linear/nn.Conv2d holding the
    float32 master weights (what net.models.save stores)."""
    m = copy.deepcopy(model)
    for name, mod in list(m.named_modules()):
        plain = getattr(mod, "to_plain", None)
        if plain is not None and name:
            parent_name, _, attr = name.rpartition(".")
            parent = m.get_submodule(parent_name) if parent_name else m
            setattr(parent, attr, plain())
    return m


def _load_init(model, init) -> None:
    if isinstance(init, (str, bytes)) or hasattr(init, "__fspath__"):
        from .loader import load
        loaded, _meta = load(init)
        state = loaded.state_dict()
    elif isinstance(init, nn.Module):
        state = init.state_dict()
    elif isinstance(init, dict):
        state = init
    else:
        raise ValueError(f"init must be a checkpoint path, a Module or a state_dict, got {type(init).__name__}")
    mine = model.state_dict()
    if set(mine) != set(state) or any(tuple(mine[k].shape) != tuple(state[k].shape) for k in mine):
        diff = sorted(set(mine) ^ set(state)) or \
            [k for k in mine if tuple(mine[k].shape) != tuple(state[k].shape)]
        raise ValueError(f"init does not fit the model (first mismatch: {diff[0]}); "
                         f"train the same --arch on data of the same shape")
    model.load_state_dict(state)


def _first_nonfinite_grad(model):
    """The layer whose weight gradient went non-finite first in the backward pass: errors flow
    from the output back, so the last such layer in forward order."""
    bad = None
    for name, p in model.named_parameters():
        if p.grad is not None and not torch.isfinite(p.grad).all():
            bad = name.rpartition(".")[0] or name
    return bad


def _diverged(model, good_state, checkpoint, watch, step, epoch, what, bad_param=None):
    layer = watch.first[0] if watch.first is not None else (bad_param or "the loss")
    where = watch.first[1] if watch.first is not None else ("weight gradient" if bad_param else "value")
    model.load_state_dict(good_state)
    kept = ""
    if checkpoint is not None:
        _save_state(model, checkpoint)
        kept = f"; last good state saved to {checkpoint}"
    raise TrainingDiverged(f"training diverged at step {step} (epoch {epoch}): non-finite {what}, first at "
                           f"layer {layer} ({where}){kept}")


def _save_state(model, checkpoint) -> None:
    """checkpoint: a callable given the plain float model, or a path for net.models.save."""
    plain = to_float(model)
    if callable(checkpoint):
        checkpoint(plain)
        return
    from .models import save
    save(plain, checkpoint, {"diverged": True})


def _bar(total, desc, progress):
    if not progress:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=True, dynamic_ncols=True, mininterval=0.5)


# ==== training energy ===============================================================================
def training_energy(model: nn.Module, input_shape, datapath=None, errors=None, batch_size: int = 64,
                    steps_per_epoch: int | None = None, **mode_options) -> dict:
    """Energy of one training step (batch `batch_size`) from synth.network.net_energy: the forward
    product on `datapath`, the backward-data and weight-gradient products on the error datapath
    (ALS-POTQ: `errors`, default the same mfmac; with mode option err_scale="sample" the weight
    gradient on its wider MF-MAC, PotqMode.product_datapaths; every other mode trains with float32
    errors), each with its memory traffic. {energy_per_step_pj, energy_per_epoch_pj (with
    steps_per_epoch), forward_pj, backward_pj, backward_data_pj, weight_grad_pj, macs_per_step,
    forward_datapath, error_datapath, weight_grad_datapath, error_quantizer_pj}. ALS-POTQ with
    stochastic or LUQ errors (err_rounding) adds the stochastic quantizer (rtl/luq.py luq-quant with its
    LFSR, synth/luq.py) once per error element of every product (error_quantizer_pj; energy_per_step_pj
    = forward + backward-data + weight-gradient + quantizer); fwd_rounding="fp32" (float forward, the
    loss split) prices every product on fp32. Other mode_options do not change the datapaths."""
    from synth.network import net_energy, parse_net

    from .datapath import parse
    from .importer import from_torch
    plain = to_float(model)
    imp = from_torch(plain, (batch_size, *tuple(input_shape)), "model")
    for e in imp.net["layers"]:            # products the mode had no module for trained in float32
        if e["name"] in set(getattr(model, "_ecomac_float_products", ())):
            e["float"] = True
    net = parse_net(imp.net, "model")
    fwd_spec = "fp32" if datapath is None else parse(datapath).canonical
    quantizer = None
    if datapath is not None and parse(datapath).kind == "mfmac":
        from .potq import PotqMode
        opts = {k: v for k, v in mode_options.items()
                if k in ("err_scale", "wgrad_exp_bits", "err_rounding", "fwd_rounding", "rand_bits")}
        pm = PotqMode(datapath, errors=errors, **opts)
        specs = pm.product_datapaths()
        err_spec, wg_spec = specs["backward_data"], specs["weight_grad"]
        if pm.fwd_rounding == "fp32":          # the loss split's error half: float operands everywhere
            fwd_spec = err_spec = wg_spec = "fp32"
        if pm.err_rounding != "nearest":       # the stochastic quantizer's unit (rtl/luq.py), per error element
            quantizer = pm.dp_err.params["exp_bits"]
    else:
        err_spec = wg_spec = "fp32"
    if err_spec == fwd_spec == wg_spec:
        e = net_energy(net, fwd_spec, training=True)
        fwd = e["energy_pj"] / 3.0
        total = e["energy_pj"]
        macs = e["macs"]
        bd = wg = fwd
    else:
        f = net_energy(net, fwd_spec)
        b = net_energy(net, err_spec)
        w = b if wg_spec == err_spec else net_energy(net, wg_spec)
        fwd, bd, wg = f["energy_pj"], b["energy_pj"], w["energy_pj"]
        total, macs = fwd + bd + wg, f["macs"] + b["macs"] + w["macs"]
    q = 0.0
    if quantizer is not None:
        from synth.luq import net_quantizer_energy
        qe = net_quantizer_energy(net, quantizer)
        q = qe["energy_pj"]
        total += q
    out = {"forward_datapath": fwd_spec, "error_datapath": err_spec, "weight_grad_datapath": wg_spec,
           "error_quantizer_pj": q, "energy_per_step_pj": total, "forward_pj": fwd, "backward_pj": total - fwd - q, "backward_data_pj": bd,
           "weight_grad_pj": wg, "macs_per_step": macs, "batch": batch_size}
    if steps_per_epoch is not None:
        out["energy_per_epoch_pj"] = total * steps_per_epoch
    return out
