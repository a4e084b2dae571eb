"""Safety-neuron mask versions, computed on the worker queue and cached per base model in the store: the
``compute_masks`` task's body (:func:`compute`) and what a job's realignment stage asks for (:func:`ensure_mask`).
Not a pipeline stage itself: it lives beside the tasks, and the realignment stage calls it."""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.base_models import service as models
from core.base_models.states import MaskStatus
from core.config import get_settings
from core.db import session_scope
from core.files.service import read_by_id
from core.storage import get_store
from models_store import mask_key
from tuning.rows import read_jsonl
from workers.lease import Heartbeat, worker_id

log = logging.getLogger("keel.worker")


def _corpus(corpus_file_id: str | None, default_path: str | None) -> list[dict[str, Any]]:
    if corpus_file_id:
        with session_scope() as s:
            data = read_by_id(s, corpus_file_id)
    else:
        data = Path(default_path or "").read_bytes()
    return read_jsonl(data)


def compute(mask_id: str) -> str:
    """Compute one mask version under a lease (renewed while computing). Idempotent: a ready version, or one
    another worker computes and keeps renewing, is left alone; a version whose worker died is taken over."""
    owner = worker_id()
    with session_scope() as s:
        if not models.claim_mask(s, mask_id, owner):
            return "skipped"
        mask = models.get_mask(s, mask_id)
        model = models.require_model(s, mask.base_model_id)
        s.expunge_all()
    # each computation writes its own key; only the lease owner's is recorded, a superseded one is removed
    key = f"{mask_key(model.id, mask.version)}-{uuid.uuid4().hex[:12]}"
    out = get_settings().scratch_dir / "masks" / key.replace("/", "_")
    started = time.monotonic()
    with Heartbeat(mask_id, owner, renew=models.renew_mask) as hb:
        try:
            stats = _compute(mask, model, out)
            if hb.lost.is_set():
                return _superseded(mask_id, None)
            get_store().put_dir(key, out)
        except Exception as exc:
            log.exception("mask %s failed", mask_id)
            with session_scope() as s:
                models.mask_failed(s, mask_id, owner, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            shutil.rmtree(out, ignore_errors=True)
        with session_scope() as s:
            ours = models.mask_ready(s, mask_id, owner, stats, key, time.monotonic() - started)
    return "ready" if ours else _superseded(mask_id, key)


def _compute(mask: Any, model: Any, out: Path) -> dict[str, Any]:
    from tuning.safety import compute_safety_masks

    corpus = _corpus(mask.corpus_file_id, model.safety_data.get("safety_corpus"))
    return compute_safety_masks(
        model.path, model.alignment_adapter, corpus, mask.method, mask.config, str(out), device=get_settings().device
    )


def _superseded(mask_id: str, key: str | None) -> str:
    log.warning("mask %s was taken over by another worker (our lease expired); our result is dropped", mask_id)
    if key is not None:
        get_store().delete(key)
    return "superseded"


def local_copy(storage_key: str) -> Path:
    """The mask version's files on this worker (downloaded once from the store)."""
    dest = get_settings().scratch_dir / "mask-cache" / storage_key.replace("/", "_")
    if not dest.exists():
        get_store().get_dir(storage_key, dest)
    return dest


@dataclass(frozen=True)
class MaskRef:
    """The mask version a job uses."""

    id: str
    version: int
    method: str
    storage_key: str

    def summary(self) -> dict[str, Any]:
        """What the report records about it."""
        return {"id": self.id, "version": self.version, "method": self.method}


MASK_TRIES = 3


def ensure_mask(model_id: str, notify: Callable[[str], None] | None = None) -> MaskRef:
    """The ready mask a job uses, with its files on this worker, computing it inline if needed (``notify``
    hears about that first, so a job's events say why it waits). A ready version whose bytes vanished from the
    store is marked broken and the job waits for the next best: an older ready version, or the broken one
    recomputed (under the usual lease). Never a version without a storage key."""
    say = notify or (lambda _: None)
    for _ in range(MASK_TRIES):
        with session_scope() as s:
            mask = models.mask_for_job(s, model_id)
            mask_id, version, ready = mask.id, mask.version, mask.status == MaskStatus.READY
        if not ready:
            say(
                f"Computing safety-neuron masks v{version} for base model {model_id} "
                "(once per mask version; later jobs on this model reuse them)"
            )
            if compute(mask_id) != "ready":
                _wait_ready(mask_id)  # another worker computes (or took over) this version
        with session_scope() as s:
            mask = models.get_mask(s, mask_id)
            found = MaskRef(mask.id, mask.version, mask.method, mask.storage_key or "")
        if found.storage_key and _fetched(found.storage_key):
            return found
        with session_scope() as s:
            models.mask_broken(s, mask_id, f"stored files {found.storage_key!r} are missing")
        say(f"Safety-neuron masks v{version} of base model {model_id} are missing from the store; falling back")
    raise RuntimeError(f"no usable safety mask for base model {model_id} after {MASK_TRIES} tries")


def _fetched(storage_key: str) -> bool:
    try:
        local_copy(storage_key)
    except FileNotFoundError:
        log.warning("mask files %s are missing from the store", storage_key)
        return False
    return True


def _wait_ready(mask_id: str, timeout_s: float = 3600, poll_s: float = 2.0) -> None:
    """Wait for another worker's computation; take it over if that worker stops renewing its lease."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with session_scope() as s:
            status = models.get_mask(s, mask_id).status
        if status in (MaskStatus.READY, MaskStatus.BROKEN):
            return  # ensure_mask checks the files (and recomputes a broken version)
        if status == MaskStatus.FAILED:
            raise RuntimeError(f"safety mask {mask_id} failed to compute")
        if compute(mask_id) == "ready":  # claims only a queued version or an expired lease
            return
        time.sleep(poll_s)
    raise TimeoutError(f"safety mask {mask_id} not ready after {timeout_s}s")
