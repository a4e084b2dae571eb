"""Files API: line-numbered validation at upload, listing, retrieval, deletion, tenant isolation."""

from __future__ import annotations

import json

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def _bad_file() -> bytes:
    lines = [
        json.dumps(GOOD),  # 1 ok
        "{not json",  # 2 invalid_json
        json.dumps({"foo": 1}),  # 3 missing_messages
        json.dumps({"messages": [{"role": "wizard", "content": "x"}]}),  # 4 invalid_role
        json.dumps(
            {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "x"}]}
        ),  # 5 empty_content
        json.dumps({"messages": [{"role": "user", "content": "only a question"}]}),  # 6 no_assistant_turn
        json.dumps(
            {"messages": [{"role": "user", "content": "word " * 400}, {"role": "assistant", "content": "x"}]}
        ),  # 7 too_long (ctx 256)
        json.dumps({"prompt": "classify good movie", "completion": "zorp"}),  # 8 ok (prompt/completion)
    ]
    return ("\n".join(lines) + "\n").encode()


def test_every_validation_error_is_reported_with_its_line(client, keys):
    r = upload(client, keys["alice"], _bad_file())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "error"
    got = {(e["line"], e["code"]) for e in body["validation"]["errors"]}
    assert got == {
        (2, "invalid_json"),
        (3, "missing_messages"),
        (4, "invalid_role"),
        (5, "empty_content"),
        (6, "no_assistant_turn"),
        (7, "too_long"),
    }
    assert body["validation"]["n_examples"] == 2
    assert "line 2" in body["status_details"]


def test_a_file_with_errors_cannot_start_a_job(client, keys):
    fid = upload(client, keys["alice"], _bad_file()).json()["id"]
    r = client.post("/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json={"model": "micro", "training_file": fid})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == "training_file" and err["code"] == "invalid_training_file" and "line 2" in err["message"]


def test_valid_upload_reports_counts_and_token_stats(client, keys):
    r = upload(client, keys["alice"], to_jsonl(chat_rows(12)))
    body = r.json()
    assert body["status"] == "processed" and body["object"] == "file" and body["purpose"] == "fine-tune"
    v = body["validation"]
    assert v["n_examples"] == 12 and v["errors"] == []
    assert 0 < v["tokens"]["min_tokens"] <= v["tokens"]["max_tokens"] and v["tokens"]["total_tokens"] > 12


def test_list_retrieve_delete_and_cursor(client, keys):
    ids = [upload(client, keys["bob"], to_jsonl(chat_rows(10, seed=i))).json()["id"] for i in range(3)]
    page1 = client.get("/v1/files?limit=2", headers=auth(keys["bob"])).json()
    assert page1["object"] == "list" and len(page1["data"]) == 2 and page1["has_more"] is True
    page2 = client.get(f"/v1/files?limit=2&after={page1['last_id']}", headers=auth(keys["bob"])).json()
    seen = [f["id"] for f in page1["data"] + page2["data"]]
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    assert client.get(f"/v1/files/{ids[0]}", headers=auth(keys["bob"])).json()["id"] == ids[0]
    assert client.delete(f"/v1/files/{ids[0]}", headers=auth(keys["bob"])).json()["deleted"] is True
    assert client.get(f"/v1/files/{ids[0]}", headers=auth(keys["bob"])).status_code == 404


def test_other_tenants_files_are_invisible(client, keys):
    fid = upload(client, keys["alice"], to_jsonl(chat_rows(10))).json()["id"]
    r = client.get(f"/v1/files/{fid}", headers=auth(keys["bob"]))
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    assert client.delete(f"/v1/files/{fid}", headers=auth(keys["bob"])).status_code == 404
    assert fid not in [f["id"] for f in client.get("/v1/files", headers=auth(keys["bob"])).json()["data"]]


def test_auth_errors_use_the_openai_envelope(client, keys):
    r = client.get("/v1/files")
    assert r.status_code == 401
    assert set(r.json()["error"]) == {"message", "type", "param", "code", "request_id"}
    assert client.get("/v1/files", headers=auth("sk-wrong")).json()["error"]["code"] == "invalid_api_key"
    r = upload(client, keys["alice"], b"{}\n", purpose="wrong")
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"
