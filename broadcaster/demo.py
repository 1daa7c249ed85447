"""``broadcaster demo``: the whole flow once, on the embedded defaults.

A fresh example workspace, the seed incident's first update drafted by the communications
officer, approved by two different people, sent, and delivered by the worker.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broadcaster.app import open_app
from broadcaster.approval import approve
from broadcaster.authoring import DraftInput, create_draft, submit
from broadcaster.config import WebsiteStaticTarget
from broadcaster.dispatch import dispatch_revision
from broadcaster.model import Severity
from broadcaster.reports import announcement_status
from broadcaster.scaffold import example_update, init_workspace
from broadcaster.worker_runtime import run_worker
from broadcaster.workspace import CONFIG_FILENAME, load_workspace

__all__ = ["DEMO_BODY", "DEMO_TITLE", "DemoResult", "run_demo"]

OFFICER = "kommunikator"
APPROVERS = ("anna.hasselbom", "jens.odevall")
DEMO_TITLE = "Dataintrång hos Borgholms och Mörbylånga kommuner"
DEMO_BODY = example_update()  # the uppdatering.md that `broadcaster init` writes


@dataclass(frozen=True)
class DemoResult:
    """Where the demo left its workspace and what it produced."""

    workspace: Path
    announcement_id: int
    status: dict[str, Any]
    timezone: str
    pages: list[Path]


def run_demo(
    directory: Path | None, environ: Mapping[str, str], say: Callable[[str], None]
) -> DemoResult:
    """Run the demo in ``directory`` (a new temporary folder when None), narrating via ``say``."""
    root = (directory or Path(tempfile.mkdtemp(prefix="broadcaster-demo-"))).resolve()
    init_workspace(root)
    say(f"Created an example workspace for Borgholm and Mörbylånga in {root}")
    workspace = load_workspace(root / CONFIG_FILENAME, environ)
    app = open_app(workspace)
    try:
        draft = create_draft(
            app,
            OFFICER,
            DraftInput(title=DEMO_TITLE, body=DEMO_BODY, severity=Severity.CRISIS, to=("all",)),
        )
        targets = ", ".join(draft.revision.content.targets)
        say(f"{OFFICER} drafted announcement {draft.id} for {targets}")
        submit(app, OFFICER, draft.id)
        say(f"{OFFICER} submitted it for approval ({app.config.approval.required} needed)")
        for person in APPROVERS:
            approve(app, person, draft.id)
            say(f"{person} approved revision {draft.revision.number}")
        dispatch_revision(app, OFFICER, draft.id)
        say("Sent: one delivery per target is queued")
        processed = asyncio.run(run_worker(app, until_idle=True))
        say(f"The worker ran {processed} job(s) and is idle")
        status = announcement_status(app, draft.id)
    finally:
        app.close()
    pages = [
        workspace.path(target.output_dir) / "index.html"
        for target in workspace.config.targets
        if isinstance(target, WebsiteStaticTarget)
    ]
    return DemoResult(root, draft.id, status, workspace.config.broadcaster.timezone, pages)
