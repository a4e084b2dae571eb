"""Mask versions are leased like jobs: a version left `running` by a dead worker is taken over by a job that
waits for it, or queued again by the reaper; a computation whose lease was taken over records nothing and
leaves no bytes."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select, update

from tests.fixtures.service import register_micro

_models = itertools.count()


@pytest.fixture
def model_id(client, keys, micro) -> str:
    """A base model of its own (the micro model's files), so no other test's ready mask is current."""
    return register_micro(client, keys["admin"], micro, f"micro-mask-{next(_models)}")


def _abandoned(model_id: str, expires_in: int = -60) -> str:
    """A version `running` under a worker that is gone (its lease expired ``-expires_in`` s ago)."""
    from core.base_models import service as models
    from core.base_models.models import SafetyMask
    from core.base_models.schemas import MaskCreate
    from core.db import session_scope
    from core.ids import now

    with session_scope() as s:
        mask = models.create_mask(s, models.require_model(s, model_id), MaskCreate(method="all"), None)
        s.execute(
            update(SafetyMask)
            .where(SafetyMask.id == mask.id)
            .values(status="running", lease_owner="dead-host:1:1", lease_expires_at=now() + expires_in)
        )
        return mask.id


def _row(mask_id: str):
    from core.base_models.models import SafetyMask
    from core.db import session_scope

    with session_scope() as s:
        return s.execute(select(SafetyMask.__table__).where(SafetyMask.id == mask_id)).mappings().one()


def test_a_job_waiting_on_an_abandoned_mask_takes_it_over(model_id):
    from core.storage import get_store
    from workers import masks

    mask_id = _abandoned(model_id)
    # the job's path: the version is `running`, so ensure_mask cannot claim it and waits; the wait takes
    # the version over as soon as it sees the lease expired (old code: waited up to an hour, then failed)
    masks._wait_ready(mask_id, timeout_s=1, poll_s=0.1)
    row = _row(mask_id)
    assert row["status"] == "ready" and row["lease_owner"] is None and row["lease_expires_at"] is None
    assert row["storage_key"].startswith(f"masks/{model_id}/v1-") and get_store().exists(row["storage_key"])
    assert masks.ensure_mask(model_id).id == mask_id


def test_a_mask_with_a_live_lease_is_left_to_its_worker(model_id):
    from workers import masks

    mask_id = _abandoned(model_id, expires_in=600)
    assert masks.compute(mask_id) == "skipped"
    with pytest.raises(TimeoutError):
        masks._wait_ready(mask_id, timeout_s=0.3, poll_s=0.1)
    assert _row(mask_id)["lease_owner"] == "dead-host:1:1"


def test_the_reaper_queues_an_abandoned_mask_again(model_id):
    from workers.lease import reap

    expired, live = _abandoned(model_id), _abandoned(model_id, expires_in=600)
    reap()
    assert _row(expired)["status"] == "queued" and _row(expired)["lease_owner"] is None
    assert _row(live)["status"] == "running" and _row(live)["lease_owner"] == "dead-host:1:1"


def test_a_computation_whose_lease_was_taken_over_records_nothing(model_id, monkeypatch):
    from core.base_models import service as models
    from core.db import session_scope
    from core.storage import get_store
    from workers import masks

    mask_id = _abandoned(model_id)
    real = masks._compute
    written: list[str] = []

    def slow_worker(mask, model, out):
        stats = real(mask, model, out)
        # meanwhile our lease expired and another worker took the version over
        from core.base_models.models import SafetyMask

        with session_scope() as s:
            s.execute(update(SafetyMask).where(SafetyMask.id == mask_id).values(lease_expires_at=0))
            assert models.claim_mask(s, mask_id, "other-host:2:2")
        written.append(str(out))
        return stats

    monkeypatch.setattr(masks, "_compute", slow_worker)
    puts: list[str] = []
    store_put = type(get_store()).put_dir
    monkeypatch.setattr(
        type(get_store()), "put_dir", lambda self, key, src: (puts.append(key), store_put(self, key, src))
    )
    assert masks.compute(mask_id) == "superseded"
    row = _row(mask_id)
    assert row["status"] == "running" and row["lease_owner"] == "other-host:2:2" and row["storage_key"] is None
    assert all(not get_store().exists(k) for k in puts)  # whatever the stale computation stored is gone


@pytest.mark.backends("postgres")  # a whole job; the lease tests above run on both
def test_a_job_that_computes_the_mask_says_so_and_the_next_one_does_not(model_id):
    from workers import masks

    heard: list[str] = []
    first = masks.ensure_mask(model_id, notify=heard.append)
    assert len(heard) == 1 and f"base model {model_id}" in heard[0] and "v1" in heard[0]
    assert masks.ensure_mask(model_id, notify=heard.append) == first  # ready now: reused, nothing to say
    assert len(heard) == 1
