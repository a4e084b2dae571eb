"""Adapter bundles: a zip of the PEFT adapter directory plus manifest.json with sha256 of every file."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

_FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # deterministic zips: same adapter -> same bytes


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_adapter_zip(
    adapter_dir: str | os.PathLike[str], dest: str | os.PathLike[str], info: dict[str, Any]
) -> dict[str, Any]:
    """Write ``dest`` (zip) from ``adapter_dir``; returns the manifest that is stored inside it."""
    adapter_dir = Path(adapter_dir)
    files = sorted(p for p in adapter_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    manifest = {**info, "files": {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size} for p in files}}
    tmp = Path(str(dest) + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in files:
            zf.writestr(zipfile.ZipInfo(p.name, _FIXED_TIME), p.read_bytes())
        zf.writestr(zipfile.ZipInfo("manifest.json", _FIXED_TIME), json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, dest)
    return manifest
