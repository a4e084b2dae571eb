"""Admin API: base model registry, tenants and keys, mask versions; non-admins are refused."""

from __future__ import annotations

from tests.fixtures.service import auth


def test_non_admin_is_refused(client, keys):
    r = client.get("/v1/admin/base_models", headers=auth(keys["alice"]))
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"


def test_register_and_list_base_models(client, keys, micro):
    models = client.get("/v1/admin/base_models", headers=auth(keys["admin"])).json()["data"]
    micro_row = next(m for m in models if m["id"] == "micro")
    assert micro_row["context_length"] == 256 and micro_row["alignment_adapter"] == micro["alignment"]
    r = client.post("/v1/admin/base_models", headers=auth(keys["admin"]), json={"id": "micro", "path": micro["base"]})
    assert r.status_code == 409
    r = client.post(
        "/v1/admin/base_models",
        headers=auth(keys["admin"]),
        json={"id": "broken", "path": micro["base"], "alignment_adapter": "/nonexistent"},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "alignment_adapter"


def test_admin_creates_tenants_whose_keys_work(client, keys):
    r = client.post("/v1/admin/tenants", headers=auth(keys["admin"]), json={"name": "carol"})
    key = r.json()["api_key"]
    assert client.get("/v1/files", headers=auth(key)).status_code == 200
    r2 = client.post(f"/v1/admin/tenants/{r.json()['id']}/api_keys", headers=auth(keys["admin"]), json={"name": "ci"})
    assert client.get("/v1/files", headers=auth(r2.json()["api_key"])).status_code == 200


def test_models_endpoint_lists_base_models(client, keys):
    data = client.get("/v1/models", headers=auth(keys["alice"])).json()["data"]
    assert "micro" in [m["id"] for m in data]
    assert client.get("/v1/models/micro", headers=auth(keys["alice"])).json()["object"] == "model"
    assert client.get("/v1/models/ft:nope", headers=auth(keys["alice"])).status_code == 404


def test_keys_are_listed_without_secrets_revocable_and_audited(client, keys):
    admin = auth(keys["admin"])
    tenant = client.post("/v1/admin/tenants", headers=admin, json={"name": "dave"}).json()
    minted = client.post(f"/v1/admin/tenants/{tenant['id']}/api_keys", headers=admin, json={"name": "ci"}).json()
    assert client.get("/v1/files", headers=auth(minted["api_key"])).status_code == 200
    listed = client.get(f"/v1/admin/tenants/{tenant['id']}/api_keys", headers=admin).json()["data"]
    assert len(listed) == 2 and all("api_key" not in k for k in listed)
    row = next(k for k in listed if k["id"] == minted["id"])
    assert minted["api_key"].startswith(row["prefix"]) and row["last_used_at"] and row["revoked_at"] is None
    r = client.delete(f"/v1/admin/tenants/{tenant['id']}/api_keys/{minted['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert client.get("/v1/files", headers=auth(minted["api_key"])).status_code == 401
    assert client.delete(f"/v1/admin/tenants/{tenant['id']}/api_keys/key-nope", headers=admin).status_code == 404
    actions = {
        (e["action"], e["target_id"]) for e in client.get("/v1/admin/audit_events", headers=admin).json()["data"]
    }
    assert {("api_key.create", minted["id"]), ("api_key.revoke", minted["id"]), ("tenant.create", tenant["id"])} <= (
        actions
    )
    assert client.get("/v1/admin/audit_events", headers=auth(keys["alice"])).status_code == 403
