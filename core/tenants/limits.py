"""Per-key request rate limiting: a token bucket per API key, in this process (each API process enforces
its own share; put a shared limiter in front of several processes if exact global limits matter)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from core.config import get_settings
from core.errors import RateLimited

MAX_BUCKETS = 100_000  # full buckets are forgotten beyond this many keys/addresses (memory stays bounded)


def _per_key() -> tuple[float, int]:
    return get_settings().rate_limit_rps, get_settings().rate_limit_burst


class TokenBuckets:
    """Token buckets by name (an API key id, a client address); ``limits`` gives (rate per s, burst)."""

    def __init__(self, limits: Callable[[], tuple[float, int]] = _per_key, what: str = "this API key") -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, last refill)
        self._limits, self._what = limits, what

    def _level(self, name: str, t: float) -> float:
        rate, burst = self._limits()
        tokens, last = self._buckets.get(name, (float(burst), t))
        return min(float(burst), tokens + (t - last) * rate)

    def exhausted(self, name: str) -> int | None:
        """Seconds until ``name`` has a token again, or None when it has one now (nothing is taken)."""
        rate, _ = self._limits()
        if rate <= 0:
            return None
        with self._lock:
            tokens = self._level(name, time.monotonic())
        return None if tokens >= 1.0 else max(1, math.ceil((1.0 - tokens) / rate))

    def take(self, name: str) -> None:
        rate, _ = self._limits()
        if rate <= 0:
            return
        with self._lock:
            t = time.monotonic()
            tokens = self._level(name, t)
            if len(self._buckets) >= MAX_BUCKETS and name not in self._buckets:
                self._forget_full(t)
            if tokens < 1.0:
                self._buckets[name] = (tokens, t)
                raise RateLimited(
                    f"Rate limit of {rate:g} requests/s exceeded for {self._what}.",
                    retry_after_s=max(1, math.ceil((1.0 - tokens) / rate)),
                )
            self._buckets[name] = (tokens - 1.0, t)

    def _forget_full(self, t: float) -> None:
        _, burst = self._limits()
        for name in [n for n in self._buckets if self._level(n, t) >= burst]:
            del self._buckets[name]
        if len(self._buckets) >= MAX_BUCKETS:  # still full of spent buckets: forget the oldest half
            for name, _ in sorted(self._buckets.items(), key=lambda kv: kv[1][1])[: MAX_BUCKETS // 2]:
                del self._buckets[name]


BUCKETS = TokenBuckets()
