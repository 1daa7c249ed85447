"""Idempotency tokens of inbound platform callbacks: the only module that writes them.

Twilio retries a status callback it got no 2xx for with the same ``I-Twilio-Idempotency-Token``;
the token is claimed in the transaction that applies the callback, so a retry is applied once.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Connection, delete

from broadcaster.store.schema import callback_tokens
from broadcaster.store.sql import insert_many_or_ignore, insert_or_ignore

__all__ = ["claim_token", "claim_tokens", "forget_tokens_before"]


def claim_token(conn: Connection, token: str, now: datetime) -> bool:
    """Record ``token``; False when it was recorded before (the callback is a retry)."""
    return insert_or_ignore(conn, callback_tokens, {"token": token, "received_at": now})


def claim_tokens(conn: Connection, tokens: Collection[str], now: datetime) -> set[str]:
    """Record many tokens at once; returns those not recorded before (the rest are retries).

    Inserted in sorted order, so two transactions claiming overlapping tokens on PostgreSQL
    wait for each other instead of deadlocking.
    """
    rows = [{"token": token, "received_at": now} for token in sorted(set(tokens))]
    return set(insert_many_or_ignore(conn, callback_tokens, rows))


def forget_tokens_before(conn: Connection, cutoff: datetime) -> int:
    """Drop tokens older than ``cutoff`` (Twilio stops retrying within hours); how many."""
    result = conn.execute(delete(callback_tokens).where(callback_tokens.c.received_at < cutoff))
    return int(result.rowcount or 0)
