"""``broadcaster check``: is this workspace ready to send?

Loading the workspace already validated the configuration and secrets (a broken one never gets
here). This adds what only shows when things are put together: the database opens at the current
schema, every template compiles, and a sample announcement renders for every target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jinja2 import TemplateSyntaxError

from broadcaster.app import App
from broadcaster.errors import InputError
from broadcaster.model import Content, Severity
from broadcaster.rendering.message import Message
from broadcaster.store.database import SCHEMA_REVISION

__all__ = ["CheckReport", "check_workspace"]


@dataclass
class CheckReport:
    """What was checked (``lines``) and what is wrong (``problems``)."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"ok", "checked", "problems"}``."""
        return {"ok": not self.problems, "checked": self.lines, "problems": self.problems}


def check_workspace(app: App) -> CheckReport:
    """Run every offline check."""
    report = CheckReport()
    config = app.config
    report.lines.append(
        f"configuration {app.workspace.config_path}: {len(config.organisations)} organisations, "
        f"{len(config.targets)} targets, {len(config.groups)} groups; secrets resolved"
    )
    report.lines.append(f"database ({app.store.dialect}) at schema revision {SCHEMA_REVISION}")
    _check_approval(app, report)
    reported = _check_templates(app, report)
    # One line per problem: a broken template shared by several targets is one mistake to fix,
    # named once with every target it stops, and not again when the compile check found it.
    by_problem: dict[str, list[str]] = {}
    for target in config.targets:
        try:
            adapter = app.registry.create(target, app.channel_context())
            problems = list(adapter.prepare(_sample(app, target.id)).problems)
        except InputError as exc:
            problems = [str(exc)]
        for problem in problems:
            by_problem.setdefault(problem, []).append(target.id)
        if not problems:
            report.lines.append(f"target {target.id} ({target.channel}): a sample renders")
    for problem, target_ids in by_problem.items():
        if problem not in reported:
            noun = "target" if len(target_ids) == 1 else "targets"
            report.problems.append(f"{noun} {', '.join(target_ids)}: {problem}")
    return report


def _check_approval(app: App, report: CheckReport) -> None:
    """Can an update ever be approved? Not if the approvers who may approve it are too few.

    Nobody approves what they wrote or edited, so an approver who also writes updates (a
    "likely author": listed in ``[approval] authors``, or a writer of announcements in this
    workspace) leaves one approver fewer for each of their own updates.
    """
    policy = app.config.approval
    approvers, required = policy.approvers, policy.required
    names = ", ".join(approvers) or "none"
    setting = f"[approval] required = {required} with {len(approvers)} approver(s) ({names})"
    if len(approvers) < required:  # only with none listed: loading refuses too few
        report.problems.append(
            f"{setting}: no announcement can ever be approved; "
            "add approvers to [approval] approvers or lower [approval] required"
        )
        return
    likely = [] if policy.allow_self_approval else _likely_authors(app, approvers)
    if likely and len(approvers) - 1 < required:
        who = "; ".join(f"{person} ({why})" for person, why in likely)
        report.problems.append(
            f"{setting}: an update written or edited by a likely author can never be approved, "
            f"because only {len(approvers) - 1} other approver(s) would remain. Likely authors: "
            f"{who}. Add an approver to [approval] approvers or lower [approval] required"
        )
        return
    authors = f"; likely authors among them: {', '.join(p for p, _ in likely)}" if likely else ""
    report.lines.append(f"approval: {required} of {len(approvers)} approvers ({names}){authors}")


def _likely_authors(app: App, approvers: list[str]) -> list[tuple[str, str]]:
    """Approvers who write updates, each with how we know."""
    from broadcaster.store.announcements import writer_counts

    listed = set(app.config.approval.authors)
    with app.store.read() as conn:
        written = writer_counts(conn)
    found = []
    for person in approvers:
        if person in listed:
            found.append((person, "listed in [approval] authors"))
        elif person in written:
            found.append((person, f"wrote or edited {written[person]} revision(s) here"))
    return found


def _check_templates(app: App, report: CheckReport) -> set[str]:
    """Compile every template; returns the problems found, as rendering would word them."""
    env = app.renderer.env
    names = env.list_templates()
    found: set[str] = set()
    for name in names:
        try:
            env.get_template(name)
        except TemplateSyntaxError as exc:
            problem = f"{exc.filename or name}, line {exc.lineno}: {exc.message}"
            found.add(problem)
            report.problems.append(f"template {problem}")
    if not found:
        overrides = app.renderer.override_dir
        where = f" (overrides in {overrides})" if overrides else ""
        report.lines.append(f"{len(names)} templates compile{where}")
    return found


def _sample(app: App, target_id: str) -> Message:
    content = Content(
        title="Provmeddelande",
        body="Detta är ett provmeddelande från `broadcaster check`.\n\n- punkt ett\n- punkt två",
        severity=Severity.IMPORTANT,
        language=app.config.broadcaster.language,
        targets=(target_id,),
    )
    return Message.unsaved(app.config, content, target_id=target_id, at=app.clock())
