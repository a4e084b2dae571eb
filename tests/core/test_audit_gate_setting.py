"""KEEL_AUDIT_GATE: the operator's choice for a release the audit split contradicts (warn or fail), nothing else."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.config import Settings


def test_the_audit_gate_defaults_to_warn_and_reads_fail_from_the_environment(monkeypatch):
    monkeypatch.delenv("KEEL_AUDIT_GATE", raising=False)
    assert Settings().audit_gate == "warn"
    monkeypatch.setenv("KEEL_AUDIT_GATE", "fail")
    assert Settings().audit_gate == "fail"


def test_an_unknown_audit_gate_is_refused_at_startup(monkeypatch):
    monkeypatch.setenv("KEEL_AUDIT_GATE", "block")
    with pytest.raises(ValidationError):
        Settings()
