"""Hostile and malformed input is a 400/413 with OpenAI's envelope and a param, never a 500; a failure in the
unit of work leaves neither a row nor stored bytes behind."""

from __future__ import annotations

import io
import json

import pytest

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload


def _error(r, status: int, param: str | None = None) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code", "request_id"}
    if param is not None:
        assert err["param"] == param, err
    return err


def test_upload_over_the_limit_is_413_while_reading(client, keys, monkeypatch):
    from core.config import get_settings

    monkeypatch.setattr(get_settings(), "max_upload_bytes", 4096)
    r = upload(client, keys["alice"], b"x" * 10_000)
    assert _error(r, 413, "file")["code"] == "file_too_large"


def test_upload_of_an_unknown_model_or_nul_fields_is_400(client, keys):
    data = to_jsonl(chat_rows(10))
    r = client.post(
        "/v1/files",
        headers=auth(keys["alice"]),
        files={"file": ("t.jsonl", io.BytesIO(data))},
        data={"purpose": "fine-tune", "model": "does-not-exist"},
    )
    assert _error(r, 400, "model")["code"] == "model_not_found"
    r = client.post(
        "/v1/files",
        headers=auth(keys["alice"]),
        files={"file": ("t.jsonl", io.BytesIO(data))},
        data={"purpose": "fine\x00tune"},
    )
    _error(r, 400, "purpose")
    r = client.post(
        "/v1/files",
        headers=auth(keys["alice"]),
        files={"file": ("x" * 600, io.BytesIO(data))},
        data={"purpose": "fine-tune"},
    )
    _error(r, 400, "file")


def test_long_and_deeply_nested_lines_are_reported_not_parsed(client, keys, monkeypatch):
    from core.files import validation

    monkeypatch.setattr(validation, "MAX_LINE_BYTES", 1000)
    deep = "[" * 5000 + "]" * 5000
    lines = [json.dumps(r) for r in chat_rows(2)] + ["y" * 5000, deep[:900], json.dumps(chat_rows(1)[0])]
    r = upload(client, keys["alice"], ("\n".join(lines) + "\n").encode())
    errors = {(e["line"], e["code"]) for e in r.json()["validation"]["errors"]}
    assert errors == {(3, "line_too_long"), (4, "invalid_json")}


@pytest.mark.parametrize("body", ["[" * 200_000, '{"a":' * 5000 + "1" + "}" * 5000])
def test_absurd_json_bodies_are_400(client, keys, body):
    r = client.post(
        "/v1/fine_tuning/jobs", headers={**auth(keys["alice"]), "Content-Type": "application/json"}, content=body
    )
    _error(r, 400)


def test_bad_query_and_header_values_are_400(client, keys):
    h = auth(keys["alice"])
    _error(client.get("/v1/fine_tuning/jobs?metadata[=x", headers=h), 400, "metadata[")
    body = {"model": "micro", "training_file": "file-x"}
    _error(
        client.post("/v1/fine_tuning/jobs", headers={**h, "Idempotency-Key": "k" * 201}, json=body),
        400,
        "idempotency-key",
    )


def test_a_failed_commit_is_an_error_and_leaves_no_row_and_no_bytes(client, keys, stack):
    from pathlib import Path

    from fastapi.testclient import TestClient
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    def boom(session):
        raise RuntimeError("database went away at commit")

    before = set(Path(stack["KEEL_STORE_DIR"]).rglob("*.jsonl"))
    listed = len(client.get("/v1/files?limit=10000", headers=auth(keys["alice"])).json()["data"])
    event.listen(Session, "before_commit", boom)
    try:
        r = upload(TestClient(client.app, raise_server_exceptions=False), keys["alice"], to_jsonl(chat_rows(10)))
    finally:
        event.remove(Session, "before_commit", boom)
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
    assert set(Path(stack["KEEL_STORE_DIR"]).rglob("*.jsonl")) == before
    assert len(client.get("/v1/files?limit=10000", headers=auth(keys["alice"])).json()["data"]) == listed


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "param"),
    [
        ("get", "/v1/fine_tuning/jobs?after=ftjob-%00x", {}, "after"),
        ("get", "/v1/files/file-%00", {}, "path"),
        (
            "post",
            "/v1/fine_tuning/jobs",
            {"json": {"model": "micro", "training_file": "f", "suffix": "a\x00"}},
            "suffix",
        ),
        (
            "post",
            "/v1/fine_tuning/jobs",
            {"json": {"model": "micro", "training_file": "f", "metadata": {"k": "\x00"}}},
            "metadata",
        ),
        ("post", "/v1/admin/tenants", {"json": {"name": "evil\x00corp"}}, "name"),
        ("post", "/v1/admin/base_models", {"json": {"id": "x", "path": ""}}, "path"),
        ("post", "/v1/admin/base_models", {"json": {"id": "x", "path": "gpt2"}}, "path"),
    ],
)
def test_nul_bytes_and_unusable_paths_are_400_with_param(client, keys, method, url, kwargs, param):
    r = getattr(client, method)(url, headers=auth(keys["admin"]), **kwargs)
    _error(r, 400, param)


def test_unknown_lora_target_modules_are_refused_at_creation(client, keys, micro):
    admin = auth(keys["admin"])
    r = client.post("/v1/admin/base_models", headers=admin, json={"id": "micro-plain", "path": micro["base"]})
    assert r.status_code in (200, 409), r.text
    fid = upload(client, keys["alice"], to_jsonl(chat_rows(12))).json()["id"]
    body = {"model": "micro-plain", "training_file": fid, "lora": {"target_modules": ["q_proj", "qproj"]}}
    err = _error(
        client.post("/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json=body), 400, "lora.target_modules"
    )
    assert "qproj" in err["message"]
    body["lora"]["target_modules"] = ["q_proj", "v_proj"]
    ok = client.post("/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json=body)
    assert ok.status_code == 200, ok.text
    client.post(f"/v1/fine_tuning/jobs/{ok.json()['id']}/cancel", headers=auth(keys["alice"]))
