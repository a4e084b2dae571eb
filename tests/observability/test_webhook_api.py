"""Webhook endpoints through the API, Standard Webhooks signatures checked by an independent verifier (the
`standardwebhooks` package), SSRF refusal, and single delivery attempts against a real local receiver."""

from __future__ import annotations

import json
import os

import pytest
from standardwebhooks.webhooks import Webhook

from tests.fixtures.service import auth
from tests.observability.receiver import dead_url, receiver


@pytest.fixture
def allow_private():
    from core.config import get_settings

    os.environ["KEEL_WEBHOOKS_ALLOW_PRIVATE"] = "1"
    get_settings.cache_clear()
    yield
    os.environ.pop("KEEL_WEBHOOKS_ALLOW_PRIVATE", None)
    get_settings.cache_clear()


def _create(client, key, url, **extra):
    return client.post("/v1/webhook_endpoints", headers=auth(key), json={"url": url, **extra})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_internal_targets_are_refused(client, keys, url):
    r = _create(client, keys["alice"], url)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == "url" and err["code"] == "url_not_allowed", err


def test_bad_urls_and_events_are_4xx(client, keys):
    for body in ({"url": "ftp://example.com/x"}, {"url": "not a url"}, {"url": "http://u:p@93.184.216.34/"}):
        assert client.post("/v1/webhook_endpoints", headers=auth(keys["alice"]), json=body).status_code == 400
    r = _create(client, keys["alice"], "https://93.184.216.34/hook", events=["fine_tuning.job.exploded"])
    assert r.status_code == 400 and r.json()["error"]["param"] == "events"


def test_endpoint_lifecycle_and_tenant_isolation(client, keys):
    r = _create(client, keys["alice"], "https://93.184.216.34/hook", events=["fine_tuning.job.succeeded"])
    assert r.status_code == 200, r.text
    ep = r.json()
    assert ep["object"] == "webhook_endpoint" and ep["secret"].startswith("whsec_")
    got = client.get(f"/v1/webhook_endpoints/{ep['id']}", headers=auth(keys["alice"])).json()
    assert got["secret"] is None and got["events"] == ["fine_tuning.job.succeeded"]  # the secret is shown once
    assert client.get(f"/v1/webhook_endpoints/{ep['id']}", headers=auth(keys["bob"])).status_code == 404
    listed = client.get("/v1/webhook_endpoints", headers=auth(keys["alice"])).json()["data"]
    assert ep["id"] in [e["id"] for e in listed]
    assert ep["id"] not in [
        e["id"] for e in client.get("/v1/webhook_endpoints", headers=auth(keys["bob"])).json()["data"]
    ]
    rotated = client.post(f"/v1/webhook_endpoints/{ep['id']}/rotate_secret", headers=auth(keys["alice"])).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != ep["secret"]
    assert rotated["previous_secret_expires_at"] > rotated["created_at"]
    assert client.delete(f"/v1/webhook_endpoints/{ep['id']}", headers=auth(keys["alice"])).json()["deleted"] is True
    assert client.get(f"/v1/webhook_endpoints/{ep['id']}", headers=auth(keys["alice"])).status_code == 404


def _emit(tenant_key_id: str, status: str = "succeeded") -> list[str]:
    """Queue the events of a (fake, already terminal) job through the real emission path; return delivery ids."""
    from sqlalchemy import select

    from core.db import session_scope
    from core.webhooks.models import WebhookDelivery
    from core.webhooks.service import emit_job_event

    with session_scope() as s:
        before = set(s.scalars(select(WebhookDelivery.id)))
        emit_job_event(
            s,
            tenant_key_id,
            "ftjob-test",
            status,
            {"method": "nlsr", "passed": True, "before": {"hs": 40.0}, "after": {"hs": 3.0}},
        )
    with session_scope() as s:
        return sorted(set(s.scalars(select(WebhookDelivery.id))) - before)


def _tenant(client, key) -> str:
    from core.db import session_scope
    from core.tenants.service import authenticate

    with session_scope() as s:
        return authenticate(s, f"Bearer {key}").tenant_id


def test_signed_delivery_verifies_and_rotation_keeps_both_secrets_valid(client, keys, allow_private):
    from core.webhooks.delivery import deliver

    with receiver() as rec:
        ep = _create(client, keys["bob"], rec.url).json()
        rotated = client.post(f"/v1/webhook_endpoints/{ep['id']}/rotate_secret", headers=auth(keys["bob"])).json()
        ids = _emit(_tenant(client, keys["bob"]))
        assert len(ids) == 2  # realigned, then succeeded
        assert [deliver(i) for i in ids] == ["delivered", "delivered"]
        assert len(rec.requests) == 2
        for req in rec.requests:
            for secret in (ep["secret"], rotated["secret"]):  # old and new both verify during the grace period
                payload = Webhook(secret).verify(req.body, req.headers)
                assert payload == json.loads(req.body)
        types = [json.loads(r.body)["type"] for r in rec.requests]
        assert types == ["fine_tuning.job.realigned", "fine_tuning.job.succeeded"]
        realigned = json.loads(rec.requests[0].body)
        assert realigned["data"]["id"] == "ftjob-test" and realigned["data"]["safety"]["after"]["hs"] == 3.0
        tampered = rec.requests[1].body.replace(b"succeeded", b"cancelled")
        with pytest.raises(Exception, match="(?i)signature"):
            Webhook(ep["secret"]).verify(tampered, rec.requests[1].headers)
        with pytest.raises(Exception, match="(?i)signature"):
            Webhook("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB").verify(rec.requests[1].body, rec.requests[1].headers)
        log = client.get(f"/v1/webhook_endpoints/{ep['id']}/deliveries", headers=auth(keys["bob"])).json()["data"]
        assert {d["status"] for d in log} == {"delivered"} and all(d["attempts"] == 1 for d in log)
    client.delete(f"/v1/webhook_endpoints/{ep['id']}", headers=auth(keys["bob"]))


def test_a_500_is_retried_with_backoff_and_a_dead_receiver_fails_after_max_attempts(client, keys, allow_private):
    from core.config import get_settings
    from core.webhooks.delivery import backoff_s, deliver

    with receiver(statuses=[500]) as rec:
        flaky = _create(client, keys["bob"], rec.url, events=["fine_tuning.job.failed"]).json()
        dead = _create(client, keys["bob"], dead_url(), events=["fine_tuning.job.failed"]).json()
        ids = _emit(_tenant(client, keys["bob"]), status="failed")
        by_ep = {}
        from core.db import session_scope
        from core.webhooks.models import WebhookDelivery

        with session_scope() as s:
            for i in ids:
                by_ep[s.get(WebhookDelivery, i).endpoint_id] = i
        assert deliver(by_ep[flaky["id"]]) == "retry"
        assert deliver(by_ep[flaky["id"]]) == "delivered"
        assert [json.loads(r.body)["type"] for r in rec.requests] == ["fine_tuning.job.failed"] * 2
        assert rec.requests[0].headers["webhook-id"] == rec.requests[1].headers["webhook-id"]  # same message
        outcomes = [deliver(by_ep[dead["id"]]) for _ in range(get_settings().webhook_max_attempts)]
        assert outcomes == ["retry"] * (len(outcomes) - 1) + ["failed"]
        assert deliver(by_ep[dead["id"]]) == "failed"  # a late duplicate task does nothing
    assert backoff_s(1) < backoff_s(2) < backoff_s(3)
    log = client.get(f"/v1/webhook_endpoints/{dead['id']}/deliveries", headers=auth(keys["bob"])).json()["data"]
    assert log[0]["status"] == "failed" and log[0]["attempts"] == get_settings().webhook_max_attempts
    assert "ConnectError" in log[0]["last_error"]
    flaky_log = client.get(f"/v1/webhook_endpoints/{flaky['id']}/deliveries", headers=auth(keys["bob"])).json()
    assert flaky_log["data"][0]["status"] == "delivered" and flaky_log["data"][0]["attempts"] == 2
    assert flaky_log["data"][0]["last_status_code"] == 200
    for ep in (flaky, dead):
        client.delete(f"/v1/webhook_endpoints/{ep['id']}", headers=auth(keys["bob"]))


def test_cancelling_a_job_through_the_api_emits_a_signed_cancelled_event(client, keys, allow_private):
    from core.webhooks.delivery import deliver
    from tests.factories import chat_rows, to_jsonl
    from tests.fixtures.service import upload

    with receiver() as rec:
        ep = _create(client, keys["bob"], rec.url).json()
        fid = upload(client, keys["bob"], to_jsonl(chat_rows(12))).json()["id"]
        job = client.post(
            "/v1/fine_tuning/jobs", headers=auth(keys["bob"]), json={"model": "micro", "training_file": fid}
        )
        assert job.status_code == 200, job.text
        assert (
            client.post(f"/v1/fine_tuning/jobs/{job.json()['id']}/cancel", headers=auth(keys["bob"])).status_code == 200
        )
        log = client.get(f"/v1/webhook_endpoints/{ep['id']}/deliveries", headers=auth(keys["bob"])).json()["data"]
        assert [(d["event_type"], d["payload"]["data"]["id"]) for d in log] == [
            ("fine_tuning.job.cancelled", job.json()["id"])
        ]  # no realigned event: a cancelled job has no report
        assert deliver(log[0]["id"]) == "delivered"
        assert Webhook(ep["secret"]).verify(rec.requests[0].body, rec.requests[0].headers)["type"].endswith("cancelled")
        # cancelling again moves nothing, so nothing more is sent
        client.post(f"/v1/fine_tuning/jobs/{job.json()['id']}/cancel", headers=auth(keys["bob"]))
        assert (
            len(client.get(f"/v1/webhook_endpoints/{ep['id']}/deliveries", headers=auth(keys["bob"])).json()["data"])
            == 1
        )
    client.delete(f"/v1/webhook_endpoints/{ep['id']}", headers=auth(keys["bob"]))


def test_a_delivery_whose_task_was_lost_is_sent_again(client, keys, allow_private):
    from sqlalchemy import update

    from core.db import session_scope
    from core.ids import now
    from core.webhooks.delivery import deliver, resend_overdue
    from core.webhooks.models import WebhookDelivery

    with receiver() as rec:
        ep = _create(client, keys["bob"], rec.url, events=["fine_tuning.job.failed"]).json()
        [lost] = _emit(_tenant(client, keys["bob"]), status="failed")
        assert lost not in resend_overdue(grace_s=300)  # just queued: not overdue
        with session_scope() as s:  # its task never ran: ten minutes later it is still pending
            s.execute(update(WebhookDelivery).where(WebhookDelivery.id == lost).values(next_attempt_at=now() - 600))
        assert lost in resend_overdue(grace_s=300)
        assert lost not in resend_overdue(grace_s=300)  # pushed back: not re-sent on every sweep
        assert deliver(lost) == "delivered" and len(rec.requests) == 1
    client.delete(f"/v1/webhook_endpoints/{ep['id']}", headers=auth(keys["bob"]))
