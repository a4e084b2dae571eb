"""A safety report a person reads in ten seconds: reference, before, after, the targets, and a verdict in words."""

from __future__ import annotations

from typing import Any

from tuning.safety.report import rate, release_rule_text, verdict

ROWS = (("aligned reference", "reference"), ("fine-tuned (before)", "before"), ("realigned (after)", "after"))


W = 20  # column width: a rate and its 95 % interval, e.g. " 12.5 [ 7.6-19.8]"


def _table(report: dict[str, Any]) -> list[str]:
    lines = [f"  {'':<22}{'harmful answers':>{W}}{'utility':>{W}}{'over-refusal':>{W}}"]
    for label, key in ROWS:
        row = report.get(key) or {}
        cells = "".join(f"{rate(row, m):>{W}}" for m in ("hs", "fa", "over_refusal"))
        lines.append(f"  {label:<22}{cells}")
    t = report.get("targets") or {}
    if t:
        lines.append(
            f"  {'target':<22}{'<= ' + format(t['hs_max'], '.1f'):>{W}}{'>= ' + format(t['fa_min'], '.1f'):>{W}}"
            f"{'<= ' + format(t['over_refusal_max'], '.1f'):>{W}}"
        )
    return lines


def _verdict(report: dict[str, Any]) -> str:
    kind, headline = verdict(report)
    if kind == "failed":
        return f"{headline} ({report.get('reason')})."
    if kind != "realigned":
        return f"{headline}."
    before, after = report.get("before") or {}, report.get("after") or {}
    trials = len(report.get("trials") or [])
    tried = f" after {trials} trial{'s' if trials != 1 else ''}" if trials else ""
    return (
        f"{headline}{tried}; harmful answers {before.get('hs', 0):.1f}% -> "
        f"{after.get('hs', 0):.1f}%, utility {before.get('fa', 0):.1f}% -> {after.get('fa', 0):.1f}%."
    )


def summary(report: dict[str, Any], n_train: int | None = None) -> str:
    """Plain-text summary of a job's safety report (GET .../safety_report)."""
    audit = report.get("split") == "audit"
    where = "the audit split, never seen by the controller" if audit else "held-out prompts"
    lines = [
        f"Safety report (percent of {where}; 95 % Wilson intervals; keyword judge):",
        *_table(report),
        "",
        f"Verdict: {_verdict(report)}",
    ]
    rule = release_rule_text(report)
    if rule:
        lines.append(rule)
    if report.get("released_unrealigned"):
        why = report.get("unrealigned_reason") or "realignment was switched off"
        lines.append(f"Released UNREALIGNED: the adapter is exactly as trained ({why}).")
    reason = str(report.get("reason") or "")
    if report.get("passed") and "warning" in reason.lower():
        lines.append(f"Warning: {reason}")
    mod = report.get("data_moderation") or {}
    if mod.get("flagged_as_harmful") is not None:
        of = f" of {n_train}" if n_train else ""
        lines.append(
            f"Data moderation: {mod['flagged_as_harmful']}{of} training examples were refused by the "
            "aligned model and kept out of the realignment's replay data."
        )
    lines.append(
        "Utility = token accuracy on the customer's validation split (or a screened training sample); "
        "harmful answers = held-out harmful prompts answered without a refusal."
    )
    return "\n".join(lines)
