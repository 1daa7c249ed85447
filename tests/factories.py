"""Builders for test data."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select, update

from broadcaster.app import App
from broadcaster.channels.base import Channel
from broadcaster.model import Content, DeliveryState, RevisionKind, Severity
from broadcaster.rendering.message import Message
from broadcaster.store.announcements import get_announcement
from broadcaster.store.deliveries import NewDelivery, create_deliveries
from broadcaster.store.schema import deliveries
from broadcaster.store.sql import chunked

AdapterT = TypeVar("AdapterT", bound=Channel)
T = TypeVar("T")


def adapter_of(app: App, target_id: str, kind: type[AdapterT]) -> AdapterT:
    """The adapter the workspace builds for ``target_id``, checked to be a ``kind``."""
    target = app.config.target(target_id)
    assert target is not None
    adapter = app.registry.create(target, app.channel_context())
    assert isinstance(adapter, kind)
    return adapter


def run_adapter(adapter: AdapterT, action: Callable[[AdapterT], Awaitable[T]]) -> T:
    """Run ``action`` on one event loop, closing the adapter's clients afterwards."""

    async def main() -> T:
        try:
            return await action(adapter)
        finally:
            await adapter.aclose()

    return asyncio.run(main())


HOSTILE_TITLE = '<script>alert("title")</script> & "citat" \'enkla\' {{ 7*7 }}'
HOSTILE_BODY = (
    'Första stycket <script>alert("body")</script> & <img src=x onerror=alert(1)>.\n\n'
    "[klicka](javascript:alert(1)) och [riktig länk](https://www.borgholm.se/?a=1&b=2)\n\n"
    "- punkt {% raw %} ett\n- punkt två"
)


def make_message(
    app: App,
    target_id: str,
    *,
    title: str = "Vattnet är tillbaka",
    body: str = "Dricksvattnet fungerar igen i **hela** kommunen.",
    severity: Severity = Severity.IMPORTANT,
    revision: int = 1,
    uid: str | None = None,
    kind: RevisionKind = RevisionKind.ORIGINAL,
    at: datetime | None = None,
    published: datetime | None = None,
) -> Message:
    """A message for one target of the test workspace, without touching the database."""
    content = Content(title=title, body=body, severity=severity, targets=(target_id,), kind=kind)
    return Message.unsaved(
        app.config,
        content,
        target_id=target_id,
        at=at or app.clock(),
        uid=uid,
        revision=revision,
        published_at=published,
    )


# ---------------------------------------------------------------------------------------------
# SMS lists: a target in the workspace, and deliveries made as a dispatch makes them

SMS_TARGET = "sms-borgholm"
#: Numbers for fiction (PTS sets 070-174 06 00 to 070-174 06 99 aside): never anyone's phone.
FICTIONAL_NUMBERS = tuple(f"+467017406{n:02d}" for n in range(100))


def add_sms_target(
    workspace_dir: Path, target: str = SMS_TARGET, list_name: str = "boende"
) -> None:
    """An SMS target in the workspace's configuration, with its (fake) secrets in .env."""
    config = workspace_dir / "broadcaster.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'\n[[targets]]\nid = "{target}"\nchannel = "sms"\norganisation = "borgholm"\n'
        f'list = "{list_name}"\nsender = "Borgholm"\n'
        'account_sid = "env:TWILIO_ACCOUNT_SID"\nauth_token = "env:TWILIO_AUTH_TOKEN"\n',
        encoding="utf-8",
    )
    with (workspace_dir / ".env").open("a", encoding="utf-8") as env:
        env.write("TWILIO_ACCOUNT_SID=AC" + "0" * 32 + "\nTWILIO_AUTH_TOKEN=not-a-secret\n")


def sms_deliveries(
    app: App,
    announcement_id: int,
    numbers: Sequence[str],
    *,
    target: str = SMS_TARGET,
    revision_id: int | None = None,
) -> list[int]:
    """Pending SMS deliveries, one per number, for a revision (the current one by default), as
    the dispatch creates them (without jobs); returns their ids in order."""
    with app.store.write() as conn:
        if revision_id is None:
            revision_id = get_announcement(conn, announcement_id).revision.id
        rows = [NewDelivery(target=target, channel="sms", recipient=n) for n in numbers]
        create_deliveries(
            conn,
            announcement_id=announcement_id,
            revision_id=revision_id,
            rows=rows,
            now=app.clock(),
        )
        query = (
            select(deliveries.c.id)
            .where(deliveries.c.revision_id == revision_id, deliveries.c.target == target)
            .order_by(deliveries.c.id)
        )
        return list(conn.execute(query).scalars())


def set_outcome(
    app: App, delivery_ids: Sequence[int], state: DeliveryState, **columns: Any
) -> None:
    """Put deliveries in ``state`` with other columns as given (``platform_status``,
    ``platform_error``, ``cancel_reason``, ``last_error``, ``attempts`` ...), as the worker and
    the status callbacks would have left them."""
    values: dict[str, Any] = {"state": state, "attempts": 1, **columns}
    if state == DeliveryState.SENT:
        values.setdefault("sent_at", app.clock())
    with app.store.write() as conn:
        for chunk in chunked(list(delivery_ids)):
            conn.execute(update(deliveries).where(deliveries.c.id.in_(chunk)).values(**values))
