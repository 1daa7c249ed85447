"""SMS status: why a delivery was cancelled, what the platform reported later, callback tokens.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("cancel_reason", sa.String(16)))
        batch.add_column(sa.Column("platform_status", sa.String(16)))
        batch.add_column(sa.Column("platform_error", sa.Integer))
        batch.add_column(sa.Column("platform_status_at", UTC_TIME))
    op.create_table(
        "callback_tokens",
        sa.Column("token", sa.String(128), nullable=False),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("token", name="pk_callback_tokens"),
    )


def downgrade() -> None:
    op.drop_table("callback_tokens")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("platform_status_at")
        batch.drop_column("platform_error")
        batch.drop_column("platform_status")
        batch.drop_column("cancel_reason")
