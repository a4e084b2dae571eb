"""Base models (admin-registered) and their safety-neuron mask versions."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidRequest, NotFound
from core.orm import BaseModel, SafetyMask
from core.schemas import BaseModelCreate, LoraOptions, MaskCreate
from tuning.specs import DEFAULT_TARGETS


def require_model(session: Session, model_id: str) -> BaseModel:
    model = session.get(BaseModel, model_id)
    if model is None:
        raise NotFound("base model", model_id, param="model")
    return model


def _context_length(path: str, default: int) -> int:
    cfg = Path(path) / "config.json"
    if cfg.exists():
        return int(json.loads(cfg.read_text()).get("max_position_embeddings", default))
    return default


def register_model(session: Session, body: BaseModelCreate, replace: bool = False) -> BaseModel:
    existing = session.get(BaseModel, body.id)
    if existing is not None and not replace:
        raise Conflict(f"Base model '{body.id}' is already registered.", code="model_exists")
    if body.alignment_adapter and not (Path(body.alignment_adapter) / "adapter_config.json").exists():
        raise InvalidRequest("alignment_adapter must be a PEFT adapter directory (adapter_config.json missing).",
                             param="alignment_adapter")
    for name, path in body.safety_data.items():
        if not Path(path).exists():
            raise InvalidRequest(f"safety_data['{name}'] does not exist: {path}", param="safety_data")
    row = existing or BaseModel(id=body.id)
    row.path, row.alignment_adapter, row.chat_template = body.path, body.alignment_adapter, body.chat_template
    row.context_length = _context_length(body.path, body.context_length)
    row.safety_data = dict(body.safety_data)
    session.add(row)
    session.flush()
    return row


def model_object(session: Session, m: BaseModel) -> dict:
    mask = current_mask(session, m.id)
    return {"id": m.id, "object": "model", "created": m.created_at, "owned_by": m.owned_by, "path": m.path,
            "alignment_adapter": m.alignment_adapter, "context_length": m.context_length,
            "safety_data": m.safety_data, "reference_scores": m.reference_scores,
            "current_mask": mask.id if mask else None}


def lora_for_job(model: BaseModel, opts: LoraOptions) -> dict:
    """LoRA config of a job. With an alignment adapter the job continues it, so rank and targets must match."""
    if not model.alignment_adapter:
        return {"r": opts.r or 8, "alpha": opts.alpha or 2 * (opts.r or 8), "dropout": opts.dropout,
                "target_modules": opts.target_modules or list(DEFAULT_TARGETS), "init_adapter": None}
    cfg = json.loads((Path(model.alignment_adapter) / "adapter_config.json").read_text())
    r, alpha, targets = int(cfg["r"]), int(cfg["lora_alpha"]), sorted(cfg["target_modules"])
    for name, asked, have in (("r", opts.r, r), ("alpha", opts.alpha, alpha)):
        if asked is not None and asked != have:
            raise InvalidRequest(f"lora.{name}={asked} conflicts with the base model's alignment adapter "
                                 f"({name}={have}); jobs continue that adapter so realignment can transplant "
                                 "neurons element-wise.", param=f"lora.{name}")
    if opts.target_modules is not None and sorted(opts.target_modules) != targets:
        raise InvalidRequest(f"lora.target_modules must be {targets} (the alignment adapter's).",
                             param="lora.target_modules")
    return {"r": r, "alpha": alpha, "dropout": opts.dropout, "target_modules": targets,
            "init_adapter": model.alignment_adapter}


def current_mask(session: Session, model_id: str) -> SafetyMask | None:
    return session.scalar(select(SafetyMask).where(SafetyMask.base_model_id == model_id, SafetyMask.status == "ready")
                          .order_by(SafetyMask.version.desc()).limit(1))


def _digest(obj: object) -> str:
    data = obj if isinstance(obj, bytes) else json.dumps(obj, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()


def create_mask(session: Session, model: BaseModel, body: MaskCreate, corpus: bytes | None) -> SafetyMask:
    if not model.alignment_adapter:
        raise InvalidRequest("Safety masks need a base model with an alignment adapter.", param="model")
    if corpus is None:
        path = model.safety_data.get("safety_corpus")
        if not path:
            raise InvalidRequest("No corpus_file given and the model has no default safety corpus.",
                                 param="corpus_file")
        corpus = Path(path).read_bytes()
    version = (session.scalar(select(func.max(SafetyMask.version)).where(SafetyMask.base_model_id == model.id)) or 0) + 1
    row = SafetyMask(base_model_id=model.id, version=version, method=body.method, config=body.config,
                     config_hash=_digest({"method": body.method, **body.config}), corpus_hash=_digest(corpus),
                     corpus_file_id=body.corpus_file, status="queued")
    session.add(row)
    session.flush()
    return row


def mask_object(m: SafetyMask) -> dict:
    return {"object": "safety_mask", "id": m.id, "base_model": m.base_model_id, "version": m.version,
            "method": m.method, "config": m.config, "config_hash": m.config_hash, "corpus_hash": m.corpus_hash,
            "status": m.status, "stats": m.stats, "error": m.error, "compute_seconds": m.compute_s,
            "created_at": m.created_at, "finished_at": m.finished_at}
