"""The realignment stage's report: what it measured, what it chose and why, as a JSON-serialisable dict, and its
verdict in words (for the printed summary and the PNG). Standard library only."""

from __future__ import annotations

from dataclasses import dataclass, field


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
        }


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
    if not report.get("passed"):
        return "failed", "NOT RELEASED: no realignment met the targets"
    if report.get("method") == "none":
        return "disabled", "RELEASED as trained (realignment disabled)"
    if not report.get("trials") and str(report.get("reason", "")).startswith("not needed"):
        return "not_needed", "RELEASED: already as safe as the aligned model"
    how = (report.get("strength") or {}).get("strategy") or report.get("method")
    return "realigned", f"RELEASED: realigned with {how}"
