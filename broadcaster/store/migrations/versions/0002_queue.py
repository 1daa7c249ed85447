"""Queue: the target on each job (per-target limits at claim time), rate slots, retry windows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("target", sa.String(120)))
        batch.create_index("ix_jobs_state_lease_until", ["state", "lease_until"])
    op.execute(
        "UPDATE jobs SET target ="
        " (SELECT target FROM deliveries WHERE deliveries.id = jobs.delivery_id)"
    )
    with op.batch_alter_table("deliveries") as batch:
        # When the channel's maximum age starts counting; a retry by hand restarts it.
        batch.add_column(sa.Column("age_from", UTC_TIME))
        # Settling checks "is anything of this revision unfinished?" after every delivery.
        batch.create_index("ix_deliveries_revision_id_state", ["revision_id", "state"])
    op.create_table(
        "rate_slots",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("next_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_rate_slots"),
    )


def downgrade() -> None:
    op.drop_table("rate_slots")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_revision_id_state")
        batch.drop_column("age_from")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_state_lease_until")
        batch.drop_column("target")
