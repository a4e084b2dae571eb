"""The configured artifact store (local filesystem today; any models_store.Store backend plugs in here)."""

from __future__ import annotations

from core.config import get_settings
from models_store import LocalStore, Store


def get_store() -> Store:
    return LocalStore(get_settings().store_dir)
