"""Jobs: priority (crisis first), reclaim and failure counts, and the per-target claim index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("priority", sa.SmallInteger, nullable=False, server_default="2"))
        batch.add_column(sa.Column("reclaims", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("failures", sa.Integer, nullable=False, server_default="0"))
        batch.create_index(
            "ix_jobs_state_target_priority_run_at", ["state", "target", "priority", "run_at"]
        )
    # Jobs queued before this revision take their announcement's severity.
    op.execute(
        "UPDATE jobs SET priority = CASE"
        " (SELECT revisions.severity FROM deliveries JOIN revisions"
        "  ON revisions.id = deliveries.revision_id WHERE deliveries.id = jobs.delivery_id)"
        " WHEN 'crisis' THEN 0 WHEN 'important' THEN 1 ELSE 2 END"
    )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_state_target_priority_run_at")
        batch.drop_column("failures")
        batch.drop_column("reclaims")
        batch.drop_column("priority")
