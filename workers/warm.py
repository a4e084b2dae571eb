"""The worker process's warm model cache (:class:`tuning.model_cache.ModelCache`), sized by
``KEEL_MODEL_CACHE_BYTES``: the training and realignment stages of every job on this worker borrow their base
model from it, so a job on a base model the worker has used recently starts without loading it."""

from __future__ import annotations

from core.config import get_settings
from tuning.model_cache import ModelCache

_cache: ModelCache | None = None


def model_cache() -> ModelCache:
    """The process's cache (rebuilt empty if the budget setting changed)."""
    global _cache
    budget = get_settings().model_cache_bytes
    if _cache is None or _cache.budget != budget:
        _cache = ModelCache(budget)
    return _cache
