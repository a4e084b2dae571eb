"""Request bodies of the tenant/key admin endpoints."""

from __future__ import annotations

from pydantic import Field, StrictBool

from core.schemas import Body
from core.tenants.states import Role


class TenantCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    role: Role = Role.USER


class SafetyPolicy(Body):
    # strict: a grant that switches safety off is a JSON boolean, never "yes", "1" or 1 coerced into True
    allow_unrealigned: StrictBool
