"""Identifiers and timestamps in the OpenAI wire format: prefixed, time-sortable ids; Unix seconds."""

from __future__ import annotations

import secrets
import time


def now() -> int:
    return int(time.time())


def new_id(prefix: str) -> str:
    """Time-sortable id: 13 hex digits of microseconds since the epoch, then 11 random hex digits.

    Lists are ordered by (created_at, id); created_at is whole seconds as in the OpenAI wire format, so
    the id must carry the sub-second order or two objects created in the same second list in random order.
    """
    return f"{prefix}{time.time_ns() // 1000:013x}{secrets.token_hex(6)[:11]}"
