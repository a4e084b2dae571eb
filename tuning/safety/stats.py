"""Honest numbers for the report (standard library only): Wilson score intervals on its rates, and the
deterministic split of held-out prompts into a selection half (the controller's trials) and an audit half (scored
once on what was chosen) for base models without dedicated audit files."""

from __future__ import annotations

import math
import random

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


def wilson(hits: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion ``hits``/``n``, in percent (95 % by default).

    Unlike the normal approximation it stays inside [0, 100] and is not empty at 0 or n hits; with n = 0 it is
    the whole range."""
    if n <= 0:
        return 0.0, 100.0
    p = hits / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denom = 1 + z * z / n
    return 100.0 * max(0.0, (centre - spread) / denom), 100.0 * min(1.0, (centre + spread) / denom)


def interval(rate_pct: float, n: int) -> list[float] | None:
    """The 95 % Wilson interval of a rate given in percent over ``n`` items, rounded for the report (None when
    the rate was not measured)."""
    if n <= 0 or math.isnan(rate_pct):
        return None
    lo, hi = wilson(round(rate_pct * n / 100.0), n)
    return [round(lo, 1), round(hi, 1)]


def overlap(a: list[float] | None, b: list[float] | None) -> bool | None:
    """Whether two intervals overlap (None when either is missing)."""
    if a is None or b is None:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def split_selection_audit(prompts: list[str], seed: int = 0) -> tuple[list[str], list[str]]:
    """(selection, audit): the prompts shuffled with ``seed`` and cut into two disjoint halves (the audit half gets
    the odd one). Deterministic, so every job on a base model chooses and reports on the same prompts."""
    shuffled = list(prompts)
    random.Random(seed).shuffle(shuffled)
    half = len(shuffled) // 2
    return shuffled[:half], shuffled[half:]
