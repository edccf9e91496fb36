"""`ecomac net show`: a model's products (what the energy model prices). Logic in net/loader.py, net/graph.py
and net/importer.py."""
from __future__ import annotations

import json

from .table import TERMINAL_COLUMNS, format_table

__all__ = ["add_parser"]

MODEL_HELP = ("an ecomac checkpoint (.pt), a torch.export program (.pt2), ONNX (.onnx), TorchScript, a torch.save'd "
              "nn.Module, FILE.py:NAME (a module class or zero-argument factory), or a layer list (.json)")


def add_parser(sub) -> None:
    pn = sub.add_parser("net", help="networks as layer lists: import PyTorch / ONNX models")
    ns = pn.add_subparsers(dest="net_command", required=True, parser_class=type(pn))
    p = ns.add_parser("show", help="every matrix product (linear, conv, grouped conv, activation x activation) with "
                                   "its MACs, of any model file")
    p.add_argument("file", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--input-shape", metavar="N,C,H,W",
                   help="input shape, batch first (e.g. 1,1,28,28); default: the one the model records")
    p.add_argument("--weights", metavar="W.pt", help="state_dict for a FILE.py:NAME (or .pt2) model")
    p.add_argument("--json", action="store_true",
                   help="{name, batch, layers: [{..., macs}], macs, macs_by_kind, float_macs, unsupported, no_macs, "
                        "ops}")
    p.set_defaults(func=_cmd_show)


def _cmd_show(args) -> int:
    from net.graph import macs_by_kind
    from net.importer import group_ops, parse_input_shape
    from net.loader import load_net_file
    shape = parse_input_shape(args.input_shape) if args.input_shape else None
    net, imp = load_net_file(args.file, shape, args.weights)
    src = imp.net["layers"] if imp else [{"kind": layer.kind, "name": layer.name} for layer in net.layers]
    layers = [{**entry, "shape": layer.shape, "macs": layer.macs, "weights": layer.weights}
              for entry, layer in zip(src, net.layers)]
    unsupported = [{"name": n, "op": op} for n, op in (imp.unsupported if imp else [])]
    no_macs = [{"name": n, "op": op} for n, op in (imp.no_macs if imp else [])]
    by_kind = {k: v * net.batch for k, v in macs_by_kind(src).items()} if imp else {}
    float_macs = sum(layer.macs for layer in net.layers if layer.float)
    if args.json:
        print(json.dumps({"name": net.name, "batch": net.batch, "layers": layers, "macs": net.macs,
                          "macs_by_kind": by_kind, "float_macs": float_macs, "unsupported": unsupported,
                          "no_macs": no_macs, "ops": imp.ops if imp else {},
                          "needs_weights": imp.needs_weights if imp else None}, indent=2))
        return 0
    rows = [[r["name"], r["kind"] + (" (float)" if r.get("float") else ""), r["shape"], r["weights"], r["macs"]]
            for r in layers]
    rows.append(["total", "", "", sum(r["weights"] for r in layers), net.macs])
    print(format_table(rows, ["layer", "kind", "shape", "weights", "MACs"], max_width=TERMINAL_COLUMNS,
                       title=f"{net.name}: batch {net.batch}, {len(layers)} products"))
    if by_kind:
        print("MACs by kind: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in by_kind.items() if v))
    if float_macs:
        print(f"float products (no datapath covers them; priced at fp32): {float_macs:,} MACs")
    if imp and (imp.ops or imp.no_macs):
        print("no MACs (not charged): " + group_ops(imp.ops or imp.no_macs))
    if unsupported:
        print("UNSUPPORTED (their MACs are not counted): " + ", ".join(f"{r['name']} {r['op']}" for r in unsupported))
    if imp and imp.needs_weights:
        print(f"note: {imp.needs_weights}")
    return 0
