"""Wilson 95 % intervals against published values, and the deterministic selection/audit split."""

from __future__ import annotations

import pytest

from tuning.safety.stats import interval, overlap, split_selection_audit, wilson


@pytest.mark.parametrize(
    "hits, n, lo, hi",
    [
        (0, 10, 0.0, 27.75),  # Wilson (1927); Newcombe (1998) table I: 0/10 -> 0.0000-0.2775
        (1, 29, 0.61, 17.18),  # Newcombe (1998): 1/29 -> 0.0061-0.1718
        (15, 148, 6.24, 16.05),  # Newcombe (1998): 15/148 -> 0.0624-0.1605
        (81, 263, 25.53, 36.62),  # Newcombe (1998): 81/263 -> 0.2553-0.3662
        (5, 10, 23.66, 76.34),
        (10, 10, 72.25, 100.0),
    ],
)
def test_wilson_matches_known_values(hits, n, lo, hi):
    got = wilson(hits, n)
    assert got[0] == pytest.approx(lo, abs=0.1) and got[1] == pytest.approx(hi, abs=0.1)


def test_interval_reads_a_percentage_and_is_none_when_unmeasured():
    assert interval(10.0, 10) == [1.8, 40.4]  # 1 of 10
    assert interval(float("nan"), 10) is None and interval(50.0, 0) is None
    # 112 prompts (SmolLM2's harmful split): one prompt is 0.9 points and the interval about +-6 around 11.6
    lo, hi = interval(100 * 13 / 112, 112)
    assert hi - lo == pytest.approx(11.9, abs=0.3)
    assert overlap([1, 5], [5, 9]) and not overlap([1, 4.9], [5, 9]) and overlap(None, [1, 2]) is None


def test_the_split_is_deterministic_disjoint_and_complete():
    prompts = [f"p{i}" for i in range(41)]
    sel, audit = split_selection_audit(prompts)
    assert (sel, audit) == split_selection_audit(list(prompts))
    assert len(sel) == 20 and len(audit) == 21 and not set(sel) & set(audit) and set(sel) | set(audit) == set(prompts)
    assert sel != prompts[:20]  # shuffled, so neither half is one end of the file
