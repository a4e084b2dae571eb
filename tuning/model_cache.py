"""Base models kept in memory across jobs (a warm worker): an LRU bounded by a byte budget.

An entry is the loaded model (eval mode, as :func:`tuning.modeling.load_model` returns it), its tokenizer and
a ``memo`` dict for whatever else is derived from that model alone and worth keeping with it (safety masks,
the aligned reference's scores). Jobs borrow the model: training attaches a LoRA to it in place, so
:meth:`ModelCache.borrow` detaches it afterwards (:func:`tuning.lora.detach_lora`) and drops the entry if the
borrower raised, so what stays cached is always the pristine base model.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Loader = Callable[[str, str | None], tuple[Any, Any]]


@dataclass
class Loaded:
    model: Any
    tok: Any
    nbytes: int
    memo: dict = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)  # one borrower at a time


def model_bytes(model: Any) -> int:
    """Bytes held by the model's parameters and buffers."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def dir_signature(path: str | os.PathLike) -> tuple:
    """(name, size, mtime_ns) of every file in a directory tree: a model rewritten in place is a new key."""
    root = Path(path)
    if not root.is_dir():
        return ()
    return tuple(
        (str(p.relative_to(root)), (st := p.stat()).st_size, st.st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    )


def _default_loader(path: str, device: str | None) -> tuple[Any, Any]:
    from tuning.modeling import load_model

    return load_model(path, device=device)


class ModelCache:
    """``get(path, device)`` returns the cached :class:`Loaded` (the same object on a hit) or loads it; the least
    recently used entries are evicted while the cached bytes exceed ``budget_bytes``. A model larger than the
    whole budget (or any model when the budget is 0) is loaded for the caller and not kept."""

    def __init__(self, budget_bytes: int, loader: Loader | None = None) -> None:
        self.budget = budget_bytes
        self.loader = loader or _default_loader
        self._entries: OrderedDict[tuple, Loaded] = OrderedDict()
        self._lock = threading.RLock()
        self.hits = self.misses = 0

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: str) -> bool:
        return any(k[0] == str(Path(path).resolve()) for k in self._entries)

    def _key(self, path: str, device: str | None) -> tuple:
        return (str(Path(path).resolve()), device, dir_signature(path))

    def get(self, path: str, device: str | None = None) -> Loaded:
        key = self._key(path, device)
        with self._lock:
            if key in self._entries:
                self.hits += 1
                self._entries.move_to_end(key)
                return self._entries[key]
            self.misses += 1
            model, tok = self.loader(path, device)
            entry = Loaded(model, tok, model_bytes(model))
            if entry.nbytes <= self.budget:
                self._entries[key] = entry
                self._evict()
            return entry

    def _evict(self) -> None:
        while self.nbytes > self.budget and len(self._entries) > 1:
            self._entries.popitem(last=False)

    def drop(self, entry: Loaded) -> None:
        with self._lock:
            for key in [k for k, v in self._entries.items() if v is entry]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    @contextmanager
    def borrow(self, path: str, device: str | None = None) -> Iterator[Loaded]:
        """The cached entry for a job that may attach a LoRA to its model: detached again afterwards; dropped
        from the cache if the job raised (its model may be half-modified)."""
        from tuning.lora import detach_lora

        entry = self.get(path, device)
        with entry.lock:
            try:
                yield entry
            except BaseException:
                self.drop(entry)
                raise
            detach_lora(entry.model)
