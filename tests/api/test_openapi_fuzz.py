"""Schemathesis against the ASGI app in-process, with a tenant key and an admin key: no 5xx anywhere, and
every response conforms to the OpenAPI document (status code declared, content type, body schema).

Bounded (a few derandomized examples per operation, embedded backend only) so it fits CI; the same run at
scale, with every check, is ``bench/fuzz_api.py``. NUL characters are not generated: they are refused with
400 everywhere by design (documented in the OpenAPI description).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.service import auth

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CONFIG = SchemathesisConfig.from_dict({"generation": {"allow-x00": False, "database": "none"}})


@pytest.fixture(scope="session")
def fuzz_keys(stack, keys) -> dict[str, str]:
    if stack["backend"] != "sqlite":
        pytest.skip("the in-process fuzz runs once, on the embedded backend")
    from core.db import session_scope
    from core.tenants.service import create_tenant

    with session_scope() as s:  # its own tenant: whatever it creates never counts against other tests' quotas
        _, tenant = create_tenant(s, "fuzzer")
    return {"tenant": tenant, "admin": keys["admin"]}


@pytest.fixture(scope="session")
def api_schema(client, fuzz_keys):
    return schemathesis.openapi.from_asgi("/openapi.json", client.app, config=CONFIG)


def _fuzz(api_schema, key: str, examples: int = 8) -> list[str]:
    """Every operation, positive and negative data, ``examples`` derandomized cases each (no shrinking: a
    failure is reported as found). Returns one line per failing operation and mode."""
    failures: list[str] = []
    for result in api_schema.get_all_operations():
        op = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=examples,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case) -> None:
                case.call_and_validate(headers=auth(key), checks=CHECKS)

            try:
                run()
            except Unsatisfiable:  # no parameters to make invalid (GET /healthz)
                continue
            except Exception as exc:
                failures.append(f"{op.label} [{mode.value}]: {str(exc)[:600]}")
    return failures


def test_api_with_a_tenant_key(api_schema, fuzz_keys):
    assert _fuzz(api_schema, fuzz_keys["tenant"]) == []


def test_api_with_an_admin_key(api_schema, fuzz_keys):
    assert _fuzz(api_schema, fuzz_keys["admin"]) == []


def test_openapi_declares_bearer_auth_and_errors(client):
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer sk-keel-...`",
    }
    op = doc["paths"]["/v1/fine_tuning/jobs"]["post"]
    assert op["security"] == [{"HTTPBearer": []}]
    assert {"400", "401", "403", "404", "409", "413", "429"} <= set(op["responses"]) and "422" not in op["responses"]
    assert op["responses"]["429"]["headers"]["Retry-After"]
    err = op["responses"]["404"]["content"]["application/json"]["schema"]
    assert err == {"$ref": "#/components/schemas/ErrorResponse"}
    assert not any(p.get("name", "").lower() == "authorization" for p in op.get("parameters", []))


def test_405_allows_every_method_of_the_path(client, keys):
    r = client.request("PUT", "/v1/files", headers=auth(keys["alice"]))
    assert r.status_code == 405 and r.json()["error"]["type"] == "invalid_request_error"
    assert set(r.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    r = client.request("PATCH", "/v1/files/file-x", headers=auth(keys["alice"]))
    assert r.status_code == 405 and {"GET", "DELETE"} <= set(r.headers["allow"].replace(" ", "").split(","))
