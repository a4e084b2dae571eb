"""Item 10: a ready mask whose stored bytes vanished does not fail the jobs on its model: it is marked broken,
a job falls back to the previous ready version, or (with none) recomputes it and waits."""

from __future__ import annotations

import shutil

from tests.fixtures.service import register_micro


def _model(client, keys, micro, mid: str) -> str:
    return register_micro(client, keys["admin"], micro, mid)


def _lose(key: str) -> None:
    """The store's bytes of ``key`` are gone, and so is this worker's local copy."""
    from core.config import get_settings
    from core.storage import get_store

    get_store().delete(key)
    shutil.rmtree(get_settings().scratch_dir / "mask-cache" / key.replace("/", "_"), ignore_errors=True)
    assert not get_store().exists(key)


def _status(mask_id: str) -> str:
    from core.base_models import service as models
    from core.db import session_scope

    with session_scope() as s:
        return str(models.get_mask(s, mask_id).status)


def test_a_vanished_mask_falls_back_or_is_recomputed(client, keys, micro, stack):
    from core.base_models import service as models
    from core.base_models.schemas import MaskCreate
    from core.db import session_scope
    from workers import masks

    mid = _model(client, keys, micro, f"micro-vanish-{stack['backend']}")
    v1 = masks.ensure_mask(mid)  # computes v1
    with session_scope() as s:
        v2_id = models.create_mask(s, models.require_model(s, mid), MaskCreate(method="all"), None).id
    assert masks.compute(v2_id) == "ready"
    v2 = masks.ensure_mask(mid)
    assert v2.id == v2_id and v2.version == 2

    _lose(v2.storage_key)
    heard: list[str] = []
    got = masks.ensure_mask(mid, notify=heard.append)  # the job waits; it does not fail
    assert got == v1 and masks.local_copy(got.storage_key).is_dir()
    assert _status(v2_id) == "broken" and any("missing" in h for h in heard)

    _lose(v1.storage_key)  # no ready version left: the newest broken one is recomputed under a lease
    got = masks.ensure_mask(mid)
    assert got.id in (v1.id, v2_id) and got.storage_key and masks.local_copy(got.storage_key).is_dir()
    assert _status(got.id) == "ready"
