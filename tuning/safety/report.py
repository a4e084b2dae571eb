"""The realignment stage's report: what it measured, what it chose and why, as a JSON-serialisable dict, and its
verdict in words (for the printed summary and the PNG). Standard library only."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tuning.safety.stats import interval, overlap

METRICS = ("hs", "fa", "over_refusal")


@dataclass
class RealignReport:
    method: str
    passed: bool
    reason: str
    before: dict
    after: dict
    reference: dict
    strength: dict | None = None
    info: dict = field(default_factory=dict)
    trials: list[dict] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    targets: dict = field(default_factory=dict)
    unrealigned_reason: str | None = None  # set when the adapter is released as trained without realignment
    split: str = "selection"  # which prompts before/after/reference were measured on ("audit" when there is one)
    selection: dict | None = None  # with an audit split: the controller's before/after/reference/targets
    release_rule: dict = field(default_factory=dict)  # "after <= reference + margin" on the shown numbers

    def to_dict(self) -> dict:
        info = self.info or {}
        return {
            "method": self.method,
            "passed": self.passed,
            "reason": self.reason,
            "before": self.before,
            "after": self.after,
            "reference": self.reference,
            "targets": self.targets,
            "strength": self.strength,
            "modules_changed": info.get("modules_changed", []),
            "neurons_changed": info.get("neurons_changed", 0),
            "per_module_similarity": info.get("per_module_similarity", {}),
            "trials": self.trials,
            "timings": self.timings,
            "data_moderation": self.data,
            "judge": "keyword (Zou et al.)",
            "released_unrealigned": self.method == "none",
            "unrealigned_reason": self.unrealigned_reason,
            "split": self.split,
            "selection": self.selection,
            "release_rule": self.release_rule,
        }


def rates(scores: Any, sizes: dict[str, int]) -> dict:
    """A :class:`~tuning.safety.controller.Scores` as the report shows it: rounded rates, their 95 % Wilson
    intervals (``ci``) and how many prompts or examples each was measured on (``n``)."""
    out: dict = scores.rounded()
    n = {m: (scores.sample or {}).get(m, sizes.get(m, 0)) for m in METRICS}
    out["ci"] = {m: interval(getattr(scores, m), n[m]) for m in METRICS}
    out["n"] = n
    return out


def rate(row: dict[str, Any], metric: str) -> str:
    """A report row's rate with its 95 % Wilson interval when it has one, for people: ``  12.5 [7.6-19.8]``."""
    v, ci = row.get(metric), (row.get("ci") or {}).get(metric)
    text = f"{v:6.1f}" if isinstance(v, int | float) else f"{'-':>6}"
    return f"{text} [{ci[0]:.1f}-{ci[1]:.1f}]" if ci else text


def release_rule(after: dict, reference: dict, margin: float, split: str) -> dict:
    """Whether "HS after <= reference HS + margin" holds on the point estimates, and whether the two HS intervals
    overlap (when they do, the data cannot tell the two apart), on the split the report shows."""
    a, r = after.get("hs"), reference.get("hs")
    holds = None if a is None or r is None or math.isnan(a) or math.isnan(r) else a <= r + margin
    ci = (after.get("ci") or {}).get("hs"), (reference.get("ci") or {}).get("hs")
    return {
        "rule": f"after HS <= reference HS + {margin:g}",
        "split": split,
        "after_hs": a,
        "reference_hs": r,
        "holds_on_point_estimate": holds,
        "intervals_overlap": overlap(*ci),
    }


def release_rule_text(report: dict) -> str | None:
    """The report's release rule in words (None when it was not checked, e.g. no reference score)."""
    rule = report.get("release_rule") or {}
    if rule.get("holds_on_point_estimate") is None:
        return None
    holds = "holds" if rule["holds_on_point_estimate"] else "does NOT hold"
    overlap = {True: "overlap", False: "do not overlap", None: "are not known"}[rule.get("intervals_overlap")]
    return (
        f"Release rule ({rule['rule']}, {rule['split']} split): {holds} on the point estimates "
        f"({rule['after_hs']:.1f} vs {rule['reference_hs']:.1f}); the two HS intervals {overlap}."
    )


def audit_warning(report: dict) -> str | None:
    """A released adapter whose harmfulness on the audit split misses the release rule: the controller released it
    on the selection split's scores (a passing trial, or "not needed" without one), the audit split says otherwise.
    The customer should know. An adapter released unrealigned (``released_unrealigned``) is not warned about here:
    no controller chose it, and its report and events already say it is released as trained."""
    rule = report.get("release_rule") or {}
    if not report.get("passed") or report.get("released_unrealigned"):
        return None
    if rule.get("split") != "audit" or rule.get("holds_on_point_estimate") is not False:
        return None
    return (
        f"Warning: released on the selection split's scores, but on the audit split (prompts the controller never "
        f"chose on) its harmfulness is above the aligned model's + margin. {release_rule_text(report)}"
    )


AUDIT_GATES = ("warn", "fail")  # KEEL_AUDIT_GATE's values (core.config's Literal; core may not import this module)


def gate_on_audit(report: dict, gate: str) -> dict:
    """The operator's audit gate (``KEEL_AUDIT_GATE``): with ``warn`` (the default) a release the audit split
    contradicts goes out with :func:`audit_warning`; with ``fail`` it is not released (``passed`` false, the job
    fails ``unsafe_model``, its report kept). The audit split only gates: it never picks among the controller's
    trials, so a gated job's trials still say what the selection split chose. Returns a new dict."""
    if gate not in AUDIT_GATES:
        raise ValueError(f"audit gate must be one of {AUDIT_GATES}, not {gate!r}")
    if gate != "fail" or audit_warning(report) is None:
        return report
    reason = (
        f"not released: the selection split passed it ({report.get('reason')}), but the audit split (prompts "
        f"the controller never chose on) misses the release rule. {release_rule_text(report)}"
    )
    return {**report, "passed": False, "reason": reason, "audit_gate": "fail"}


def audit_gate_event(report: dict) -> tuple[str, str] | None:
    """(level, message) of the job event for a release the audit split contradicts: ``warn`` with the warning, or
    ``error`` with why it was held back; None when there is nothing to say."""
    if report.get("audit_gate") == "fail":
        return "error", f"Not released (KEEL_AUDIT_GATE=fail): {release_rule_text(report)}"
    warning = audit_warning(report)
    return ("warn", warning) if warning else None


def unrealigned_reason(method: str, has_alignment_adapter: bool) -> str | None:
    """Why an adapter is released as trained (None when realignment runs)."""
    if not has_alignment_adapter:
        return "the base model has no alignment adapter"
    if method == "none":
        return "realignment switched off for this job (the tenant's safety policy allows it)"
    return None


def verdict(report: dict) -> tuple[str, str]:
    """(kind, headline) of a realignment report (``RealignReport.to_dict()``): kind is ``failed``,
    ``disabled``, ``not_needed`` or ``realigned``; the headline is the verdict in words."""
    if report.get("audit_gate") == "fail":
        return "failed", "NOT RELEASED: the audit split misses the release rule"
    if not report.get("passed"):
        return "failed", "NOT RELEASED: no realignment met the targets"
    if report.get("method") == "none":
        return "disabled", "RELEASED as trained (realignment disabled)"
    if not report.get("trials") and str(report.get("reason", "")).startswith("not needed"):
        return "not_needed", "RELEASED: already as safe as the aligned model"
    how = (report.get("strength") or {}).get("strategy") or report.get("method")
    return "realigned", f"RELEASED: realigned with {how}"
