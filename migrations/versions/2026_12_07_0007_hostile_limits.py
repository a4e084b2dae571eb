"""hostile-tenant limits: upload_ledger (bytes uploaded per tenant, kept when a file is deleted, for the daily
upload quota)

Revision ID: 0004h_hostile_limits
Revises: 0004_webhooks
Create Date: 2026-12-07 02:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004h_hostile_limits"
down_revision = "0004_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upload_ledger",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
    )
    op.create_index("ix_upload_ledger_tenant_created", "upload_ledger", ["tenant_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_upload_ledger_tenant_created", table_name="upload_ledger")
    op.drop_table("upload_ledger")
