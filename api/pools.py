"""A bounded thread pool of its own for the API's CPU-heavy work (upload validation, token counting for job
creation and dry runs): however many such requests a tenant sends, they queue here and never occupy the
request thread pool that every other route (lists, retrieves, /healthz's neighbours) runs on."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from core.config import get_settings

P = ParamSpec("P")
T = TypeVar("T")
THREAD_PREFIX = "keel-validation"
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def validation_pool() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(get_settings().validation_workers, thread_name_prefix=THREAD_PREFIX)
        return _pool


async def in_validation_pool(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn`` in the validation pool and await it from the event loop."""
    return await asyncio.get_running_loop().run_in_executor(validation_pool(), functools.partial(fn, *args, **kwargs))
