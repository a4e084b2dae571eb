"""Local filesystem backend. Every write is atomic: a temp file (or directory) in the destination's
folder, then one rename, so readers never see half-written data."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from tuning.atomic import atomic_dir


class LocalStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root not in p.parents:
            raise ValueError(f"key escapes the store: {key!r}")
        return p

    def _atomic(self, key: str, write: Callable[[BinaryIO], int]) -> int:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                n = write(fh)
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return n

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        def write(fh: BinaryIO) -> int:
            total = 0
            for chunk in chunks:
                fh.write(chunk)
                total += len(chunk)
            return total

        return self._atomic(key, write)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.put_stream(key, [data])

    def put_file(self, key: str, src: str | os.PathLike[str]) -> None:
        with open(src, "rb") as fh:
            self.put_stream(key, iter(lambda: fh.read(1 << 20), b""))

    def put_dir(self, prefix: str, src: str | os.PathLike[str]) -> None:
        # shutil.copy, not copy2: a stored object's mtime is when it was stored (the janitor's grace reads it)
        with atomic_dir(self._path(prefix)) as tmp:
            shutil.copytree(src, tmp, dirs_exist_ok=True, copy_function=shutil.copy)

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def get_dir(self, prefix: str, dest: str | os.PathLike[str]) -> None:
        src = self._path(prefix)
        if not src.is_dir():
            raise FileNotFoundError(prefix)
        with atomic_dir(dest) as tmp:
            shutil.copytree(src, tmp, dirs_exist_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def list_objects(self, prefix: str) -> Iterator[tuple[str, float]]:
        top = self._path(prefix)
        if not top.is_dir():
            return
        for folder, _, names in os.walk(top):
            for name in names:
                p = Path(folder) / name
                try:
                    mtime = p.stat().st_mtime
                except FileNotFoundError:  # renamed or removed meanwhile
                    continue
                yield p.relative_to(self.root).as_posix(), mtime

    def delete(self, key: str) -> None:
        p = self._path(key)
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists():
            p.unlink()
