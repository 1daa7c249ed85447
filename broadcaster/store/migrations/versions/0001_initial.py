"""Initial schema: announcements, revisions, approvals, deliveries, jobs, audit events.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Migrations are frozen snapshots: they spell out their columns instead of importing schema.py.
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(36), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("current_revision", sa.Integer, nullable=False),
        sa.Column("author", sa.String(120), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_announcements"),
        sa.UniqueConstraint("uid", name="uq_announcements_uid"),
    )
    op.create_table(
        "revisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("announcement_id", sa.Integer, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("link", sa.Text),
        sa.Column("overrides", sa.JSON, nullable=False),
        sa.Column("targets", sa.JSON, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("author", sa.String(120), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_revisions"),
        sa.ForeignKeyConstraint(
            ["announcement_id"], ["announcements.id"], name="fk_revisions_announcement_id"
        ),
        sa.UniqueConstraint(
            "announcement_id", "number", name="uq_revisions_announcement_id_number"
        ),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("revision_id", sa.Integer, nullable=False),
        sa.Column("person", sa.String(120), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("decided_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
        sa.ForeignKeyConstraint(["revision_id"], ["revisions.id"], name="fk_approvals_revision_id"),
        sa.UniqueConstraint("revision_id", "person", name="uq_approvals_revision_id_person"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("announcement_id", sa.Integer, nullable=False),
        sa.Column("revision_id", sa.Integer, nullable=False),
        sa.Column("target", sa.String(120), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(32), nullable=False, server_default=""),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("platform_id", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", UTC_TIME),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("sent_at", UTC_TIME),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.ForeignKeyConstraint(
            ["announcement_id"], ["announcements.id"], name="fk_deliveries_announcement_id"
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"], ["revisions.id"], name="fk_deliveries_revision_id"
        ),
        sa.UniqueConstraint(
            "revision_id", "target", "recipient", name="uq_deliveries_revision_id_target_recipient"
        ),
    )
    op.create_index("ix_deliveries_announcement_id", "deliveries", ["announcement_id"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("delivery_id", sa.Integer),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("run_at", UTC_TIME, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lease_owner", sa.String(120)),
        sa.Column("lease_until", UTC_TIME),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"], name="fk_jobs_delivery_id"),
        sa.UniqueConstraint("delivery_id", name="uq_jobs_delivery_id"),
    )
    op.create_index("ix_jobs_state_run_at", "jobs", ["state", "run_at"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("announcement_id", sa.Integer),
        sa.Column("revision", sa.Integer),
        sa.Column("details", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_announcement_id", "audit_events", ["announcement_id"])


def downgrade() -> None:
    for table in ("audit_events", "jobs", "deliveries", "approvals", "revisions", "announcements"):
        op.drop_table(table)
