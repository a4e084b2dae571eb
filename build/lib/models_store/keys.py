"""Key layout of the artifact store."""

from __future__ import annotations


def file_key(tenant_id: str, file_id: str) -> str:
    return f"files/{tenant_id}/{file_id}.jsonl"


def job_key(job_id: str, *parts: str) -> str:
    return "/".join(("jobs", job_id, *parts))


def mask_key(base_model_id: str, version: int) -> str:
    return f"masks/{base_model_id}/v{version}"
