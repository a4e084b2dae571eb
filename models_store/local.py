"""Local filesystem store. Keys are relative POSIX paths; every write is atomic (temp file + rename)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol


class Store(Protocol):
    def path(self, key: str) -> Path: ...
    def put_bytes(self, key: str, data: bytes) -> Path: ...
    def put_file(self, key: str, src: str | os.PathLike) -> Path: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...


class LocalStore:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root not in p.parents and p != self.root:
            raise ValueError(f"key escapes the store: {key!r}")
        return p

    def _atomic(self, key: str, write) -> Path:  # noqa: ANN001
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return dest

    def put_bytes(self, key: str, data: bytes) -> Path:
        return self._atomic(key, lambda fh: fh.write(data))

    def put_file(self, key: str, src: str | os.PathLike) -> Path:
        def copy(fh) -> None:  # noqa: ANN001
            with open(src, "rb") as sfh:
                shutil.copyfileobj(sfh, fh, 1 << 20)

        return self._atomic(key, copy)

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def delete(self, key: str) -> None:
        p = self.path(key)
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists():
            p.unlink()


def get_store(root: str | os.PathLike) -> LocalStore:
    return LocalStore(root)


def file_key(tenant_id: str, file_id: str) -> str:
    return f"files/{tenant_id}/{file_id}.jsonl"


def job_key(job_id: str, *parts: str) -> str:
    return "/".join(("jobs", job_id, *parts))


def mask_key(base_model_id: str, version: int) -> str:
    return f"masks/{base_model_id}/v{version}"
