"""Every ORM table, imported once so Base.metadata is complete (Alembic, create-time foreign keys)."""

from __future__ import annotations

from core.base_models.models import BaseModelRecord, SafetyMask
from core.events.models import Checkpoint, JobEvent
from core.files.models import File, UploadLedger
from core.jobs.models import Job
from core.results.models import Artifact, SafetyReport
from core.tenants.models import ApiKey, AuditEvent, Tenant
from core.webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Artifact",
    "BaseModelRecord",
    "Checkpoint",
    "File",
    "Job",
    "JobEvent",
    "SafetyMask",
    "SafetyReport",
    "Tenant",
    "WebhookDelivery",
    "WebhookEndpoint",
    "UploadLedger",
]
