"""`ecomac net show`: a model file's layer list (what the energy model prices). Logic in net/importer.py."""
from __future__ import annotations

import json

from .table import TERMINAL_COLUMNS, format_table

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    pn = sub.add_parser("net", help="networks as layer lists: import PyTorch / ONNX models")
    ns = pn.add_subparsers(dest="net_command", required=True, parser_class=type(pn))
    p = ns.add_parser("show", help="the Linear/Conv layers (with MACs) of a .pt, .onnx or .json net file")
    p.add_argument("file", metavar="FILE", help="a PyTorch model file (.pt), an ONNX file (.onnx) or a layer list (.json)")
    p.add_argument("--input-shape", metavar="N,C,H,W",
                   help="input shape, batch first (e.g. 1,1,28,28); default: the one a checkpoint records, "
                        "or the ONNX file's own")
    p.add_argument("--json", action="store_true",
                   help="{name, batch, layers: [{..., macs}], macs, unsupported, no_macs}")
    p.set_defaults(func=_cmd_show)


def _cmd_show(args) -> int:
    from net.importer import parse_input_shape
    from net.loader import load_net_file
    shape = parse_input_shape(args.input_shape) if args.input_shape else None
    net, imp = load_net_file(args.file, shape)
    src = imp.net["layers"] if imp else [{"kind": layer.kind, "name": layer.name} for layer in net.layers]
    layers = [{**entry, "shape": layer.shape, "macs": layer.macs, "weights": layer.weights}
              for entry, layer in zip(src, net.layers)]
    unsupported = [{"name": n, "op": op} for n, op in (imp.unsupported if imp else [])]
    no_macs = [{"name": n, "op": op} for n, op in (imp.no_macs if imp else [])]
    if args.json:
        print(json.dumps({"name": net.name, "batch": net.batch, "layers": layers, "macs": net.macs,
                          "unsupported": unsupported, "no_macs": no_macs}, indent=2))
        return 0
    rows = [[r["name"], r["kind"], r["shape"], r["weights"], r["macs"]] for r in layers]
    rows.append(["total", "", "", sum(r["weights"] for r in layers), net.macs])
    print(format_table(rows, ["layer", "kind", "shape", "weights", "MACs"], max_width=TERMINAL_COLUMNS,
                       title=f"{net.name}: batch {net.batch}, {len(layers)} layers"))
    if no_macs:
        print("no MACs (not charged): " + ", ".join(f"{r['name']} {r['op']}" for r in no_macs))
    if unsupported:
        print("UNSUPPORTED (their MACs are not counted): " + ", ".join(f"{r['name']} {r['op']}" for r in unsupported))
    return 0
