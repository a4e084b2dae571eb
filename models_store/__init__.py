"""Artifact storage: uploaded files, adapters, masks, report plots. No DB, web or torch imports."""

from models_store.keys import file_key, job_key, mask_key
from models_store.local import LocalStore
from models_store.manifest import build_adapter_zip, sha256_file
from models_store.store import Store

__all__ = [
    "LocalStore",
    "Store",
    "build_adapter_zip",
    "file_key",
    "job_key",
    "mask_key",
    "sha256_file",
]
