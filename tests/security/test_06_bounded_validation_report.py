"""Item 6: a validation report quotes user content cut short and keeps at most N line errors plus a count per
code, so a file of huge bad values does not become a huge JSON column returned by every list."""

from __future__ import annotations

import json

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload


def test_huge_bad_values_make_a_small_report(client, keys):
    role = "r" * 20_000
    bad = [json.dumps({"messages": [{"role": role, "content": "hi"}]}) for _ in range(150)]
    data = to_jsonl(chat_rows(10)) + ("\n".join(bad) + "\n").encode()
    r = upload(client, keys["alice"], data)
    assert r.status_code == 200, r.text
    v = r.json()["validation"]
    assert v["valid"] is False and v["n_errors"] == 150
    assert len(v["errors"]) <= 100
    assert v["error_counts"] == {"invalid_role": 150}
    assert all(len(e["message"]) <= 300 for e in v["errors"]), max(len(e["message"]) for e in v["errors"])
    assert len(json.dumps(v)) < 64_000, len(json.dumps(v))
    listed = client.get("/v1/files?limit=1", headers=auth(keys["alice"])).json()["data"][0]
    assert len(json.dumps(listed)) < 64_000
