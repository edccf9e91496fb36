"""The front as tables (front, tunings side by side) and files (front.json, front.csv)."""
from __future__ import annotations

import io
import json
from pathlib import Path

from .candidates import short_spec
from .context import TUNINGS


def front_table(doc: dict) -> tuple[list[str], list[list]]:
    """(headers, rows) of the front: energy, accuracies, drop, per-inference energy, each layer's multiplier."""
    names = [L["name"] for L in doc["layers"]]
    em = doc.get("energy_model") or {"arch": "stream", "batch": 1}
    head = ["rel. mult. E", "saved %", "search acc %", "search loss", "test acc %", "drop pp", "MAC nJ",
            f"nJ/inference ({em['arch']}, batch {em['batch']})"] + names
    rows = []
    for r in doc["front"]:
        e = r.get("energy_pj")
        rows.append([round(r["relative_multiplier_energy"], 4), round(r["multiplier_energy_saved_pct"], 1),
                     round(r["accuracy_search_pct"], 2), round(r.get("loss_search", float("nan")), 4),
                     round(r["accuracy_test_pct"], 2), round(r["drop_pp"], 2),
                     None if r.get("mac_pj") is None else round(r["mac_pj"] / 1e3, 3),
                     None if e is None else round(e / 1e3, 1)] + [short_spec(r["mapping"][n]) for n in names])
    return head, rows


def tuning_table(doc: dict) -> tuple[list[str], list[list]]:
    """(headers, rows): every front point's test accuracy with no / uniform / histogram tuning."""
    head = ["rel. mult. E"] + [f"test acc % {t}" for t in TUNINGS] + ["multipliers"]
    rows = []
    for r in doc["front"]:
        by = r.get("accuracy_test_pct_by_tuning") or {}
        rows.append([round(r["relative_multiplier_energy"], 4)]
                    + [None if t not in by else round(by[t], 2) for t in TUNINGS]
                    + [" ".join(short_spec(s) for s in r["tiles"])])
    return head, rows


_CSV = ("accuracy_search_pct", "accuracy_test_pct", "drop_pp", "relative_multiplier_energy",
        "multiplier_energy_saved_pct", "energy_pj", "mac_pj")


def write_front(doc: dict, outdir) -> dict:
    """front.json (everything) and front.csv (one row per front point; mapping as layer=spec;...)."""
    import csv
    from synth.cache import atomic_write
    out = Path(outdir)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(_CSV) + ["tiles", "mapping"])
    for r in doc["front"]:
        w.writerow([r.get(k) for k in _CSV] + [len(r["tiles"]), ";".join(f"{k}={v}" for k, v in r["mapping"].items())])
    paths = {"json": out / "front.json", "csv": out / "front.csv"}
    atomic_write(paths["json"], json.dumps(doc, indent=2) + "\n")
    atomic_write(paths["csv"], buf.getvalue())
    return paths


def read_front(folder) -> dict:
    p = Path(folder) / "front.json"
    if not p.is_file():
        raise ValueError(f"{folder}: no front.json (run `ecomac alwann search -o {folder}` first)")
    try:
        doc = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{p}: not valid JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("front"), list) or not isinstance(doc.get("setup"), dict):
        raise ValueError(f"{p}: not an ALWANN front (no front list and setup)")
    return doc
