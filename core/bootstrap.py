"""Start-up chores shared by the CLI, production bootstrap and the tests: migrations, keys, base models."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

import migrations
from core.base_models.schemas import BaseModelCreate
from core.base_models.service import register_model, set_reference_scores
from core.config import get_settings
from core.db import session_scope
from core.tenants.service import ensure_key
from core.tenants.states import Role

TESTBED_MODEL_ID = "keel-testbed"
SAFETY_SPLITS = ("safety_corpus", "harmful_eval", "benign_eval")
AUDIT_SPLITS = ("harmful_audit", "benign_audit")  # optional: without them the eval prompts are split in two


def migrate(url: str | None = None) -> None:
    """`alembic upgrade head`: the only way the schema is created, in every mode and from any directory."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    cfg.attributes["configure_logging"] = False
    if url:
        cfg.attributes["url"] = url
    command.upgrade(cfg, "head")


def dev_keys() -> dict[str, str]:
    """Embedded mode: one admin and one tenant key, generated once and kept in the data dir."""
    path = Path(get_settings().data_dir) / "dev-keys.json"
    keys: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    with session_scope() as s:
        active = bool(keys) and all(
            [ensure_key(s, "admin", Role.ADMIN, keys["admin"]), ensure_key(s, "dev tenant", Role.USER, keys["user"])]
        )
    if active:
        return keys
    # first run, or a dev key was revoked: new keys (a revoked key is never revived), written owner-only
    keys = {"admin": f"sk-keel-admin-{secrets.token_urlsafe(16)}", "user": f"sk-keel-{secrets.token_urlsafe(16)}"}
    with session_scope() as s:
        ensure_key(s, "admin", Role.ADMIN, keys["admin"])
        ensure_key(s, "dev tenant", Role.USER, keys["user"])
    _write_private(path, json.dumps(keys, indent=2))
    return keys


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file that is owner-only (0600) from the moment it exists."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def ensure_admin_key(plaintext: str) -> None:
    """Production first run: the admin key from a secret exists (idempotent)."""
    if len(plaintext) < 16:
        raise ValueError("the admin key must be at least 16 characters")
    with session_scope() as s:
        if not ensure_key(s, "admin", Role.ADMIN, plaintext):
            raise ValueError("the bootstrap admin key was revoked; provide a new one (a revoked key is never revived)")


def register_prepared_model(
    model_id: str,
    base: str,
    alignment_adapter: str | None,
    data_dir: str | None,
    reference_scores: dict[str, Any] | None = None,
) -> str:
    """Register (or refresh) a base model prepared offline (testbed, imported GGUF) with its safety data."""
    data = {k: str(Path(data_dir) / f"{k}.jsonl") for k in SAFETY_SPLITS} if data_dir else {}
    if data_dir:
        data |= {k: str(p) for k in AUDIT_SPLITS if (p := Path(data_dir) / f"{k}.jsonl").exists()}
    body = BaseModelCreate(id=model_id, path=base, alignment_adapter=alignment_adapter, safety_data=data)
    with session_scope() as s:
        register_model(s, body, replace=True)
        set_reference_scores(s, model_id, reference_scores or {})
    return model_id


def register_testbed(testbed: Any, model_id: str = TESTBED_MODEL_ID) -> str:
    """Register the offline testbed (a testbed.Testbed) as a base model."""
    scores = dict(testbed.manifest.get("scores", {}).get("aligned", {}))
    return register_prepared_model(
        model_id, str(testbed.base), str(testbed.alignment_adapter), str(testbed.data_dir), scores
    )
