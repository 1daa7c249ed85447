"""The workspace configuration (``broadcaster.toml``) as typed, validated, immutable models.

Key names follow ``examples/broadcaster.toml`` (DESIGN §4), which is a contract: keys may be added,
never renamed. Secrets are never written in the file: a secret field holds ``env:NAME`` and is
resolved from the environment (and the workspace's ``.env``) while validating, through the
validation context ``{"env": mapping}``. Checks that span sections (a group naming an unknown
target, a duplicate id) live in :func:`cross_check` so each problem gets its own line.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    SecretStr,
    Tag,
    ValidationInfo,
    model_validator,
)

from broadcaster.model import ChannelName

__all__ = [
    "ApprovalPolicy",
    "ChannelLimits",
    "Config",
    "FacebookTarget",
    "GeneralSettings",
    "Organisation",
    "QueueSettings",
    "SmsTarget",
    "TargetConfig",
    "TeamsBotSettings",
    "TeamsBotTarget",
    "TeamsWorkflowTarget",
    "TelegramTarget",
    "WebsiteStaticTarget",
    "WebsiteWebhookTarget",
    "cross_check",
]

IMPLICIT_GROUP = "all"
ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"

Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
#: A login name (POSIX, or a Windows account such as ``DOMAIN\\user``).
OsAccount = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_.@\\$-]{0,99}$")]


def _resolve_secret(value: object, info: ValidationInfo) -> SecretStr:
    if not isinstance(value, str) or not value.startswith("env:"):
        raise ValueError(
            "secrets are not written in the configuration; write env:NAME and put NAME in .env"
        )
    name = value.removeprefix("env:")
    if not name:
        raise ValueError("env: needs a variable name, e.g. env:FB_APP_SECRET")
    env: Mapping[str, str] = (info.context or {}).get("env", {})
    secret = env.get(name)
    if not secret:
        raise ValueError(f"environment variable {name} is not set (add it to the workspace's .env)")
    return SecretStr(secret)


def _resolve_url(value: object, info: ValidationInfo) -> SecretStr:
    """A webhook URL: written in the file, or ``env:NAME`` when it carries a token (DESIGN §4)."""
    if isinstance(value, str) and value.startswith("env:"):
        return SecretStr(_check_web_url(_resolve_secret(value, info).get_secret_value()))
    if not isinstance(value, str):
        # ValueError, not TypeError: pydantic reports only ValueError as a configuration mistake.
        raise ValueError("write the URL as a string, or env:NAME to read it from .env")  # noqa: TRY004
    return SecretStr(_check_web_url(value))


def _check_web_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (e.g. Europe/Stockholm)") from None
    return value


Secret = Annotated[SecretStr, BeforeValidator(_resolve_secret)]
WebUrl = Annotated[str, AfterValidator(_check_web_url)]
#: A URL that may carry a token: literal, or ``env:NAME``; kept out of output like a secret.
SecretUrl = Annotated[SecretStr, BeforeValidator(_resolve_url)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GeneralSettings(_Model):
    """``[broadcaster]``: where data lives and how the deployment behaves."""

    database_url: str = "sqlite:///broadcaster.db"
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "Europe/Stockholm"
    templates_dir: str = "templates"
    exercise: bool = False
    public_base_url: WebUrl | None = None
    language: str = Field("sv", pattern=r"^[a-z]{2,3}$")


class ApprovalPolicy(_Model):
    """``[approval]``: the four-eyes rule."""

    required: int = Field(2, ge=1, le=10)
    approvers: list[Identifier] = Field(default_factory=list)
    allow_self_approval: bool = False
    #: People who write updates (the communications officers). Nobody approves what they wrote,
    #: so ``check`` reports an approver listed here who would leave too few approvers.
    authors: list[Identifier] = Field(default_factory=list)
    teams_channel_id: str | None = None
    identities: dict[str, str] = Field(default_factory=dict)
    #: ``--as NAME`` (or BROADCASTER_USER) naming someone the OS account does not prove is
    #: believed at the CLI. None: only in exercise mode (see ``broadcaster.identity``).
    trust_cli_names: bool | None = None
    #: Person -> the OS account that proves them at the CLI (approvals, and authors of drafts).
    os_users: dict[Identifier, OsAccount] = Field(default_factory=dict)
    #: Person -> the SSH public key line their signed CLI approvals are checked with.
    ssh_keys: dict[Identifier, str] = Field(default_factory=dict)
    #: The last needed approval also sends (enqueues the fan-out in the same transaction).
    #: None: only for severity ``crisis``; other updates wait for ``broadcaster send``.
    send_on_approval: bool | None = None

    def sends_on_approval(self, severity: str) -> bool:
        """Whether approving an update of ``severity`` sends it at once."""
        if self.send_on_approval is None:
            return severity == "crisis"
        return self.send_on_approval

    def person_for(self, object_id: str) -> str | None:
        """The approver whose Entra object id is ``object_id`` (case-insensitive), or None."""
        wanted = object_id.strip().lower()
        found = [p for p, oid in self.identities.items() if oid.strip().lower() == wanted]
        return found[0] if len(found) == 1 else None


class QueueSettings(_Model):
    """``[queue]``: how workers claim and retry (defaults suit one municipality)."""

    #: First retry waits up to this long; each later one up to twice as long (full jitter) ...
    retry_base_seconds: float = Field(2.0, gt=0)
    #: ... but never more than this.
    retry_cap_seconds: float = Field(600.0, gt=0)
    #: A job held this long by a silent worker is taken over by another worker.
    lease_seconds: float = Field(300.0, ge=5)
    #: Jobs claimed per database round trip.
    batch_size: int = Field(100, ge=1, le=5000)
    #: Jobs one worker runs at once (across all targets).
    max_in_flight: int = Field(64, ge=1, le=10_000)
    #: On SIGTERM, how long in-flight jobs may finish before they are released.
    shutdown_grace_seconds: float = Field(20.0, ge=0)
    #: A job taken over this many times from workers that went silent while holding it (it may
    #: be what kills them) becomes a dead letter for a person to look at.
    max_reclaims: int = Field(5, ge=1, le=100)
    #: A job whose handler fails this many times (a bug, not a platform error) is dead-lettered.
    max_handler_errors: int = Field(5, ge=1, le=100)


class ChannelLimits(_Model):
    """``[channels.<name>]``: limits for every target of one channel (all optional)."""

    #: Sends per second over all targets of the channel, across every worker (e.g. one bot).
    rate_per_second: float | None = Field(None, gt=0)
    #: Sends at once per target, per worker (overrides the adapter's default).
    concurrency: int | None = Field(None, ge=1)
    #: Sends at once over all targets of the channel, per worker.
    in_flight: int | None = Field(None, ge=1)
    max_attempts: int | None = Field(None, ge=1)
    max_age_hours: float | None = Field(None, gt=0)


class TeamsBotSettings(_Model):
    """``[teams_bot]``: the bot identity used for Teams channel posts and approval cards."""

    app_id: Secret
    app_password: Secret
    tenant_id: Secret
    service_url: WebUrl = "https://smba.trafficmanager.net/emea/"


class Organisation(_Model):
    """``[[organisations]]``: a municipality; templates see every field."""

    id: Identifier
    name: str = Field(min_length=1)
    phone: str = Field(min_length=1)
    website: WebUrl
    kommunkod: str = Field(pattern=r"^\d{4}$")
    contacts: list[str] = Field(default_factory=list)
    #: The ``sender`` of its CAP alerts (no spaces, commas, < or &); default: the website's
    #: host without ``www.``.
    cap_sender: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,99}$")


class _Target(_Model):
    id: Identifier
    organisation: Identifier
    #: Sends per second to this target, across every worker.
    rate_per_second: float | None = Field(None, gt=0)
    #: Sends at once to this target, per worker.
    concurrency: int | None = Field(None, ge=1)


class FacebookTarget(_Target):
    """A post on a Facebook page's feed."""

    channel: Literal[ChannelName.FACEBOOK]
    page_id: str = Field(pattern=r"^\d+$")
    access_token: Secret
    app_secret: Secret
    #: Graph API version the posts use; each stays available two years after its successor.
    graph_api_version: str = Field("v24.0", pattern=r"^v\d{1,2}\.\d{1,2}$")
    #: The app's id (public): with it ``check --online`` asks Graph when the page token expires.
    app_id: str | None = Field(None, pattern=r"^\d+$")


class SmsTarget(_Target):
    """One SMS per recipient of an imported list, through Twilio."""

    channel: Literal[ChannelName.SMS]
    list: Identifier
    sender: str | None = Field(None, pattern=r"^(\+[1-9]\d{6,14}|[A-Za-z0-9 ]{1,11})$")
    messaging_service_sid: str | None = Field(None, pattern=r"^MG[0-9a-fA-F]{32}$")
    account_sid: Secret
    auth_token: Secret
    max_segments: int = Field(3, ge=1, le=10)
    #: What one segment costs, in the Twilio account's currency; optional. With it, ``preview``
    #: shows a send's cost (segments x recipients x price).
    price_per_segment: Decimal | None = Field(None, ge=0)
    #: Seconds a message may wait in Twilio's queue before Twilio drops it unsent (Twilio's
    #: ``ValidityPeriod``, 1 to 36000): a crisis text that could not go out within the hour
    #: does more harm arriving hours late. Twilio's own default is 10 hours.
    validity_period: int = Field(3600, ge=1, le=36000)
    #: Typographic quotes, dashes, the ellipsis and odd spaces become their plain equivalents
    #: when that keeps the text GSM-7 (160 characters per SMS instead of 70).
    gsm_replacements: bool = True
    #: Longest wait for Twilio's answer to one request. A send whose answer does not come in
    #: time may still have been accepted: it is looked up before it is ever sent again.
    timeout_seconds: float = Field(10.0, gt=0, le=60)
    #: The secret of a Twilio webhook SharedKey, when a Webhook Rule makes Twilio sign this
    #: account's status callbacks with it (HMAC-SHA256) instead of with the auth token.
    webhook_shared_key: Secret | None = None


class TeamsBotTarget(_Target):
    """An Adaptive Card posted by our bot in a Teams channel."""

    channel: Literal[ChannelName.TEAMS]
    mode: Literal["bot"]
    channel_id: str = Field(min_length=1)
    # The bot is configured once, in [teams_bot], not per target; the configuration hands it to
    # each bot target so that the adapter, which sees only its target, can post as the bot.
    _bot: TeamsBotSettings | None = PrivateAttr(default=None)

    @property
    def bot(self) -> TeamsBotSettings | None:
        """The ``[teams_bot]`` identity this target posts as (None without that section)."""
        return self._bot


class TeamsWorkflowTarget(_Target):
    """A card POSTed to a Power Automate Workflows webhook (one-way)."""

    channel: Literal[ChannelName.TEAMS]
    mode: Literal["workflow"]
    webhook_url: Secret


class WebsiteStaticTarget(_Target):
    """Crisis page, Atom feed and JSON written into a folder any web server can serve."""

    channel: Literal[ChannelName.WEBSITE]
    mode: Literal["static"]
    output_dir: str = Field(min_length=1)
    public_url: WebUrl | None = None
    publish_command: list[str] | None = None
    #: The publish step is stopped (and retried later) when it runs longer than this.
    publish_timeout_seconds: float = Field(120.0, gt=0, le=3600)
    #: The index shows this many of the newest updates in full and links the older ones, so the
    #: page stays small after a hundred updates.
    inline_updates: int = Field(10, ge=1, le=1000)
    #: A retracted update is shown marked as withdrawn ("mark"), or taken off the index and the
    #: feed ("remove"; its own page then says only that it was withdrawn).
    retracted: Literal["mark", "remove"] = "mark"


class WebsiteWebhookTarget(_Target):
    """A signed JSON POST to the municipality's CMS."""

    channel: Literal[ChannelName.WEBSITE]
    mode: Literal["webhook"]
    url: SecretUrl
    secret: Secret


class TelegramTarget(_Target):
    """A message in a Telegram channel."""

    channel: Literal[ChannelName.TELEGRAM]
    chat_id: str = Field(pattern=r"^(@[A-Za-z][A-Za-z0-9_]{3,}|-?\d+)$")
    bot_token: Secret
    #: Show Telegram's preview card of the first link; off keeps posts short and avoids an empty
    #: card while the linked website is down (as one was in the seed incident).
    link_preview: bool = False
    #: Longest wait for one answer from Telegram; a send whose answer does not come in time may
    #: still have been posted, and goes to a person (Telegram cannot be asked afterwards).
    timeout_seconds: float = Field(10.0, gt=0, le=25)


_DEFAULT_MODE = {ChannelName.TEAMS: "bot", ChannelName.WEBSITE: "static"}


def _target_tag(value: Any) -> str | None:
    """Pick the model for a raw target: its channel, and for Teams and website also its mode."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if not isinstance(value, dict):
        return None
    channel = value.get("channel")
    if channel in _DEFAULT_MODE:
        return f"{channel}:{value.get('mode', _DEFAULT_MODE[channel])}"
    return channel if isinstance(channel, str) else None


TargetConfig = Annotated[
    Annotated[FacebookTarget, Tag("facebook")]
    | Annotated[SmsTarget, Tag("sms")]
    | Annotated[TeamsBotTarget, Tag("teams:bot")]
    | Annotated[TeamsWorkflowTarget, Tag("teams:workflow")]
    | Annotated[WebsiteStaticTarget, Tag("website:static")]
    | Annotated[WebsiteWebhookTarget, Tag("website:webhook")]
    | Annotated[TelegramTarget, Tag("telegram")],
    Discriminator(
        _target_tag,
        custom_error_type="unknown_channel",
        custom_error_message=(
            "unknown channel or mode (channels: facebook, sms, teams [bot|workflow], "
            "website [static|webhook], telegram)"
        ),
    ),
]


class Config(_Model):
    """The whole ``broadcaster.toml``."""

    broadcaster: GeneralSettings = Field(default_factory=GeneralSettings)
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    channels: dict[ChannelName, ChannelLimits] = Field(default_factory=dict)
    teams_bot: TeamsBotSettings | None = None
    organisations: list[Organisation] = Field(min_length=1)
    groups: dict[Identifier, list[str]] = Field(default_factory=dict)
    targets: list[TargetConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _give_bot_targets_the_bot(self) -> Config:
        for target in self.targets:
            if isinstance(target, TeamsBotTarget):
                target._bot = self.teams_bot
        return self

    def organisation(self, org_id: str) -> Organisation:
        """The organisation with this id (the config is cross-checked, so it exists)."""
        return next(org for org in self.organisations if org.id == org_id)

    def target(self, target_id: str) -> TargetConfig | None:
        """The target with this id, or None."""
        return next((t for t in self.targets if t.id == target_id), None)

    def group_members(self) -> dict[str, list[str]]:
        """Every group, implicit ones included: ``all`` and one per organisation id."""
        groups = {IMPLICIT_GROUP: [t.id for t in self.targets]}
        for org in self.organisations:
            groups[org.id] = [t.id for t in self.targets if t.organisation == org.id]
        groups.update(self.groups)
        return groups


def cross_check(config: Config) -> list[str]:
    """Problems that span sections, each as ``key: message``; empty when the config is sound."""
    problems: list[str] = []
    problems += _duplicates("organisations", [org.id for org in config.organisations])
    target_ids = [t.id for t in config.targets]
    problems += _duplicates("targets", target_ids)
    org_ids = {org.id for org in config.organisations}
    for index, target in enumerate(config.targets):
        where = f"targets[{index}] ({target.id})"
        if target.organisation not in org_ids:
            problems.append(f"{where}.organisation: unknown organisation {target.organisation!r}")
        if isinstance(target, TeamsBotTarget) and config.teams_bot is None:
            problems.append(f"{where}.mode: mode 'bot' needs a [teams_bot] section")
        if isinstance(target, SmsTarget) and (target.sender is None) == (
            target.messaging_service_sid is None
        ):
            problems.append(f"{where}: set exactly one of sender and messaging_service_sid")
    problems += _group_problems(config, set(target_ids), org_ids)
    problems += _approval_problems(config.approval)
    return problems


def _duplicates(section: str, ids: list[str]) -> list[str]:
    seen: set[str] = set()
    problems = []
    for index, item in enumerate(ids):
        if item in seen:
            problems.append(f"{section}[{index}] ({item}).id: duplicate id {item!r}")
        seen.add(item)
    return problems


def _group_problems(config: Config, target_ids: set[str], org_ids: set[str]) -> list[str]:
    problems = []
    for name, members in config.groups.items():
        if name == IMPLICIT_GROUP or name in org_ids or name in target_ids:
            problems.append(
                f"groups.{name}: the name is taken by "
                + ("the implicit group 'all'" if name == IMPLICIT_GROUP else "an id")
            )
        problems += [
            f"groups.{name}: unknown target {member!r}"
            for member in members
            if member not in target_ids
        ]
    return problems


def _approval_problems(policy: ApprovalPolicy) -> list[str]:
    problems = []
    if policy.approvers and policy.required > len(policy.approvers):
        problems.append(
            f"approval.required: {policy.required} approvals needed but only "
            f"{len(policy.approvers)} approvers listed"
        )
    problems += [
        f"approval.identities.{person}: {person!r} is not in approval.approvers"
        for person in policy.identities
        if person not in policy.approvers
    ]
    # One OS account proving two people would let one person give two of the four eyes.
    proves: dict[str, list[str]] = {}
    for person, account in policy.os_users.items():
        proves.setdefault(account, []).append(person)
    problems += [
        f"approval.os_users: the OS account {account!r} is mapped to {', '.join(people)}; "
        "an account can prove only one person"
        for account, people in proves.items()
        if len(people) > 1
    ]
    owners: dict[str, list[str]] = {}
    for person, object_id in policy.identities.items():
        owners.setdefault(object_id.strip().lower(), []).append(person)
    problems += [
        f"approval.identities: {', '.join(people)} share the Entra object id {object_id}; "
        "one Teams account would decide as several people: give each their own"
        for object_id, people in owners.items()
        if len(people) > 1
    ]
    return problems
