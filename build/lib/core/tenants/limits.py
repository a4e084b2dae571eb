"""Per-key request rate limiting: a token bucket per API key, in this process (each API process enforces
its own share; put a shared limiter in front of several processes if exact global limits matter)."""

from __future__ import annotations

import math
import threading
import time

from core.config import get_settings
from core.errors import RateLimited


class TokenBuckets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, last refill)

    def take(self, key_id: str) -> None:
        rate, burst = get_settings().rate_limit_rps, float(get_settings().rate_limit_burst)
        if rate <= 0:
            return
        with self._lock:
            t = time.monotonic()
            tokens, last = self._buckets.get(key_id, (burst, t))
            tokens = min(burst, tokens + (t - last) * rate)
            if tokens < 1.0:
                self._buckets[key_id] = (tokens, t)
                raise RateLimited(
                    f"Rate limit of {rate:g} requests/s exceeded for this API key.",
                    retry_after_s=max(1, math.ceil((1.0 - tokens) / rate)),
                )
            self._buckets[key_id] = (tokens - 1.0, t)


BUCKETS = TokenBuckets()
