"""Realignment is an operator's policy (issue 19 items 1-2): a tenant cannot switch it off unless an admin granted
it (audited), and the API accepts exactly the realignment methods the worker's registry knows."""

from __future__ import annotations

import pytest

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload
from tuning.safety.registry import METHOD_NAMES


@pytest.fixture(scope="module")
def tenant(client, keys) -> dict:
    """A fresh tenant (the policy is per tenant: other modules' tenants stay untouched)."""
    t = client.post("/v1/admin/tenants", headers=auth(keys["admin"]), json={"name": "policy-test"}).json()
    t["file"] = upload(client, t["api_key"], to_jsonl(chat_rows(16))).json()["id"]
    return t


def _job(client, t: dict, realign: str, dry_run: bool = False):
    body = {"model": "micro", "training_file": t["file"], "safety": {"realign": realign}, "dry_run": dry_run}
    return client.post("/v1/fine_tuning/jobs", headers=auth(t["api_key"]), json=body)


def _policy(client, admin_key: str, tenant_id: str, allow: bool):
    return client.post(
        f"/v1/admin/tenants/{tenant_id}/safety_policy", headers=auth(admin_key), json={"allow_unrealigned": allow}
    )


@pytest.mark.parametrize("dry_run", [False, True])
def test_realign_none_is_refused_without_a_grant(client, tenant, dry_run):
    r = _job(client, tenant, "none", dry_run=dry_run)
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == "realign_disabled_by_policy" and err["param"] == "safety.realign"
    assert err["type"] == "permission_error"


def test_an_admin_grants_and_withdraws_realign_none_audited(client, keys, tenant):
    admin = keys["admin"]
    assert _policy(client, tenant["api_key"], tenant["id"], True).status_code == 403  # not an admin
    assert _policy(client, admin, "org-nope", True).status_code == 404
    r = _policy(client, admin, tenant["id"], True)
    assert r.status_code == 200 and r.json()["allow_unrealigned"] is True, r.text
    job = _job(client, tenant, "none")
    assert job.status_code == 200 and job.json()["status"] == "queued", job.text
    client.post(f"/v1/fine_tuning/jobs/{job.json()['id']}/cancel", headers=auth(tenant["api_key"]))
    assert _policy(client, admin, tenant["id"], False).json()["allow_unrealigned"] is False
    assert _job(client, tenant, "none", dry_run=True).status_code == 403
    events = client.get("/v1/admin/audit_events?limit=100", headers=auth(admin)).json()["data"]
    mine = [e["action"] for e in events if e["target_tenant_id"] == tenant["id"]]
    assert "tenant.allow_unrealigned" in mine and "tenant.disallow_unrealigned" in mine


@pytest.mark.parametrize("value", ["true", "yes", 1, None])
def test_a_grant_is_a_json_boolean_only(client, keys, tenant, value):
    r = _policy(client, keys["admin"], tenant["id"], value)
    assert r.status_code == 400 and r.json()["error"]["param"] == "allow_unrealigned", r.text
    assert _job(client, tenant, "none", dry_run=True).status_code == 403


def test_other_tenants_are_not_granted(client, keys, tenant):
    _policy(client, keys["admin"], tenant["id"], True)
    other = {"api_key": keys["bob"], "file": upload(client, keys["bob"], to_jsonl(chat_rows(16))).json()["id"]}
    assert _job(client, other, "none", dry_run=True).status_code == 403


@pytest.mark.parametrize("name", ["keel", "magic", "AUTO", ""])
def test_a_method_the_registry_does_not_know_is_a_400(client, tenant, name):
    r = _job(client, tenant, name, dry_run=True)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "safety.realign"


def test_the_api_accepts_exactly_the_registry_names(client, keys, tenant):
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert schema["SafetyOptions"]["properties"]["realign"]["enum"] == list(METHOD_NAMES)
    _policy(client, keys["admin"], tenant["id"], True)
    for name in METHOD_NAMES:
        r = _job(client, tenant, name, dry_run=True)
        assert r.status_code == 200 and r.json()["safety"]["realign"] == name, r.text
