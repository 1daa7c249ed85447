"""The one error tree of broadcaster.

Every error we raise on purpose derives from :class:`BroadcastError`. The CLI turns them into a
message and an exit code (``exit_code``: 2 for bad input, 1 for a refused or failed operation);
anything else reaching the top is a bug and shows its traceback.

::

    BroadcastError                      exit 1
     ├── InputError                     exit 2: the input is wrong, nothing was changed
     │    ├── ConfigError               the workspace configuration (one line per problem)
     │    ├── NotFoundError             an announcement, target or group that does not exist
     │    └── RenderError               a template fails or the output breaks a channel limit
     ├── StateError                     a lifecycle transition the state machine forbids
     ├── ApprovalError                  the approval policy refuses a decision
     │    └── IdentityError             who is acting at the CLI is not proven
     ├── QueueError                     the job table is not in the expected state
     └── ChannelError(channel, retryable)     raised by adapters, classified for the retry queue
          ├── TransientError(retry_after)     try again later (5xx, timeouts before sending)
          │    └── RateLimited(retry_after)   the platform asked us to slow down
          ├── PermanentError                  will never succeed as is (bad number, policy block)
          │    └── AuthError                  credentials are invalid: a human must re-authorise
          └── UnknownOutcome                  the request may have reached the platform: verify

Errors that carry data define ``__reduce__`` so they survive pickling (they travel between
processes and into queue rows as text, and a half-restored exception hides the real failure).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, ClassVar

__all__ = [
    "ApprovalError",
    "AuthError",
    "BroadcastError",
    "ChannelError",
    "ConfigError",
    "IdentityError",
    "InputError",
    "NotFoundError",
    "PermanentError",
    "QueueError",
    "RateLimited",
    "RateScope",
    "RecipientOptedOut",
    "RenderError",
    "StateError",
    "TransientError",
    "UnknownOutcome",
]


class BroadcastError(Exception):
    """Base of every deliberate broadcaster error."""

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message,))


class InputError(BroadcastError):
    """The person's input (arguments, files, configuration) is wrong; nothing was changed."""

    exit_code = 2


class ConfigError(InputError):
    """The workspace configuration is invalid; ``problems`` holds one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems,))


class NotFoundError(InputError):
    """An announcement, target, group or list that does not exist."""


class RenderError(InputError):
    """A template failed to render, or its output breaks a limit of the channel."""


class StateError(BroadcastError):
    """The lifecycle state machine forbids the requested transition."""


class ApprovalError(BroadcastError):
    """The approval policy refuses the decision (self-approval, not an approver, stale hash)."""


class IdentityError(ApprovalError):
    """The person named at the command line is not proven (OS account, SSH signature, trust)."""


class QueueError(BroadcastError):
    """The job table is not in the state the caller expected."""


class ChannelError(BroadcastError):
    """A channel adapter could not deliver; subclasses tell the queue what to do next."""

    retryable: ClassVar[bool] = False

    def __init__(self, channel: str, message: str) -> None:
        super().__init__(message)
        self.channel = channel

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.channel, self.message))


class TransientError(ChannelError):
    """A temporary failure that posted nothing; retry (after ``retry_after`` s when given)."""

    retryable = True

    def __init__(self, channel: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(channel, message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.channel, self.message, self.retry_after))


class RateScope(StrEnum):
    """What a platform's rate limit covers, and so what pauses when it is hit."""

    #: This target only (one page, one chat, one Teams channel): its siblings carry on.
    TARGET = "target"
    #: Every target of the channel (an app-wide budget, one bot for all chats).
    CHANNEL = "channel"


class RateLimited(TransientError):
    """The platform asked us to slow down; ``retry_after`` is honoured exactly when given.

    ``scope`` says what the limit covers: by default this target alone, so one throttled page
    does not pause its siblings.
    """

    def __init__(
        self,
        channel: str,
        message: str,
        retry_after: float | None = None,
        scope: RateScope = RateScope.TARGET,
    ) -> None:
        super().__init__(channel, message, retry_after)
        self.scope = scope

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.channel, self.message, self.retry_after, self.scope))


class PermanentError(ChannelError):
    """This delivery will never succeed as it stands; dead-letter it with the reason."""


class RecipientOptedOut(PermanentError):
    """The recipient asked the platform for no more messages (Twilio 21610, a STOP reply).

    The delivery is cancelled as opted out, and the number goes on the opt-out list in the same
    transaction, so no later dispatch texts it either.
    """


class AuthError(PermanentError):
    """The target's credentials were refused: a person must re-authorise before it can work."""


class UnknownOutcome(ChannelError):
    """The request may have reached the platform (a timeout after sending, a lost answer).

    The queue verifies with the platform before any resend, so nothing is posted twice.
    """

    retryable = True
