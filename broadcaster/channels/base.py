"""The channel adapter protocol: render → check → send, with verify for uncertain outcomes.

``readable`` is the adapter's reading of what it rendered, as a person will see it; ``preview``
shows that to the approver, for every channel alike.

An adapter is built per target from that target's typed configuration and a
:class:`ChannelContext`; it holds no global state. ``send`` either returns a :class:`Receipt`
(the platform's id for what was posted, and whatever else editing or deleting it later needs)
or raises a :class:`~broadcaster.errors.ChannelError` subclass that tells the queue what to do
next — never a bare ``False``. Where the platform can, ``update`` edits and ``delete`` removes
what ``send`` posted, given its receipt (``can_update`` / ``can_delete`` say which); the worker
calls :meth:`Channel.deliver`, which picks one of the three for a revision.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from broadcaster.config import TargetConfig
from broadcaster.errors import PermanentError
from broadcaster.model import Receipt, RevisionKind
from broadcaster.rendering import Renderer
from broadcaster.rendering.message import Message
from broadcaster.rendering.readable import message_text
from broadcaster.timeutil import Clock

__all__ = ["Channel", "ChannelContext", "Receipt", "RecipientDirectory", "Rendered"]


class RecipientDirectory(Protocol):
    """Read access to the recipient lists, inside the dispatch transaction."""

    def members(self, list_name: str) -> Sequence[str]:
        """Every recipient of one list, in a stable order, opted-out ones included.

        Adapters do not filter: the dispatch creates opted-out recipients' deliveries cancelled
        (so status counts them), and the worker checks the opt-out list again at send time.
        """
        ...


@dataclass(frozen=True, kw_only=True)
class ChannelContext:
    """What every adapter may use, handed in by the caller (adapters never read config or env)."""

    renderer: Renderer
    timezone: str
    clock: Clock
    resolve_path: Callable[[str], Path]
    exercise: bool = False
    #: An ``httpx`` transport for every httpx client the adapter builds (tests hand in a mock
    #: or a recording transport); None: the network.
    http_transport: Any = None
    #: Builds the ``requests.Session`` for SDKs built on requests (facebook-sdk); None: a plain
    #: session.
    requests_session: Callable[[], Any] | None = None
    #: Platform API roots overridden by the environment (``BROADCASTER_FACEBOOK_API_URL``,
    #: ``BROADCASTER_TELEGRAM_API_URL``, ``BROADCASTER_TEAMS_LOGIN_URL``, ... — DESIGN §4), by
    #: variable name; a name that is absent means the platform's public root.
    endpoints: Mapping[str, str] = field(default_factory=dict)
    #: Where ``broadcaster serve`` is reachable from the internet (``[broadcaster]
    #: public_base_url``, no trailing slash), for platforms that call us back (Twilio status
    #: callbacks); None: nothing calls back.
    public_base_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class Rendered:
    """A message rendered for one target; ``problems`` lists broken channel limits."""

    text: str | None = None
    card: dict[str, Any] | None = None
    files: dict[str, str] | None = None
    problems: tuple[str, ...] = field(default=())


class Channel(ABC):
    """Base of every channel adapter.

    Class attributes state the channel's limits and retry rules, so the queue and preview can
    read them without building an adapter.
    """

    name: ClassVar[str]
    #: The target ``mode`` this adapter serves (Teams ``bot`` / ``workflow``, website ``static``
    #: / ``webhook``); None for a channel with one way of posting.
    mode: ClassVar[str | None] = None
    #: True when :meth:`update` can edit what :meth:`send` posted, in place.
    can_update: ClassVar[bool] = False
    #: True when :meth:`delete` can remove what :meth:`send` posted.
    can_delete: ClassVar[bool] = False
    #: True when :meth:`verify` can ask the platform whether a delivery already arrived.
    can_verify: ClassVar[bool] = False
    #: True when sending the same delivery twice cannot show two copies to the public; decides
    #: what happens after an unknown outcome on a channel that cannot verify.
    blind_resend_ok: ClassVar[bool] = False
    #: Give up (dead-letter) after this many attempts ...
    max_attempts: ClassVar[int] = 8
    #: ... or when the delivery is this old: a crisis text hours late does more harm than good.
    max_age_seconds: ClassVar[float] = 6 * 3600
    #: Longest text the platform accepts, where it has one.
    max_text_length: ClassVar[int | None] = None
    #: Sends per second to one target unless configured (None: no limit of its own).
    default_rate_per_second: ClassVar[float | None] = None
    #: Sends at once to one target, per worker, unless configured.
    default_concurrency: ClassVar[int] = 4
    #: Longest one platform call may take; the worker's lease may end it sooner (an unknown
    #: outcome, verified before any resend).
    call_timeout_seconds: ClassVar[float] = 60.0

    def __init__(self, target: TargetConfig, context: ChannelContext) -> None:
        self.target = target
        self.context = context

    @classmethod
    def recipients(cls, target: TargetConfig, directory: RecipientDirectory) -> Sequence[str]:
        """Whom one dispatch to ``target`` reaches: one delivery is created per entry.

        ``("",)``, the target itself, for channels that post once (a page, a channel, a site).
        A channel that messages people one by one either returns each recipient, as the
        directory gives them (opted-out ones too: the core applies the opt-out list), or names
        the target's list in :meth:`recipient_list` (SMS), which the dispatch asks first.
        """
        return ("",)

    @classmethod
    def recipient_list(cls, target: TargetConfig) -> str | None:
        """The recipient list whose every member this target messages, or None.

        A channel that names its list here has its deliveries created in the database, one per
        member, by one INSERT ... SELECT, instead of from :meth:`recipients`: a list of 250,000
        numbers never travels through the dispatching process. Same rows, same order (the
        list's import order), opted-out members likewise created cancelled.
        """
        return None

    def call_timeout(self) -> float:
        """Seconds one platform call of this adapter may take at most."""
        return self.call_timeout_seconds

    @abstractmethod
    def render(self, message: Message) -> Rendered:
        """Turn a message into this channel's payload; raise RenderError for template errors."""

    def check(self, rendered: Rendered) -> list[str]:
        """Limits the rendered payload breaks; found at preview, never first at send."""
        limit = self.max_text_length
        if limit is not None and rendered.text is not None and len(rendered.text) > limit:
            return [f"text is {len(rendered.text)} characters; {self.name} allows {limit}"]
        return []

    def prepare(self, message: Message) -> Rendered:
        """Render and check in one step."""
        rendered = self.render(message)
        problems = self.check(rendered)
        if not problems:
            return rendered
        return Rendered(
            text=rendered.text,
            card=rendered.card,
            files=rendered.files,
            problems=(*rendered.problems, *problems),
        )

    def readable(self, message: Message, rendered: Rendered) -> str:
        """What a reader of this target sees, as plain text with links written out.

        ``preview`` shows this to the officer and the approver, who must judge words, not
        payloads. The default is the rendered text as it is (a plain-text channel's payload is
        what its reader gets), or, for a channel that renders only a card or files, a neutral
        reading of the message; adapters whose payload is markup or files override it.
        """
        if rendered.text is not None:
            return rendered.text
        return message_text(message, self.context.timezone)

    @abstractmethod
    async def send(self, message: Message, rendered: Rendered) -> Receipt:
        """Deliver; raise a ChannelError subclass to report anything but success."""

    async def deliver(self, message: Message, rendered: Rendered) -> Receipt:
        """Send a revision, or make what an earlier revision posted read as this one.

        ``message.previous`` is the receipt of what an earlier revision left on this target.
        Where the platform can, a correction edits that post and a retraction removes it (its
        receipt is kept as this delivery's), so nobody reads the wrong text beside the right
        one; otherwise (nothing was posted before, or the platform cannot) the revision is
        posted as a message of its own.
        """
        previous, kind = message.previous, message.content.kind
        if previous is not None and kind is RevisionKind.RETRACTION and self.can_delete:
            await self.delete(previous)
            return previous
        if previous is not None and kind is RevisionKind.CORRECTION and self.can_update:
            return await self.update(previous, message, rendered)
        return await self.send(message, rendered)

    async def verify(self, message: Message) -> Receipt | None:
        """Ask the platform whether this message already arrived (after an unknown outcome).

        Called only when :attr:`can_verify` is True. Returns the receipt if it arrived, None if
        the platform does not have it (so sending again is safe).
        """
        return None

    async def update(self, receipt: Receipt, message: Message, rendered: Rendered) -> Receipt:
        """Edit what ``receipt`` names to read as ``message`` (when :attr:`can_update`)."""
        raise PermanentError(
            self.name, f"{self.name} cannot edit a post; send the correction as a new one"
        )

    async def delete(self, receipt: Receipt) -> None:
        """Remove what ``receipt`` names (when :attr:`can_delete`); gone already is success."""
        raise PermanentError(self.name, f"{self.name} cannot delete a post; remove it by hand")

    def where_posted(self) -> str:
        """Where a person looks for a post (after an outcome that cannot be verified)."""
        return f"the {self.name} target {self.target.id}"

    async def check_online(self) -> list[str]:
        """Ask the platform whether this target's credentials and rights work (``check
        --online``): one line per problem, each saying what to renew or grant; [] when fine."""
        return []

    async def aclose(self) -> None:
        """Release clients and connections; the adapter is not used afterwards."""
        return None
