"""API fixtures: an app client per backend, tenants with keys, and the micro model registered."""
from __future__ import annotations

import io
import os

import pytest
from fastapi.testclient import TestClient


@pytest.fixture(scope="session")
def client(stack) -> TestClient:
    from api.main import create_app

    with TestClient(create_app()) as c:
        yield c


@pytest.fixture(scope="session")
def keys(stack, micro, client) -> dict[str, str]:
    from core.auth import create_tenant
    from core.db import session_scope

    with session_scope() as s:
        _, admin = create_tenant(s, "ops", role="admin")
        _, alice = create_tenant(s, "alice")
        _, bob = create_tenant(s, "bob")
    body = {"id": "micro", "path": micro["base"], "alignment_adapter": micro["alignment"],
            "safety_data": {k: os.path.join(micro["data"], f"{k}.jsonl")
                            for k in ("safety_corpus", "harmful_eval", "benign_eval")}}
    r = client.post("/v1/admin/base_models", json=body, headers=auth(admin))
    assert r.status_code == 200, r.text
    return {"admin": admin, "alice": alice, "bob": bob}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def upload(client: TestClient, key: str, data: bytes, name: str = "train.jsonl", purpose: str = "fine-tune"):
    return client.post("/v1/files", headers=auth(key), files={"file": (name, io.BytesIO(data))},
                       data={"purpose": purpose, "model": "micro"})
