"""The safety report as a picture a person reads in ten seconds: for harmfulness, utility and over-refusal,
the aligned reference, the fine-tuned adapter and the realigned one side by side, each metric's target as
a line, the verdict in words as the title, and the realignment trials (or per-module changes) beside it."""

from __future__ import annotations

from typing import Any

from tuning.safety.report import verdict

METRICS = (
    ("hs", "harmful answers", "hs_max"),
    ("fa", "utility", "fa_min"),
    ("over_refusal", "over-refusal", "over_refusal_max"),
)
SERIES = (
    ("reference", "aligned reference", "tab:gray"),
    ("before", "fine-tuned", "tab:red"),
    ("after", "realigned", "tab:green"),
)


def _errors(row: dict[str, Any], values: list[float]) -> list[list[float]] | None:
    """Matplotlib's yerr (below, above) from the row's 95 % intervals (None when it has none)."""
    ci = row.get("ci") or {}
    if not ci:
        return None
    spans = [ci.get(m) or [v, v] for (m, _, _), v in zip(METRICS, values, strict=True)]
    return [[max(0.0, v - lo) for v, (lo, _) in zip(values, spans, strict=True)],
            [max(0.0, hi - v) for v, (_, hi) in zip(values, spans, strict=True)]]  # fmt: skip


def _scores_panel(ax: Any, report: dict[str, Any]) -> None:
    width = 0.26
    for i, (key, label, color) in enumerate(SERIES):
        row = report.get(key) or {}
        values = [float(row.get(m) or 0.0) for m, _, _ in METRICS]
        xs = [j + (i - 1) * width for j in range(len(METRICS))]
        bars = ax.bar(xs, values, width, label=label, color=color, yerr=_errors(row, values), capsize=3)
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    for j, (_, _, tkey) in enumerate(METRICS):
        target = (report.get("targets") or {}).get(tkey)
        if target is not None:
            ax.hlines(
                target,
                j - 1.5 * width,
                j + 1.5 * width,
                colors="black",
                linestyles="dashed",
                linewidth=1.2,
                label="target" if j == 0 else None,
            )
    ax.set_xticks(range(len(METRICS)), [label for _, label, _ in METRICS])
    ax.set_ylim(0, 112)
    split = "audit" if report.get("split") == "audit" else "held-out"
    ax.set_ylabel(f"% of {split} prompts (95 % intervals)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4, fontsize=8, frameon=False)


def _side_panel(ax: Any, report: dict[str, Any]) -> None:
    trials = report.get("trials") or []
    sims = report.get("per_module_similarity") or {}
    if trials:
        labels = [t["strategy"] for t in trials]
        hs = [t["scores"]["hs"] for t in trials]
        ok = [all(t["checks"].values()) for t in trials]
        ax.barh(range(len(trials)), hs, color=["tab:green" if o else "tab:orange" for o in ok])
        ax.set_yticks(range(len(trials)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("harmful answers after each trial, selection split (green = all targets met)")
        ax.set_title("realignment trials, in order", fontsize=9)
    elif sims:
        mods = sorted(sims)
        ax.bar(range(len(mods)), [sims[m] for m in mods], color="tab:blue")
        ax.set_xticks(range(len(mods)), [m.split("layers.")[-1] for m in mods], rotation=90, fontsize=5)
        ax.set_title("per-module similarity to the aligned reference", fontsize=9)
    else:
        ax.axis("off")
        ax.text(0.0, 0.5, str(report.get("reason", "")), wrap=True, fontsize=9, va="center")


def plot_report(report: dict[str, Any], path: str) -> None:
    """Write the report (``RealignReport.to_dict()``) as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [3, 2]})
    _scores_panel(ax1, report)
    _side_panel(ax2, report)
    fig.suptitle(verdict(report)[1], fontsize=12, fontweight="bold")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
