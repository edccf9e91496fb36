"""Finishing a search: the front's test accuracies (under every tuning), every candidate alone on
all layers as reference, per-inference energies (front.json's body) and the goal summary."""
from __future__ import annotations

from .candidates import EXACT_SPEC, Candidate
from .context import TUNINGS
from .engines import Engine
from .nsga import SearchResult


def per_inference_energy(layers: list[dict], layer_specs: dict, memo: dict, arch: str = "stream",
                         batch: int | None = None) -> dict:
    """Energy of one inference with each layer on its spec, on architecture `arch` at batch `batch`
    (synth.zigzag.network_energy; default the stream model): {energy_pj, mac_pj} (None and a one-line
    `energy_note` when a spec cannot be priced)."""
    from synth.network import parse_net
    from synth.zigzag import network_energy
    net = parse_net({"name": "model", "layers": [dict(L["net_layer"]) for L in layers]})
    total = mac = 0.0
    for i, L in enumerate(layers):
        spec = layer_specs[L["name"]]
        if spec not in memo:
            try:
                memo[spec] = network_energy(net, spec, arch, batch)
            except (ValueError, TypeError) as e:
                memo[spec] = str(e).splitlines()[0] if str(e) else type(e).__name__
        r = memo[spec]
        if isinstance(r, str):
            return {"energy_pj": None, "mac_pj": None, "energy_note": r}
        total += r["layers"][i]["energy_pj"]
        mac += r["layers"][i]["arithmetic_pj"]
    return {"energy_pj": total, "mac_pj": mac}


def finish(result: SearchResult, engine: Engine, layers: list[dict], cands: list[Candidate], *,
           energy: bool = True, compare_tunings: bool = True, log=None, energy_arch: str = "stream",
           energy_batch: int | None = None) -> dict:
    """The front with test accuracies (with compare_tunings: every front point under each tuning),
    every candidate alone on all layers as reference, per-inference energies (on `energy_arch` at
    batch `energy_batch`, synth.zigzag.network_energy): front.json's body."""
    space = result.space
    front = result.front()
    tun = engine.ctx.tuning
    uniform = [tuple([c] * len(space.layers)) for c in range(len(space.specs))]
    exact = tuple([space.exact] * len(space.layers))
    tunings = list(TUNINGS) if compare_tunings else [tun]
    need_search = [m for m in list(dict.fromkeys(uniform + [exact])) if m not in result.evaluated]
    front_maps = [p["mapping"] for p in front]
    jobs = [(m, "search", None) for m in need_search]
    jobs += [(m, "test", tun) for m in dict.fromkeys([exact] + front_maps + uniform)]
    jobs += [(m, "test", t) for m in front_maps for t in tunings if t != tun]
    if log:
        log(f"evaluating {len(jobs)} test and reference points")
    vals = dict(zip([(m, s, t) for m, s, t in jobs], engine.run(jobs)))
    acc_search = {m: v[0] for m, v in result.evaluated.items()}
    acc_search.update({m: vals[(m, "search", None)][0] for m in need_search})
    loss_search = {m: v[1] for m, v in result.evaluated.items()}
    loss_search.update({m: vals[(m, "search", None)][1] for m in need_search})
    vals = {k: v[0] for k, v in vals.items()}            # accuracies from here on
    base_test = vals[(exact, "test", tun)]
    memo: dict = {}

    def row(m, label=None, with_energy=False):
        acc_t = vals[(m, "test", tun)]
        r = {"accuracy_search_pct": acc_search[m], "loss_search": loss_search[m], "accuracy_test_pct": acc_t,
             "drop_pp": base_test - acc_t,
             "relative_multiplier_energy": space.relative_energy(m),
             "multiplier_energy_saved_pct": 100.0 * (1 - space.relative_energy(m)),
             "mapping": space.layer_specs(m), "tiles": list(dict.fromkeys(space.specs[c] for c in m))}
        if label:
            r["label"] = label
        if compare_tunings and label is None:
            r["accuracy_test_pct_by_tuning"] = {t: vals[(m, "test", t)] for t in tunings}
        if with_energy:
            r.update(per_inference_energy(layers, space.layer_specs(m), memo, energy_arch, energy_batch))
        return r

    if log and energy:
        log(f"pricing the front's inferences on {energy_arch} (synth.zigzag; cached after the first run)")
    front_rows = [row(m, with_energy=energy) for m in front_maps]
    refs = [row(m, cands[m[0]].label) for m in uniform]
    base = {"mapping": EXACT_SPEC, "accuracy_test_pct": base_test, "accuracy_search_pct": acc_search[exact]}
    if energy:
        base.update(per_inference_energy(layers, space.layer_specs(exact), memo, energy_arch, energy_batch))
    return {"baseline": base, "energy_model": {"arch": energy_arch, "batch": energy_batch or 1}, "front": front_rows, "references": refs,
            "evaluated": [{"accuracy_search_pct": p["accuracy_search_pct"], "loss_search": p["loss_search"],
                           "relative_multiplier_energy": p["relative_multiplier_energy"]} for p in result.points()],
            "layers": [{k: L[k] for k in ("name", "kind", "macs")} for L in layers],
            "candidates": [c.to_json() for c in cands],
            "search": {"generations": result.generations, "evaluated": len(result.evaluated),
                       "evaluations_this_run": result.evaluations, "seconds": round(result.seconds, 2),
                       "seconds_per_evaluation": (round(result.seconds / result.evaluations, 4)
                                                  if result.evaluations else None),
                       "history": result.history, "tiles": space.tiles, "tuning": tun,
                       "objective": result.objective}}


def goal_summary(doc: dict, max_drop: float = 0.6) -> dict:
    """The largest multiplier-energy saving within max_drop pp test drop (front and best single
    multiplier), and how many front points beat every single multiplier at least as accurate on
    test (strictly lower relative energy)."""
    ok = [r for r in doc["front"] if r["drop_pp"] <= max_drop + 1e-9]
    best = max(ok, key=lambda r: r["multiplier_energy_saved_pct"]) if ok else None
    refs = doc["references"]
    beats = []
    for r in doc["front"]:
        rivals = [u["relative_multiplier_energy"] for u in refs if u["accuracy_test_pct"] >= r["accuracy_test_pct"]]
        beats.append(not rivals or r["relative_multiplier_energy"] < min(rivals))
    ok_refs = [u for u in refs if u["drop_pp"] <= max_drop + 1e-9]
    best_ref = max(ok_refs, key=lambda u: u["multiplier_energy_saved_pct"]) if ok_refs else None
    return {"max_drop_pp": max_drop,
            "best_saved_pct": None if best is None else best["multiplier_energy_saved_pct"],
            "best_drop_pp": None if best is None else best["drop_pp"],
            "best_uniform_saved_pct": None if best_ref is None else best_ref["multiplier_energy_saved_pct"],
            "best_uniform": None if best_ref is None else best_ref["label"],
            "front_points_beating_uniform": sum(beats), "front_points": len(beats),
            "strictly_better_everywhere": bool(beats) and all(beats)}
