"""Approvals in Teams: a workspace whose bot posts approval cards in the sandbox's Teams."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from broadcaster.app import App, open_app
from broadcaster.authoring import DraftInput, create_draft, submit
from broadcaster.model import Announcement, Severity
from broadcaster.queue.jobs import JobKind
from broadcaster.sandbox import APPROVER_OBJECT_IDS, TEAMS_CHANNEL_IDS
from broadcaster.server.context import BotCaller
from broadcaster.store.audit import list_events
from broadcaster.store.schema import deliveries, jobs
from broadcaster.workspace import load_workspace
from tests.conftest import FakeClock, set_database_url

APPROVERS_CHANNEL = TEAMS_CHANNEL_IDS[0]
AUTHOR = "kommunikator"
JENS, ANNA, ANN = "jens.odevall", "anna.hasselbom", "ann.willsund"
OBJECT_IDS = dict(zip((JENS, ANNA, ANN), APPROVER_OBJECT_IDS, strict=True))
STRANGER_ID = "00000000-0000-0000-0000-0000000000ff"
CLIENT_IP = "192.0.2.10"

QUEUE = """
[queue]
retry_base_seconds = 0.05
retry_cap_seconds = 0.3
lease_seconds = 10
"""
TEAMS = """
[teams_bot]
app_id = "env:TEAMS_APP_ID"
app_password = "env:TEAMS_APP_PASSWORD"
tenant_id = "env:TEAMS_TENANT_ID"
"""


def approval_section(send_on_approval: bool | None, *, channel: bool = True) -> str:
    lines = [
        "[approval]",
        "required = 2",
        f'approvers = ["{JENS}", "{ANNA}", "{ANN}", "{AUTHOR}"]',
        "allow_self_approval = false",
        # One OS account plays every person here (tests of proving who acts are elsewhere).
        "trust_cli_names = true",
    ]
    if channel:
        lines.append(f'teams_channel_id = "{APPROVERS_CHANNEL}"')
    if send_on_approval is not None:
        lines.append(f"send_on_approval = {str(send_on_approval).lower()}")
    lines.append("[approval.identities]")
    lines += [f'"{person}" = "{oid}"' for person, oid in OBJECT_IDS.items()]
    lines.append(f'"{AUTHOR}" = "00000000-0000-0000-0000-0000000000aa"')
    return "\n".join(lines) + "\n"


def write_config(
    workspace_dir: Path,
    database_url: str,
    *,
    send_on_approval: bool | None = None,
    teams: bool = True,
    channel: bool = True,
) -> Path:
    """The scaffold's workspace on ``database_url`` with approval cards in Teams."""
    set_database_url(workspace_dir, database_url)
    path = workspace_dir / "broadcaster.toml"
    text = path.read_text(encoding="utf-8")
    start = text.index("[approval]")
    end = text.index("[[organisations]]")
    section = approval_section(send_on_approval, channel=channel)
    text = text[:start] + QUEUE + section + "\n" + text[end:]
    path.write_text(text + (TEAMS if teams else ""), encoding="utf-8")
    return path


def open_workspace(path: Path, sandbox: Any, clock: FakeClock | None = None) -> App:
    workspace = load_workspace(path, sandbox.env())
    return open_app(workspace, clock=clock) if clock is not None else open_app(workspace)


@pytest.fixture
def teams_app(workspace_dir: Path, database_url: str, sandbox: Any) -> Iterator[App]:
    """Cards in Teams; ``send_on_approval`` left to its default (crisis sends)."""
    application = open_workspace(write_config(workspace_dir, database_url), sandbox)
    yield application
    application.close()


def submitted(
    app: App, *, severity: Severity = Severity.IMPORTANT, author: str = AUTHOR, **fields: Any
) -> Announcement:
    draft = create_draft(
        app,
        author,
        DraftInput(
            title=fields.get("title", "Vattnet är tillbaka"),
            body=fields.get("body", "Dricksvattnet fungerar igen i hela kommunen."),
            severity=severity,
        ),
    )
    return submit(app, author, draft.id)


def caller(ip: str = CLIENT_IP) -> BotCaller:
    return BotCaller(claims={"iss": "https://api.botframework.com"}, client_ip=ip)


def count_jobs(app: App, kind: str) -> int:
    with app.store.read() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(jobs).where(jobs.c.kind == kind)
            ).scalar_one()
        )


def count_deliveries(app: App, announcement_id: int) -> int:
    with app.store.read() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(deliveries)
                .where(deliveries.c.announcement_id == announcement_id)
            ).scalar_one()
        )


def events(app: App, announcement_id: int | None, action: str) -> list[Any]:
    with app.store.read() as conn:
        return [e for e in list_events(conn, announcement_id) if e.action == action]


def deliver_jobs(app: App) -> int:
    return count_jobs(app, JobKind.DELIVER)
