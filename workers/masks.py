"""Safety-neuron mask versions: computed on the worker queue, one current ready version per base model."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from sqlalchemy import select, update

from core.config import get_settings
from core.db import session_scope
from core.models import current_mask
from core.orm import BaseModel, SafetyMask, now
from core.schemas import MaskCreate
from models_store import get_store
from models_store.local import mask_key

log = logging.getLogger("keel.worker")


def _read_corpus(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def _corpus_for(mask: SafetyMask, model: BaseModel) -> list[dict]:
    if mask.corpus_file_id:
        from core.files import read_file_bytes
        from core.orm import File

        with session_scope() as s:
            return _read_corpus(read_file_bytes(s.get(File, mask.corpus_file_id)))
    return _read_corpus(Path(model.safety_data["safety_corpus"]).read_bytes())


def compute(mask_id: str) -> str:
    """Compute one mask version. Idempotent: a ready or running version is left alone."""
    with session_scope() as s:
        res = s.execute(update(SafetyMask).where(SafetyMask.id == mask_id, SafetyMask.status.in_(("queued", "failed")))
                        .values(status="running"))
        if res.rowcount != 1:
            return "skipped"
        mask = s.get(SafetyMask, mask_id)
        model = s.get(BaseModel, mask.base_model_id)
        s.expunge_all()
    key = mask_key(model.id, mask.version)
    out = get_store(get_settings().store_dir).path(key)
    started = time.monotonic()
    try:
        from tuning.safety import compute_safety_masks

        stats = compute_safety_masks(model.path, model.alignment_adapter, _corpus_for(mask, model), mask.method,
                                     mask.config, str(out), device=get_settings().device)
    except Exception as exc:
        log.exception("mask %s failed", mask_id)
        with session_scope() as s:
            row = s.get(SafetyMask, mask_id)
            row.status, row.error, row.finished_at = "failed", f"{type(exc).__name__}: {exc}", now()
        raise
    with session_scope() as s:
        row = s.get(SafetyMask, mask_id)
        row.status, row.stats, row.storage_key = "ready", stats, key
        row.compute_s, row.finished_at = round(time.monotonic() - started, 2), now()
    return "ready"


def ensure_mask(model_id: str) -> SafetyMask:
    """The current ready mask of a base model, computing the default version inline if there is none."""
    from core import models as svc

    with session_scope() as s:
        mask = current_mask(s, model_id)
        if mask is None:
            pending = s.scalar(select(SafetyMask).where(SafetyMask.base_model_id == model_id,
                                                        SafetyMask.status.in_(("queued", "failed")))
                               .order_by(SafetyMask.version.desc()).limit(1))
            mask = pending or svc.create_mask(s, s.get(BaseModel, model_id), MaskCreate(method="all"), None)
        mask_id, ready = mask.id, mask.status == "ready"
    if not ready and compute(mask_id) == "skipped":
        _wait_ready(mask_id)  # another worker is computing this version
    with session_scope() as s:
        mask = s.get(SafetyMask, mask_id)
        s.expunge(mask)
        return mask


def _wait_ready(mask_id: str, timeout_s: float = 3600, poll_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with session_scope() as s:
            status = s.get(SafetyMask, mask_id).status
        if status == "ready":
            return
        if status == "failed":
            raise RuntimeError(f"safety mask {mask_id} failed to compute")
        time.sleep(poll_s)
    raise TimeoutError(f"safety mask {mask_id} not ready after {timeout_s}s")
