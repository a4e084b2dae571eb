"""Wilson score intervals for the rates the real-model bench reports (a tiny local helper; pure Python).

``wilson(k, n)`` is the 95 % interval of k successes in n trials, in percent; ``n_for_half_width(p, w)`` is
how many prompts make the normal-approximation 95 % half-width at most ``w`` points at rate ``p`` (the audit
split's sizing: p = 0.5, w = 5 needs 385; p = 0.15 needs 196)."""

from __future__ import annotations

import math

from tuning.safety.stats import Z95
from tuning.safety.stats import wilson as _wilson


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """(low, high) in percent, rounded to one decimal; (0, 100) when n is 0 (the service's Wilson interval)."""
    lo, hi = _wilson(k, n, z)
    return round(lo, 1), round(hi, 1)


def half_width(k: int, n: int) -> float:
    lo, hi = wilson(k, n)
    return round((hi - lo) / 2, 1)


def n_for_half_width(p: float, w_points: float, z: float = Z95) -> int:
    """Smallest n whose normal-approximation half-width z·sqrt(p(1-p)/n) is <= w_points / 100."""
    w = w_points / 100
    return math.ceil(z * z * p * (1 - p) / (w * w))


def rate(k: int, n: int) -> dict:
    """{"value", "low", "high", "n"}: a percentage with its Wilson 95 % interval."""
    lo, hi = wilson(k, n)
    return {"value": round(100.0 * k / n, 1) if n else 0.0, "low": lo, "high": hi, "n": n}


def fmt_rate(r: dict) -> str:
    """A :func:`rate` as 'value [low, high]'."""
    return f"{r['value']:5.1f} [{r['low']:.1f}, {r['high']:.1f}]"
