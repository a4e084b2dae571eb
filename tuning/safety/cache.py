"""Values the realignment stage computes once per base model, alignment adapter and prompt set (the aligned
reference's scores, the screening direction): kept in a warm worker's memo and, optionally, on disk across
processes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


class Kept:
    """``memo[key]``, else the copy in ``cache_dir`` (keyed by the base model's files too), else ``compute()``,
    stored in both. ``base_signature``: what identifies the base model's files (a changed model misses)."""

    def __init__(self, memo: dict, cache_dir: str | None, base_signature: tuple) -> None:
        self.memo, self.cache_dir, self.base_signature = memo, cache_dir, base_signature

    def get(self, key: tuple, compute: Callable[[], Any]) -> Any:
        if key in self.memo:
            return self.memo[key]
        path = self._path(key)
        if path is not None and path.exists():
            with contextlib.suppress(Exception):  # unreadable: computed again and rewritten
                self.memo[key] = torch.load(path, weights_only=True)
                return self.memo[key]
        value = self.memo[key] = compute()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")  # workers share the directory (pids repeat)
            torch.save(value, tmp)
            os.replace(tmp, path)
        return value

    def _path(self, key: tuple) -> Path | None:
        if not self.cache_dir:
            return None
        digest = hashlib.sha256(repr((key, self.base_signature)).encode()).hexdigest()[:24]
        return Path(self.cache_dir) / f"{key[0]}-{digest}.pt"
