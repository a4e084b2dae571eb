"""Base models (admin-registered) and their safety-neuron mask versions: the one home of the mask lifecycle
(queued → running → ready | failed; the newest ready version is current)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core.base_models import repository as repo
from core.base_models.inspect import is_model_dir, module_leaf_names
from core.base_models.models import BaseModelRecord, SafetyMask
from core.base_models.schemas import BaseModelCreate, MaskCreate
from core.base_models.states import CLAIMABLE, MaskStatus
from core.config import get_settings
from core.errors import Conflict, InvalidRequest, NotFound
from core.ids import now
from core.lora import LoraOptions
from core.queue import COMPUTE_MASKS, send_after_commit
from tuning.plan import ModelShape
from tuning.specs import DEFAULT_TARGETS


def require_model(session: Session, model_id: str) -> BaseModelRecord:
    model = repo.get(session, model_id)
    if model is None:
        raise NotFound("base model", model_id, param="model")
    return model


def list_models(session: Session) -> list[BaseModelRecord]:
    return repo.all_models(session)


def _context_length(path: str, default: int) -> int:
    cfg = Path(path) / "config.json"
    if cfg.exists():
        return int(json.loads(cfg.read_text()).get("max_position_embeddings", default))
    return default


def _check_paths(body: BaseModelCreate) -> None:
    if not is_model_dir(body.path):
        raise InvalidRequest(
            "path must be a model directory on the workers' shared storage (with config.json); "
            "download hub models first, then register their directory.",
            param="path",
        )
    if body.alignment_adapter and not (Path(body.alignment_adapter) / "adapter_config.json").exists():
        raise InvalidRequest(
            "alignment_adapter must be a PEFT adapter directory (adapter_config.json missing).",
            param="alignment_adapter",
        )
    for name, path in body.safety_data.items():
        if not Path(path).exists():
            raise InvalidRequest(f"safety_data['{name}'] does not exist: {path}", param="safety_data")


def register_model(session: Session, body: BaseModelCreate, replace: bool = False) -> BaseModelRecord:
    existing = repo.get(session, body.id)
    if existing is not None and not replace:
        raise Conflict(f"Base model '{body.id}' is already registered.", code="model_exists")
    _check_paths(body)
    row = existing or BaseModelRecord(id=body.id)
    row.path, row.alignment_adapter, row.chat_template = body.path, body.alignment_adapter, body.chat_template
    row.context_length = _context_length(body.path, body.context_length)
    row.safety_data = dict(body.safety_data)
    repo.add(session, row)
    return row


def set_reference_scores(session: Session, model_id: str, scores: dict[str, Any]) -> None:
    require_model(session, model_id).reference_scores = dict(scores)


def lora_for_job(model: BaseModelRecord, opts: LoraOptions) -> dict[str, Any]:
    """LoRA config of a job. With an alignment adapter the job continues it, so rank and targets must match."""
    if not model.alignment_adapter:
        r = opts.r or 8
        _check_targets(model, opts.target_modules)
        return {
            "r": r,
            "alpha": opts.alpha or 2 * r,
            "dropout": opts.dropout,
            "target_modules": opts.target_modules or list(DEFAULT_TARGETS),
            "init_adapter": None,
        }
    cfg = json.loads((Path(model.alignment_adapter) / "adapter_config.json").read_text())
    r, alpha, targets = int(cfg["r"]), int(cfg["lora_alpha"]), sorted(cfg["target_modules"])
    for name, asked, have in (("r", opts.r, r), ("alpha", opts.alpha, alpha)):
        if asked is not None and asked != have:
            raise InvalidRequest(
                f"lora.{name}={asked} conflicts with the base model's alignment adapter "
                f"({name}={have}); jobs continue that adapter so realignment can transplant "
                "neurons element-wise.",
                param=f"lora.{name}",
            )
    if opts.target_modules is not None and sorted(opts.target_modules) != targets:
        raise InvalidRequest(
            f"lora.target_modules must be {targets} (the alignment adapter's).", param="lora.target_modules"
        )
    return {
        "r": r,
        "alpha": alpha,
        "dropout": opts.dropout,
        "target_modules": targets,
        "init_adapter": model.alignment_adapter,
    }


def _check_targets(model: BaseModelRecord, targets: list[str] | None) -> None:
    available = module_leaf_names(model.path) if targets else set()
    unknown = sorted(set(targets or ()) - available) if available else []
    if unknown:
        raise InvalidRequest(
            f"lora.target_modules {unknown} are not modules of {model.id}; it has {sorted(available)}.",
            param="lora.target_modules",
        )


def current_mask(session: Session, model_id: str) -> SafetyMask | None:
    return repo.newest_mask(session, model_id, frozenset({MaskStatus.READY}))


def list_masks(session: Session, model_id: str) -> list[SafetyMask]:
    require_model(session, model_id)
    return repo.masks_of(session, model_id)


def _digest(obj: object) -> str:
    data = obj if isinstance(obj, bytes) else json.dumps(obj, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()


def create_mask(session: Session, model: BaseModelRecord, body: MaskCreate, corpus: bytes | None) -> SafetyMask:
    """Queue a new mask version (computed by a worker)."""
    if not model.alignment_adapter:
        raise InvalidRequest("Safety masks need a base model with an alignment adapter.", param="model")
    if corpus is None:
        path = model.safety_data.get("safety_corpus")
        if not path:
            raise InvalidRequest(
                "No corpus_file given and the model has no default safety corpus.", param="corpus_file"
            )
        corpus = Path(path).read_bytes()
    row = SafetyMask(
        base_model_id=model.id,
        version=repo.next_version(session, model.id),
        method=body.method,
        config=body.config,
        config_hash=_digest({"method": body.method, **body.config}),
        corpus_hash=_digest(corpus),
        corpus_file_id=body.corpus_file,
        status=MaskStatus.QUEUED,
    )
    repo.add(session, row)
    return row


def mask_for_job(session: Session, model_id: str) -> SafetyMask:
    """The mask a job should use: the current ready version, else the newest pending one, else a new default."""
    mask = current_mask(session, model_id) or repo.newest_mask(session, model_id, CLAIMABLE | {MaskStatus.RUNNING})
    return mask or create_mask(session, require_model(session, model_id), MaskCreate(method="all"), None)


def claim_mask(session: Session, mask_id: str, owner: str) -> bool:
    """Start computing a version, or take over one whose worker stopped renewing its lease."""
    return repo.claim_mask(session, mask_id, owner, get_settings().job_lease_s)


def renew_mask(session: Session, mask_id: str, owner: str) -> bool:
    """Extend our lease on a version being computed; False once it was taken over."""
    return repo.renew_mask(session, mask_id, owner, get_settings().job_lease_s)


def mask_ready(
    session: Session, mask_id: str, owner: str, stats: dict[str, Any], storage_key: str, seconds: float
) -> bool:
    return repo.finish_mask(
        session,
        mask_id,
        owner,
        status=MaskStatus.READY,
        stats=stats,
        storage_key=storage_key,
        compute_s=round(seconds, 2),
    )


def mask_broken(session: Session, mask_id: str, error: str) -> bool:
    """A ready version whose bytes are gone is no longer current (jobs fall back to an older ready version, or
    recompute it). Only a ready version changes; False when another worker got there first."""
    return repo.mark_broken(session, mask_id, error)


def mask_failed(session: Session, mask_id: str, owner: str, error: str) -> bool:
    return repo.finish_mask(session, mask_id, owner, status=MaskStatus.FAILED, error=error)


def reap_masks(session: Session) -> list[str]:
    """Versions left running by a dead worker (lease expired) are queued and sent to the workers again."""
    ids = repo.requeue_expired_masks(session, now())
    for mask_id in ids:
        send_after_commit(session, COMPUTE_MASKS, mask_id)
    return ids


def get_mask(session: Session, mask_id: str) -> SafetyMask:
    mask = repo.get_mask(session, mask_id)
    if mask is None:
        raise NotFound("safety mask", mask_id)
    return mask


def model_shape(model: BaseModelRecord) -> ModelShape | None:
    """The numbers training memory depends on, from the model directory's ``config.json``; None when this
    process cannot read it (then no memory estimate is made)."""
    try:
        return ModelShape.from_config(json.loads((Path(model.path) / "config.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
