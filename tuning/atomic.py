"""Directories that appear complete or not at all: written in a temporary sibling, then renamed into place.

The one ``atomic_dir`` of the house: training checkpoints, adapters, masks, the model builds (testbed,
realmodel) and the artifact store's directories (models_store) all write through it; ``cached_build`` is the
one lifecycle of a cached, locked model build. Standard library only.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_dir(dest: str | os.PathLike, prefix: str | None = None) -> Iterator[Path]:
    """Yield a fresh temporary directory next to ``dest`` (named ``prefix`` + random, default ``.<name>.``).
    When the block succeeds it takes ``dest``'s place by one rename; an existing ``dest`` is first renamed
    aside (under the temporary name + ``.old``) and removed after, so ``dest`` is never seen half-deleted and
    is put back if the rename fails. When the block raises, the temporary directory is removed and ``dest`` is
    left as it was."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix or f".{dest.name}.", dir=dest.parent))
    try:
        yield tmp
        _swap(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap(tmp: Path, dest: Path) -> None:
    old = tmp.with_name(f"{tmp.name}.old") if dest.exists() else None
    if old is not None:
        os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except BaseException:
        if old is not None:
            os.replace(old, dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


BUILD_PREFIX = ".build-"


def cached_build(dest: str | os.PathLike, build: Callable[[Path], object], force: bool = False) -> Path:
    """``dest``, built once by ``build(tmp)`` unless ``dest/manifest.json`` exists (a build writes its manifest
    last). Under an exclusive lock on ``dest``'s folder (``.lock``), so concurrent callers build once: stale
    ``.build-*`` directories (left by a killed build; none runs while we hold the lock) are removed, ``force``
    removes ``dest``, and the build fills a ``.build-*`` sibling renamed into place (``atomic_dir``); SIGTERM
    during it raises SystemExit, so the half-built directory is removed on the way out."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for stale in dest.parent.glob(f"{BUILD_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)
        if force and dest.exists():
            shutil.rmtree(dest)
        if not (dest / "manifest.json").exists():
            with _terminate_cleanly(), atomic_dir(dest, prefix=BUILD_PREFIX) as tmp:
                build(tmp)
    return dest


@contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """SIGTERM raises SystemExit in the block (main thread only: signals can be set nowhere else)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
