"""Request bodies of the tenant/key admin endpoints."""

from __future__ import annotations

from pydantic import Field

from core.schemas import Body
from core.tenants.states import Role


class TenantCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    role: Role = Role.USER


class SafetyPolicy(Body):
    allow_unrealigned: bool
