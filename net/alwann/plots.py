"""The front's plot: accuracy drop against relative multiplier energy."""
from __future__ import annotations


def plot_front(doc: dict, title: str = ""):
    """Matplotlib figure: accuracy drop vs relative multiplier energy; every evaluated point (search
    split), each single multiplier on all layers (test), the front (test)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    base_s = doc["baseline"]["accuracy_search_pct"]
    ev = doc["evaluated"]
    ax.scatter([p["relative_multiplier_energy"] for p in ev], [base_s - p["accuracy_search_pct"] for p in ev],
               s=8, c="0.75", label="every evaluated mapping (search split)", zorder=1)
    refs = doc["references"]
    ax.scatter([r["relative_multiplier_energy"] for r in refs], [r["drop_pp"] for r in refs], marker="x", s=36,
               c="tab:red", label="one multiplier on all layers (test)", zorder=2)
    fr = doc["front"]
    ax.plot([r["relative_multiplier_energy"] for r in fr], [r["drop_pp"] for r in fr], "o-", c="tab:blue", ms=5,
            lw=1.2, label="ALWANN front (test)", zorder=3)
    ax.axhline(0.6, c="0.4", ls=":", lw=1)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("relative multiplier energy (1 = mul-array on every layer)")
    ax.set_ylabel("accuracy drop (pp vs the exact 8-bit network)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    s = doc["search"]
    ax.set_title(title or f"ALWANN: {s['tiles']} tiles, tuning {s['tuning']}, {s['evaluated']} mappings evaluated",
                 fontsize=10)
    fig.tight_layout()
    return fig
