"""Start-up chores shared by the CLI and the tests: migrations, dev keys, the testbed base model."""
from __future__ import annotations

import json
import secrets
from pathlib import Path

from alembic import command
from alembic.config import Config

from core.auth import ensure_key
from core.config import REPO_ROOT, get_settings
from core.db import session_scope
from core.models import register_model
from core.schemas import BaseModelCreate

TESTBED_MODEL_ID = "keel-testbed"
SAFETY_SPLITS = ("safety_corpus", "harmful_eval", "benign_eval")


def migrate(url: str | None = None) -> None:
    """`alembic upgrade head`: the only way the schema is created, in every mode."""
    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    cfg.attributes["configure_logging"] = False
    if url:
        cfg.attributes["url"] = url
    command.upgrade(cfg, "head")


def dev_keys() -> dict[str, str]:
    """Embedded mode: one admin and one tenant key, generated once and kept in the data dir."""
    path = Path(get_settings().data_dir) / "dev-keys.json"
    if path.exists():
        keys = json.loads(path.read_text())
    else:
        keys = {"admin": f"sk-keel-admin-{secrets.token_urlsafe(16)}", "user": f"sk-keel-{secrets.token_urlsafe(16)}"}
        path.write_text(json.dumps(keys, indent=2))
        path.chmod(0o600)
    with session_scope() as s:
        ensure_key(s, "admin", "admin", keys["admin"])
        ensure_key(s, "dev tenant", "user", keys["user"])
    return keys


def register_testbed(testbed, model_id: str = TESTBED_MODEL_ID) -> str:  # noqa: ANN001
    """Register (or refresh) the offline testbed as a base model with its alignment adapter and safety data."""
    data = Path(testbed.data_dir)
    body = BaseModelCreate(id=model_id, path=str(testbed.base), alignment_adapter=str(testbed.alignment_adapter),
                           safety_data={k: str(data / f"{k}.jsonl") for k in SAFETY_SPLITS})
    with session_scope() as s:
        row = register_model(s, body, replace=True)
        row.reference_scores = dict(testbed.manifest.get("scores", {}).get("aligned", {}))
    return model_id
