"""``broadcaster check``: is this workspace ready to send?

Loading the workspace already validated the configuration and secrets (a broken one never gets
here). This adds what only shows when things are put together: the database opens at the current
schema, every template compiles, and a sample announcement renders for every target.

``check --online`` then asks every target's platform whether its credentials and rights work
(:func:`check_online`): all targets at once, each under its own deadline, so one platform that
does not answer costs one timeout, not the whole check.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError

from broadcaster.app import App
from broadcaster.config import Config
from broadcaster.errors import ChannelError, InputError
from broadcaster.model import Content, Severity
from broadcaster.privacy import mask_phone_numbers
from broadcaster.rendering.message import Message
from broadcaster.store.database import SCHEMA_REVISION

if TYPE_CHECKING:
    from broadcaster.channels.base import Channel
    from broadcaster.config import TargetConfig

__all__ = [
    "DEFAULT_ONLINE_TIMEOUT",
    "CheckReport",
    "OnlineResult",
    "check_cli_proof",
    "check_online",
    "check_workspace",
]

log = logging.getLogger("broadcaster.checks")

#: Seconds one target's online check may take, unless ``--timeout`` says otherwise.
DEFAULT_ONLINE_TIMEOUT = 15.0


@dataclass
class CheckReport:
    """What was checked (``lines``) and what is wrong (``problems``)."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: Worth fixing, but the workspace works (they do not fail the check).
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"ok", "checked", "problems", "warnings"}``."""
        return {
            "ok": not self.problems,
            "checked": self.lines,
            "problems": self.problems,
            "warnings": self.warnings,
        }


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
    check_cli_proof(app.config, report)
    _check_teams_approvals(app, report)
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


def check_cli_proof(config: Config, report: CheckReport) -> None:
    """How people prove who they are at the CLI: trusted names, SSH keys, OS account mappings."""
    from broadcaster.identity import trusts_cli_names
    from broadcaster.ssh_signatures import parse_public_key

    policy = config.approval
    exercise = config.broadcaster.exercise
    if trusts_cli_names(config) and not exercise:
        report.warnings.append(
            "[approval] trust_cli_names = true outside an exercise: anyone at the command line "
            "can approve, reject or write as anyone with --as NAME. Remove it, and prove "
            "people by their OS account ([approval.os_users]) or SSH key ([approval.ssh_keys])"
        )
    elif trusts_cli_names(config):
        report.lines.append("CLI names are trusted (an exercise): --as NAME is believed")
    writers = set(policy.approvers) | set(policy.authors)
    report.warnings += [
        f"[approval.os_users] {person!r} is neither in [approval] approvers nor in "
        "[approval] authors: check the name (a mapping for a misspelt name proves nobody)"
        for person in policy.os_users
        if person not in writers
    ]
    for person, line in policy.ssh_keys.items():
        where = f"[approval.ssh_keys] {person!r}"
        if person not in policy.approvers:
            report.warnings.append(
                f"{where} is not in [approval] approvers: only approvers sign decisions"
            )
        try:
            key = parse_public_key(line)
        except ValueError as exc:
            report.warnings.append(
                f"{where}: not a usable public key line ({exc}); paste the whole line of "
                "their .pub file. Until then their signed approvals are refused"
            )
            continue
        report.lines.append(f"{where}: {key.key_type} key {key.fingerprint}")
    if policy.ssh_keys and shutil.which("ssh-keygen") is None:
        report.warnings.append(
            "ssh-keygen is not installed here, so signed approvals cannot be checked: "
            "install the OpenSSH client"
        )


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


@dataclass(frozen=True)
class OnlineResult:
    """What one target's platform said about its credentials: [] problems when all is well."""

    target: str
    channel: str
    problems: list[str]

    def to_json(self) -> dict[str, Any]:
        """``{"target", "channel", "ok", "problems"}``."""
        return {
            "target": self.target,
            "channel": self.channel,
            "ok": not self.problems,
            "problems": self.problems,
        }


def check_online(app: App, timeout: float = DEFAULT_ONLINE_TIMEOUT) -> list[OnlineResult]:
    """Ask every target's adapter :meth:`~Channel.check_online`, all at once; in config order.

    Each target has ``timeout`` seconds; one that does not answer in time is a problem of its
    own and does not hold up the others. (An adapter's blocking SDK calls carry their own
    timeouts, as every platform call must: a thread cannot be cancelled from here.)
    """
    return asyncio.run(_check_targets(app, app.config.targets, timeout))


async def _check_targets(
    app: App, targets: list[TargetConfig], seconds: float
) -> list[OnlineResult]:
    return list(await asyncio.gather(*(_check_target(app, t, seconds) for t in targets)))


async def _check_target(app: App, target: TargetConfig, seconds: float) -> OnlineResult:
    channel = str(target.channel)
    try:
        adapter = app.registry.create(target, app.channel_context())
    except InputError as exc:  # no adapter for this channel or mode in this version
        return OnlineResult(target.id, channel, [str(exc)])
    try:
        async with asyncio.timeout(seconds):
            problems = list(await adapter.check_online())
    except TimeoutError:
        problems = [
            f"no answer from {channel} within {seconds:g} s; check this machine's network and "
            f"the platform's status page, then run `broadcaster check --online` again (or give "
            "it longer with --timeout)"
        ]
    except ChannelError as exc:
        problems = [str(exc)]
    except Exception as exc:
        # A bug, or a library error the adapter does not map: say so rather than stop the rest.
        log.debug("the online check of %s failed", target.id, exc_info=True)
        problems = [
            f"the check itself failed ({type(exc).__name__}: {exc}); "
            "if it happens again, report it with this line"
        ]
    await _close(adapter, target.id, seconds)
    # A platform's answer may quote a recipient's number; it is printed, so it is masked.
    return OnlineResult(target.id, channel, [mask_phone_numbers(p) for p in problems])


async def _close(adapter: Channel, target_id: str, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await adapter.aclose()
    except Exception:  # closing is tidying up; the check's answer stands
        log.debug("closing the %s adapter failed after its online check", target_id, exc_info=True)


def _check_teams_approvals(app: App, report: CheckReport) -> None:
    """Where approval cards go, who can click them, and whether approving sends."""
    config = app.config
    policy = config.approval
    sends = {
        True: "every update",
        False: "no update (`broadcaster send` does)",
        None: "crisis updates",
    }
    report.lines.append(f"approval: the last approval sends {sends[policy.send_on_approval]}")
    if not policy.teams_channel_id:
        report.lines.append("approval: no Teams channel; approvals happen at the command line")
        return
    if config.teams_bot is None:
        report.problems.append(
            f"[approval] teams_channel_id = {policy.teams_channel_id!r} but there is no "
            "[teams_bot]: no approval card can be posted; add [teams_bot] (app_id, "
            "app_password, tenant_id) or remove teams_channel_id"
        )
        return
    mapped = [p for p in policy.approvers if p in policy.identities]
    line = (
        f"approval: cards go to Teams channel {policy.teams_channel_id}; "
        f"{len(mapped)} of {len(policy.approvers)} approvers can decide there"
    )
    unmapped = [p for p in policy.approvers if p not in policy.identities]
    if unmapped:
        line += (
            f" ({', '.join(unmapped)}: no Entra object id in [approval.identities], "
            "so the command line only)"
        )
    report.lines.append(line)
