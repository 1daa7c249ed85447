"""The tables, as SQLAlchemy Core metadata. Alembic migrations create them; this is the reference.

All times are stored in UTC (:class:`UtcDateTime` keeps them timezone-aware in Python on every
database). The job table lives beside the announcements so that a state change and the jobs it
creates commit in one transaction: no lost and no phantom dispatches.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "announcements",
    "approval_cards",
    "approvals",
    "audit_events",
    "callback_tokens",
    "deliveries",
    "jobs",
    "list_members",
    "metadata",
    "opt_outs",
    "rate_slots",
    "recipient_lists",
    "revisions",
]


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        converted = value.astimezone(UTC)
        return converted.replace(tzinfo=None) if dialect.name == "sqlite" else converted

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # SQLite hands back text for aggregates such as MIN(created_at).
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

announcements = Table(
    "announcements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uid", String(36), nullable=False, unique=True),
    Column("state", String(24), nullable=False),
    Column("current_revision", Integer, nullable=False),
    Column("author", String(120), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

revisions = Table(
    "revisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("announcement_id", ForeignKey("announcements.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("language", String(8), nullable=False),
    Column("link", Text),
    Column("overrides", JSON, nullable=False),
    Column("targets", JSON, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("author", String(120), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("announcement_id", "number"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("revision_id", ForeignKey("revisions.id"), nullable=False),
    Column("person", String(120), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("reason", Text),
    Column("via", String(16), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
    # How the person was shown to be who they said (DESIGN §8): {"method": "os_user" | "ssh" |
    # "teams" | "trusted_name", ...}; NULL for decisions recorded before proofs existed.
    Column("proof", JSON),
    # One decision per person per revision: a second click by the same person counts once.
    UniqueConstraint("revision_id", "person"),
)

# The approval card posted in the approvers' Teams channel, one per announcement: where it is
# (what a PUT needs), which revision it shows, what it showed last (so an unchanged card is not
# sent again) and what the author was told. ``busy_job`` is the card job acting on it now: card
# jobs of one announcement take turns, so an older state is never written over a newer one.
approval_cards = Table(
    "approval_cards",
    metadata,
    Column("announcement_id", ForeignKey("announcements.id"), primary_key=True),
    Column("revision", Integer),
    Column("service_url", Text),
    Column("conversation_id", Text),
    Column("activity_id", Text),
    Column("digest", String(64)),
    Column("told_author", String(40)),
    Column("busy_job", Integer),
    Column("busy_until", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("announcement_id", ForeignKey("announcements.id"), nullable=False),
    Column("revision_id", ForeignKey("revisions.id"), nullable=False),
    Column("target", String(120), nullable=False),
    Column("channel", String(16), nullable=False),
    # Empty for one-per-target channels; the E.164 number for one SMS per list member.
    Column("recipient", String(32), nullable=False, server_default=""),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("platform_id", Text),
    # The rest of the receipt (Receipt.data: what editing or deleting the post needs), as JSON
    # text; never a secret. NULL until the delivery is sent.
    Column("receipt_data", Text),
    Column("last_error", Text),
    Column("next_attempt_at", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    # Why a delivery was cancelled without being sent (``opted_out``: the recipient is on the
    # opt-out list, at dispatch or at send time); NULL otherwise.
    Column("cancel_reason", String(16)),
    # What the platform reported later about a sent delivery (SMS status callbacks: ``sent``,
    # ``delivered``, ``undelivered``, ``failed``), its error code, and when; never moves back.
    Column("platform_status", String(16)),
    Column("platform_error", Integer),
    Column("platform_status_at", UtcDateTime),
    # When the channel's maximum age starts counting (NULL: created_at); a retry by hand resets it.
    Column("age_from", UtcDateTime),
    UniqueConstraint("revision_id", "target", "recipient"),
    Index("ix_deliveries_announcement_id", "announcement_id"),
    Index("ix_deliveries_revision_id_state", "revision_id", "state"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(24), nullable=False),
    Column("delivery_id", ForeignKey("deliveries.id"), unique=True),
    # For a job about a whole announcement rather than one delivery (``approval_card``).
    Column("announcement_id", ForeignKey("announcements.id")),
    # The delivery's target, so a worker can skip targets it may not send to right now.
    Column("target", String(120)),
    Column("state", String(16), nullable=False),
    Column("run_at", UtcDateTime, nullable=False),
    # Lower runs first: 0 crisis, 1 important, 2 info (Severity.priority).
    Column("priority", SmallInteger, nullable=False, server_default="2"),
    # Times the job ran (a deferral that sent nothing is not counted).
    Column("attempts", Integer, nullable=False, server_default="0"),
    # Times its lease expired and another claim took it over (a worker died or went silent).
    Column("reclaims", Integer, nullable=False, server_default="0"),
    # Times its handler failed with an error of ours (a bug), as opposed to a platform's answer.
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("lease_owner", String(120)),
    Column("lease_until", UtcDateTime),
    Column("last_error", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_jobs_state_run_at", "state", "run_at"),
    Index("ix_jobs_state_lease_until", "state", "lease_until"),
    # A claim asks, per target, for the most urgent due jobs: one range scan per target.
    Index("ix_jobs_state_target_priority_run_at", "state", "target", "priority", "run_at"),
)

# The next free moment per rate-limited key (``target:<id>``, ``channel:<name>``), shared by every
# worker on the database, so the limit holds across processes and machines.
rate_slots = Table(
    "rate_slots",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("next_at", UtcDateTime, nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(120), nullable=False),
    Column("action", String(40), nullable=False),
    # No foreign key: the audit log outlives what it describes (GDPR deletions, cleanup).
    Column("announcement_id", Integer),
    Column("revision", Integer),
    Column("details", JSON, nullable=False),
    Index("ix_audit_events_announcement_id", "announcement_id"),
)

# Recipient lists (SMS): personal data, stored once. A list is replaced whole by a re-import, so
# its members are never edited in place.
recipient_lists = Table(
    "recipient_lists",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    # The organisation (municipality) the list belongs to; NULL: not tied to one.
    Column("organisation", String(64)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

list_members = Table(
    "list_members",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("list_id", ForeignKey("recipient_lists.id"), nullable=False),
    # E.164, e.g. +46701234567.
    Column("number", String(32), nullable=False),
    Column("name", Text),
    # The member's tags, sorted: a JSON list of strings.
    Column("tags", JSON, nullable=False),
    UniqueConstraint("list_id", "number"),
)

# Numbers that asked for no more texts: they win over every list at send time.
opt_outs = Table(
    "opt_outs",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
)

# Idempotency tokens of inbound platform callbacks (Twilio's ``I-Twilio-Idempotency-Token``): a
# callback retried with a token seen before is acknowledged and not applied again.
callback_tokens = Table(
    "callback_tokens",
    metadata,
    Column("token", String(128), primary_key=True),
    Column("received_at", UtcDateTime, nullable=False),
)
