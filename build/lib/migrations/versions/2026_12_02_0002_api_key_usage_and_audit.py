"""api key last use, audit events

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 05:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("last_used_at", sa.Integer(), nullable=True))
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("actor_key_id", sa.String(length=40), nullable=False),
        sa.Column("actor_tenant_id", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("target_tenant_id", sa.String(length=40), nullable=True),
        sa.Column("target_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_created_at"), "audit_events", ["created_at"])
    op.create_index(op.f("ix_audit_events_target_tenant_id"), "audit_events", ["target_tenant_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_events_target_tenant_id"), table_name="audit_events")
    op.drop_index(op.f("ix_audit_events_created_at"), table_name="audit_events")
    op.drop_table("audit_events")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("last_used_at")
