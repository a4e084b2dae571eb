"""Janitor for the artifact store: objects that no row references are removed once older than a grace age.

They are left by a crash between a store write and the commit of its row (an upload, an attempt's artifact
or a mask version), by an attempt whose lease was taken over, or by a delete whose byte removal failed. The
grace age keeps in-flight writes safe: bytes are stored before their row commits. The store is listed before
the rows are read, so a row committed after the listing cannot be missed. Only the service's own prefixes are
swept in the store; the scratch tree follows core.retention's rules (finished jobs' directories, unused mask
copies), as do expired artifacts and the upload ledger.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from sqlalchemy.orm import Session

from core import retention
from core.base_models import repository as models_repo
from core.config import get_settings
from core.files import repository as files_repo
from core.results import repository as results_repo
from core.storage import get_store

PREFIXES = ("files", "jobs", "masks")
BATCH = 500

log = logging.getLogger("keel.janitor")


def _ancestors(key: str) -> list[str]:
    """The key and every folder above it ("masks/m/v1-x/a.pt" → itself, "masks/m/v1-x", "masks/m", "masks"):
    a row may name a single object or a folder (a mask version)."""
    parts = key.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _batches(keys: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(keys), BATCH):
        yield keys[i : i + BATCH]


def _referenced(session: Session, keys: list[str]) -> set[str]:
    out: set[str] = set()
    for chunk in _batches(keys):
        for repo in (files_repo, results_repo, models_repo):
            out |= repo.referenced_keys(session, chunk)
    return out


def orphans(session: Session, grace_s: float, t: float | None = None) -> list[str]:
    """Keys under the service's prefixes older than ``grace_s`` that no row references (nor a folder above)."""
    t = time.time() if t is None else t
    store = get_store()
    old = sorted(k for prefix in PREFIXES for k, mtime in store.list_objects(prefix) if t - mtime > grace_s)
    referenced = _referenced(session, sorted({a for k in old for a in _ancestors(k)}))
    return [k for k in old if referenced.isdisjoint(_ancestors(k))]


def sweep(session: Session, grace_s: float | None = None, dry_run: bool = False) -> list[str]:
    """Remove (or with ``dry_run`` only list) the store's orphaned objects; returns their keys. A real sweep
    also applies retention (core.retention): scratch of finished jobs, expired artifacts, the upload ledger."""
    grace = get_settings().janitor_grace_s if grace_s is None else grace_s
    if not dry_run:  # first, so the bytes of the versions it expires are orphans of this very sweep
        retention.expire_masks(session, get_settings().mask_versions_kept, grace)
    keys = orphans(session, grace)
    if not dry_run:
        retention.sweep_scratch(session, grace)
        retention.expire_artifacts(session, get_settings().artifact_ttl_days)
        retention.prune_upload_ledger(session)
        store = get_store()
        for key in keys:
            store.delete(key)
        if keys:
            log.warning("janitor removed %d orphaned store object(s), e.g. %s", len(keys), keys[0])
    return keys
