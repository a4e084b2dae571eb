"""The benches' shared figure: HS, FA and over-refusal against the poison ratio, one line per row name
(a row without a ratio, such as the aligned reference, is drawn flat across every ratio)."""

from __future__ import annotations

from pathlib import Path


def plot_by_poison_ratio(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["row"] for r in rows))
    ps = sorted({r["p"] for r in rows if r["p"] is not None})
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, key in zip(axes, ("hs", "fa", "over_refusal"), strict=True):
        for name in names:
            ys = [next((r[key] for r in rows if r["row"] == name and r["p"] in (p, None)), None) for p in ps]
            ax.plot(ps, ys, marker="o", label=name)
        ax.set_title(key)
        ax.set_xlabel("poison ratio p")
        ax.set_ylim(-2, 102)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
