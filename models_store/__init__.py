"""Artifact storage: uploaded files, job work dirs, adapters, masks. No DB, web or torch imports."""
from models_store.local import LocalStore, Store, get_store
from models_store.manifest import build_adapter_zip, sha256_file

__all__ = ["LocalStore", "Store", "get_store", "build_adapter_zip", "sha256_file"]
