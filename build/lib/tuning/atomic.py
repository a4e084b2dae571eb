"""Directories that appear complete or not at all: written in a temporary sibling, then renamed into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_dir(dest: str | os.PathLike, prefix: str | None = None) -> Iterator[Path]:
    """Yield a fresh temporary directory next to ``dest`` (named ``prefix`` + random, default ``.<name>.``).
    When the block succeeds it replaces ``dest`` (an existing ``dest`` is removed first) by one rename;
    when it raises, the temporary directory is removed and ``dest`` is left as it was."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix or f".{dest.name}.", dir=dest.parent))
    try:
        yield tmp
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
