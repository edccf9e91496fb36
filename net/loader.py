"""One loader for every model format (`--model` of net show, energy net, nn eval, nn train, alwann).

    load(source, weights=None) -> (model, meta)
        source is
          FILE.pt / .pth   an ecomac checkpoint (net.models.save), or a whole torch.save'd nn.Module
                           whose class can be imported here
          FILE.pt2         a torch.export program (torch.export.save), with or without a dynamic
                           batch dimension (a fixed batch of B runs any batch in chunks of B)
          FILE.onnx        an ONNX graph (net.importer.OnnxModule)
          TorchScript      torch.jit.save'd (run through ONNX for the datapaths)
          FILE.py:NAME     a module class or zero-argument factory in the user's file; `weights`
                           (W.pt: a state_dict, or a checkpoint holding one) loads its weights
        meta: {"format", "input_shape" (per sample, where the file records it), arch/num_classes
        (checkpoints), the meta a .pt2 written by save_model carries}
    canonical(model, example, fold_bn=True)  net.graph.lift, after TorchScript -> ONNX
    load_net_file(path, input_shape=None, weights=None) -> (synth.network.Net, Imported or None)
                           a net file: FILE.json (the layer list), FILE.onnx (shapes only: weights
                           stored in absent external files are not needed), or any model above
    save_model(model, path, meta, input_shape)  a shipped architecture as a checkpoint, anything
                           else as a .pt2 program (dynamic batch) carrying `meta`

Unreadable files, a FILE.py:NAME that is missing or not a module, weights that do not fit: one-line
ValueError. A whole pickled module is unpickled in full only when the safe read (weights_only)
names classes, which runs code named in the file: load only trusted model files.
"""
from __future__ import annotations

import importlib.util
import io
import json
import os
import pickle
import re
import warnings
import zipfile

import numpy as np
import torch
from torch import nn

from . import graph, importer, models

__all__ = ["load", "canonical", "load_net_file", "save_model", "is_model_spec", "FORMATS"]

FORMATS = ("checkpoint", "pt2", "onnx", "torchscript", "module", "py")
META_FILE = "ecomac.json"


def is_model_spec(text: str) -> bool:
    """FILE.py:NAME"""
    return bool(re.fullmatch(r".+\.py:[A-Za-z_][A-Za-z0-9_]*", str(text)))


def load(source, weights=None) -> tuple[nn.Module, dict]:
    source = os.fspath(source)
    if is_model_spec(source):
        model, meta = _from_python(source)
    else:
        if not os.path.exists(source):
            raise ValueError(f"model file {source} does not exist")
        if os.path.isdir(source):
            raise ValueError(f"model {source} is a directory, not a model file")
        if source.endswith(".onnx"):
            model = importer.onnx_module(source)
            meta = {"format": "onnx"}
            if model.input_shape is not None:
                meta["input_shape"] = list(model.input_shape)
        elif _is_export(source):
            model, meta = _from_pt2(source)
        elif _is_torchscript(source):
            model, meta = _from_torchscript(source)
        else:
            model, meta = _from_torch_file(source)
    if weights is not None:
        if meta["format"] not in ("py", "module", "pt2", "checkpoint"):
            raise ValueError(f"--weights applies to FILE.py:NAME, .pt2 and torch.save'd models, not to "
                             f"{meta['format']} ({source})")
        _load_weights(model, weights)
        meta["weights"] = os.fspath(weights)
    return model, meta


# ---- formats ----------------------------------------------------------------------------------------------
def _from_python(spec: str):
    path, _, name = spec.rpartition(":")
    if not os.path.isfile(path):
        raise ValueError(f"model {spec}: file {path} does not exist")
    mod_name = "ecomac_user_" + re.sub(r"\W", "_", os.path.abspath(path))
    try:
        sp = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(sp)
        import sys
        sys.modules[mod_name] = module          # pickling and dataclasses look modules up by name
        sp.loader.exec_module(module)
    except Exception as e:      # the user's file may raise anything
        raise ValueError(f"model {spec}: {path} does not import ({type(e).__name__}: "
                         f"{(str(e).splitlines() or [''])[0][:120]})") from None
    obj = getattr(module, name, None)
    if obj is None:
        found = sorted(k for k, v in vars(module).items() if isinstance(v, type) and issubclass(v, nn.Module)
                       and v.__module__ == mod_name)
        raise ValueError(f"model {spec}: {path} has no {name!r} (nn.Module classes there: {', '.join(found) or 'none'})")
    if not callable(obj):
        raise ValueError(f"model {spec}: {name} is a {type(obj).__name__}, not a module class or a factory")
    try:
        model = obj()
    except Exception as e:
        raise ValueError(f"model {spec}: {name}() failed ({type(e).__name__}: "
                         f"{(str(e).splitlines() or [''])[0][:120]}); it must build the model with no arguments") from None
    if not isinstance(model, nn.Module):
        raise ValueError(f"model {spec}: {name}() returned a {type(model).__name__}, not an nn.Module")
    meta = {"format": "py", "source": spec}
    shape = models.input_shape_of(model)
    if shape is not None:
        meta["input_shape"] = list(shape)
    return model.eval(), meta


def _load_weights(model: nn.Module, path) -> None:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"--weights {path} does not exist")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise ValueError(f"--weights {path}: not a state_dict file (torch.save(model.state_dict(), ...))") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"--weights {path}: holds a {type(sd).__name__}, not a state_dict of tensors")
    want = model.state_dict()
    extra, lost = sorted(set(sd) - set(want)), sorted(set(want) - set(sd))
    if extra or lost:
        raise ValueError(f"--weights {path} does not fit the model (unexpected {extra[:3]}, missing {lost[:3]})")
    for k, v in want.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise ValueError(f"--weights {path} does not fit the model: {k} is {tuple(sd[k].shape)}, "
                             f"the model has {tuple(v.shape)}")
    model.load_state_dict(sd)


def _is_export(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/archive_format") or n == "archive_format" for n in names) and \
        any("/models/" in n or n.startswith("models/") for n in names)


def _is_torchscript(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") or n.split("/", 1)[-1].startswith("code/") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


class FixedBatch(nn.Module):
    """A program exported for a fixed batch B run on any batch: chunks of B, the last padded with zeros."""

    def __init__(self, inner: nn.Module, batch: int):
        super().__init__()
        self.inner, self.batch = inner, int(batch)

    def forward(self, x):
        outs = []
        for i in range(0, x.shape[0], self.batch):
            c = x[i:i + self.batch]
            n = c.shape[0]
            if n < self.batch:
                c = torch.cat([c, c.new_zeros((self.batch - n, *c.shape[1:]))])
            outs.append(self.inner(c)[:n])
        return torch.cat(outs)


def _from_pt2(path: str):
    extra = {META_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ep = torch.export.load(path, extra_files=extra)
    except Exception as e:
        raise ValueError(f"model {path}: unreadable torch.export program ({type(e).__name__}: "
                         f"{(str(e).splitlines() or [''])[0][:120]})") from None
    meta = {}
    if extra.get(META_FILE):
        try:
            meta = dict(json.loads(extra[META_FILE]))
        except (ValueError, TypeError):
            meta = {}
    meta["format"] = "pt2"
    user = list(ep.graph_signature.user_inputs)
    if len(user) != 1:
        raise ValueError(f"model {path}: the program takes {len(user)} inputs; ecomac runs models of one input")
    ph = next(n for n in ep.graph.nodes if n.op == "placeholder" and n.name == user[0])
    val = ph.meta.get("val")
    model = ep.module()
    if val is not None and val.dim() >= 1:
        dims = list(val.shape)
        static = [int(d) if isinstance(d, int) else None for d in dims]
        if None not in static[1:]:
            meta.setdefault("input_shape", static[1:])
        if static[0] is not None:
            meta["fixed_batch"] = static[0]
    graph.keep(model, "_ecomac_fixed_batch", meta.get("fixed_batch"))
    return model, meta


def _from_torchscript(path: str):
    try:
        with warnings.catch_warnings():         # torch.jit.load's deprecation notice is not the user's
            warnings.simplefilter("ignore")
            model = torch.jit.load(path, map_location="cpu")
    except Exception as e:      # torch raises RuntimeError subclasses of many kinds
        raise ValueError(f"model {path}: unreadable TorchScript ({str(e).splitlines()[0][:120]})") from None
    return model.eval(), {"format": "torchscript"}


def _torch_file(path: str) -> bool:
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"


def _from_torch_file(path: str):
    not_model = ValueError(f"model {path}: not a model file (formats: an ecomac checkpoint, a torch.export "
                           f"program .pt2, ONNX, TorchScript, a torch.save'd nn.Module, or FILE.py:NAME)")
    if not _torch_file(path):
        raise not_model
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" not in str(e):
            raise not_model from None
        obj = None      # it names classes: a whole pickled Module (or some other pickled object)
    except Exception:
        raise not_model from None
    if obj is None:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except (AttributeError, ModuleNotFoundError, ImportError) as e:
            raise ValueError(f"model {path}: a torch.save'd module whose class cannot be imported here "
                             f"({(str(e).splitlines() or [''])[0][:80]}); save it with torch.export.save (.pt2) "
                             f"or give FILE.py:NAME with --weights W.pt") from None
        except Exception as e:
            raise ValueError(f"model {path}: not loadable as a pickled nn.Module "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})") from None
        if not isinstance(obj, nn.Module):
            raise ValueError(f"model {path}: holds a {type(obj).__name__}, not an nn.Module")
        meta = {"format": "module"}
        arch = models.arch_of(obj)
        if arch:
            n_out = getattr(obj, "num_classes", None) or obj.fc3.out_features
            meta.update(arch=arch, input_shape=list(obj.input_shape), num_classes=int(n_out))
        elif models.input_shape_of(obj) is not None:
            meta["input_shape"] = list(models.input_shape_of(obj))
        return obj.eval(), meta
    if isinstance(obj, dict) and "state_dict" in obj:
        model, meta = models.from_checkpoint(obj, path)
        meta["format"] = "checkpoint"
        return model, meta
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"model {path}: a bare state_dict has no architecture; give FILE.py:NAME --weights {path}")
    raise ValueError(f"model {path}: holds a {type(obj).__name__}, not a model (formats: an ecomac checkpoint, a "
                     f"torch.export program .pt2, ONNX, TorchScript, a torch.save'd nn.Module, or FILE.py:NAME)")


# ---- the canonical model --------------------------------------------------------------------------------
def canonical(model: nn.Module, example, fold_bn: bool = True) -> nn.Module:
    """net.graph.lift of `model` (TorchScript through ONNX first; a fixed-batch program lifted inside
    its FixedBatch wrapper). example: one float input batch (batch first)."""
    ex = torch.as_tensor(np.asarray(example, np.float32))
    if isinstance(model, torch.jit.ScriptModule):
        return importer.torchscript_module(model, tuple(ex.shape))
    if isinstance(model, FixedBatch):
        return model
    fixed = getattr(model, "_ecomac_fixed_batch", None)
    if fixed:
        reps = -(-fixed // ex.shape[0])
        inner = graph.lift(model, torch.cat([ex] * reps)[:fixed], fold_bn)
        out = FixedBatch(inner, fixed)
        out._ecomac_lifted = fold_bn
        if hasattr(model, "input_shape"):
            out.input_shape = tuple(model.input_shape)
        return out
    return graph.lift(model, ex, fold_bn)


def load_net_file(path, input_shape=None, weights=None):
    """(synth.network.Net, Imported or None) of a net file (see the module docstring)."""
    from synth.network import load_net, parse_net
    path = os.fspath(path)
    if path.endswith(".json"):
        if input_shape is not None:
            raise ValueError("--input-shape applies to model files (.pt, .pt2, .onnx, FILE.py:NAME), not to a "
                             "JSON layer list")
        if weights is not None:
            raise ValueError("--weights applies to FILE.py:NAME and .pt2 models, not to a JSON layer list")
        return load_net(path), None
    if path.endswith(".onnx"):
        if weights is not None:
            raise ValueError("--weights applies to FILE.py:NAME and .pt2 models, not to ONNX")
        imp = importer.from_onnx(path, input_shape)
    else:
        model, meta = load(path, weights)
        if input_shape is None:
            per = meta.get("input_shape")
            if per is None:
                raise ValueError(f"model {path}: its input shape is not recorded; give --input-shape (batch first, "
                                 f"e.g. 1,1,28,28)")
            input_shape = (1, *per)
        imp = importer.from_torch(model, input_shape, os.path.basename(path.rpartition(":")[0] or path)
                                  if is_model_spec(path) else os.path.basename(path))
    return parse_net(imp.net, path), imp


def save_model(model: nn.Module, path, meta: dict | None = None, input_shape=None, shipped=None) -> None:
    """A shipped architecture as a checkpoint (net.models.save; `shipped`: the shipped model `model` is the
    lifted copy of, whose state_dict names it keeps); any other model as a torch.export program with a
    dynamic batch dimension and `meta` in its extra file ecomac.json, atomically."""
    if shipped is not None and models.arch_of(shipped) is not None:
        import copy
        plain = copy.deepcopy(shipped)
        plain.load_state_dict(model.state_dict())
        model = plain
    if models.arch_of(model) is not None:
        models.save(model, path, meta)
        return
    from synth.cache import atomic_write
    shape = input_shape or models.input_shape_of(model, meta)
    if shape is None:
        raise ValueError("save_model: the model's input shape is not known")
    was = model.training
    model.eval()
    inner = model.inner if isinstance(model, FixedBatch) else model
    x = torch.zeros((inner.batch if isinstance(model, FixedBatch) else 2, *shape))
    dyn = None if isinstance(model, FixedBatch) else ({0: torch.export.Dim("batch", min=1)},)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ep = torch.export.export(inner, (x,), dynamic_shapes=dyn)
    except Exception:
        ep = torch.export.export(inner, (x,))
    finally:
        model.train(was)
    buf = io.BytesIO()
    torch.export.save(ep, buf, extra_files={META_FILE: json.dumps({**(meta or {}), "input_shape": list(shape)},
                                                                   default=str)})
    atomic_write(path, buf.getvalue())
