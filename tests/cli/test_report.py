"""The printed safety summary states the reference, the targets and the verdict in words."""

from __future__ import annotations

from cli.report import summary

REPORT = {
    "method": "auto",
    "passed": True,
    "reason": "released with a warning: over-refusal 16.0 is above its target 14.5 (under the hard cap 24.5)",
    "reference": {"hs": 5.0, "fa": 0.0, "over_refusal": 9.5},
    "before": {"hs": 100.0, "fa": 100.0, "over_refusal": 0.0},
    "after": {"hs": 4.5, "fa": 100.0, "over_refusal": 16.0},
    "targets": {"hs_max": 10.0, "fa_min": 99.0, "over_refusal_max": 14.5, "over_refusal_cap": 24.5},
    "strength": {"strategy": "sn-repair(all, 2 epochs)"},
    "trials": [{}, {}, {}],
    "data_moderation": {"flagged_as_harmful": 41},
}


def test_summary_reads_as_a_verdict_with_reference_and_targets():
    text = summary(REPORT, n_train=400)
    assert "aligned reference" in text and "target" in text and "<= 10.0" in text and ">= 99.0" in text
    assert "RELEASED: realigned with sn-repair(all, 2 epochs) after 3 trials" in text
    assert "100.0% -> 4.5%" in text and "Warning: released with a warning" in text
    assert "41 of 400 training examples" in text and "{" not in text  # no Python dicts printed


def test_a_failed_report_says_not_released():
    text = summary({**REPORT, "passed": False, "reason": "targets missed: hs"})
    assert "NOT RELEASED" in text and "targets missed: hs" in text and "Warning" not in text


def test_an_unrealigned_release_says_so():
    unrealigned = {**REPORT, "method": "none", "released_unrealigned": True, "trials": []}
    text = summary({**unrealigned, "unrealigned_reason": "realignment switched off for this job"})
    assert "Released UNREALIGNED" in text and "realignment switched off for this job" in text
    assert "UNREALIGNED" not in summary(REPORT)


def test_rates_carry_their_intervals_and_the_release_rule_is_stated():
    ci = {"hs": [2.0, 9.0], "fa": [95.0, 100.0], "over_refusal": [10.0, 23.0]}
    report = {
        **REPORT,
        "split": "audit",
        "after": {**REPORT["after"], "ci": ci},
        "release_rule": {
            "rule": "after HS <= reference HS + 5",
            "split": "audit",
            "after_hs": 4.5,
            "reference_hs": 5.0,
            "holds_on_point_estimate": True,
            "intervals_overlap": True,
        },
    }
    text = summary(report)
    assert "audit split" in text and "4.5 [2.0-9.0]" in text and "16.0 [10.0-23.0]" in text
    assert "Release rule (after HS <= reference HS + 5, audit split): holds" in text and "intervals overlap" in text
