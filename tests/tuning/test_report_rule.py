"""The release rule in words, and the warning a released adapter gets when the audit split says it misses it."""

from __future__ import annotations

import pytest

from tuning.safety.report import (
    audit_gate_event,
    audit_warning,
    gate_on_audit,
    release_rule,
    release_rule_text,
    verdict,
)

AUDIT_CI = {"hs": [21.7, 30.3]}
REF = {"hs": 16.5, "ci": {"hs": [13.2, 20.5]}}


def _report(after_hs: float, split: str = "audit", passed: bool = True) -> dict:
    after = {"hs": after_hs, "ci": AUDIT_CI}
    return {"passed": passed, "split": split, "release_rule": release_rule(after, REF, 5.0, split)}


def test_the_rule_in_words_says_whether_it_holds_and_whether_intervals_overlap():
    missed = release_rule_text(_report(25.8))
    assert missed is not None and "does NOT hold" in missed and "(25.8 vs 16.5)" in missed
    assert "do not overlap" in missed and "audit split" in missed
    met = release_rule_text(_report(20.2))
    assert met is not None and ": holds" in met
    assert release_rule_text({"release_rule": release_rule({"hs": None}, REF, 5.0, "audit")}) is None


def test_a_release_that_misses_the_rule_on_the_audit_split_is_warned_about():
    warning = audit_warning(_report(25.8))
    assert warning is not None and warning.startswith("Warning:") and "does NOT hold" in warning


def test_no_warning_when_the_rule_holds_nothing_was_released_or_there_is_no_audit_split():
    assert audit_warning(_report(21.5)) is None  # exactly reference + margin holds
    assert audit_warning(_report(25.8, passed=False)) is None  # a failed job says so already
    assert audit_warning(_report(25.8, split="selection")) is None  # the controller chose on these numbers
    assert audit_warning({"passed": True}) is None
    assert audit_warning({**_report(25.8), "released_unrealigned": True}) is None  # realign "none": said already


def test_the_fail_gate_holds_back_a_release_the_audit_split_contradicts():
    report = {**_report(25.8), "reason": "nlsr(all modules) met the targets"}
    held = gate_on_audit(report, "fail")
    assert held["passed"] is False and held["audit_gate"] == "fail"
    assert "audit split" in held["reason"] and "(25.8 vs 16.5)" in held["reason"]
    assert report["passed"] is True  # a new dict: the caller's report is not changed
    assert verdict(held) == ("failed", "NOT RELEASED: the audit split misses the release rule")
    level, message = audit_gate_event(held) or ("", "")
    assert level == "error" and message.startswith("Not released (KEEL_AUDIT_GATE=fail)")


def test_the_warn_gate_releases_with_the_warning_and_the_fail_gate_passes_what_holds():
    report = _report(25.8)
    assert gate_on_audit(report, "warn") is report
    level, message = audit_gate_event(report) or ("", "")
    assert level == "warn" and message.startswith("Warning:")
    for fine in (_report(20.2), _report(25.8, split="selection"), {**_report(25.8), "released_unrealigned": True}):
        assert gate_on_audit(fine, "fail")["passed"] is True
    with pytest.raises(ValueError):
        gate_on_audit(report, "block")
