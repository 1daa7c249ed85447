"""python-telegram-bot's httpx request, reading Telegram's flood control and 5xx answers itself.

PTB turns a 429 into ``RetryAfter``, whose constructor reads its own deprecated ``int``
property and so warns (PTBDeprecationWarning) unless the *process* environment has
``PTB_TIMEDELTA=1``. Setting that variable from a library would change PTB for everything in the
process, so the answer is read one step earlier, in :meth:`BaseRequest.do_request` (PTB's
documented extension point), and raised as :class:`FloodControl` carrying the exact seconds.
A 5xx is raised as :class:`ServerError` with its status, which PTB's ``NetworkError`` drops and
which tells whether a gateway (that may have passed the request on) or the Bot API answered.
"""

from __future__ import annotations

from typing import Any

from telegram.error import TelegramError
from telegram.request import HTTPXRequest

__all__ = ["FloodAwareRequest", "FloodControl", "ServerError"]


class FloodControl(TelegramError):
    """Telegram's flood control: retry after ``seconds``, not sooner."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Flood control exceeded: retry in {seconds:g} s")
        self.seconds = seconds

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.seconds,))


class ServerError(TelegramError):
    """A 5xx answer, with its status and Telegram's description."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(f"{description} ({status})")
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status, self.message.rsplit(" (", 1)[0]))


class FloodAwareRequest(HTTPXRequest):
    """:class:`HTTPXRequest` that raises :class:`FloodControl` and :class:`ServerError`."""

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        """Send as PTB does; 429 with ``retry_after`` and 5xx answers become our errors."""
        status, payload = await super().do_request(*args, **kwargs)
        if status == 429 or status >= 500:
            body = _body(payload)
            seconds = (body.get("parameters") or {}).get("retry_after")
            if status == 429 and isinstance(seconds, int | float) and seconds > 0:
                raise FloodControl(float(seconds))
            if status >= 500:
                raise ServerError(status, str(body.get("description") or "server error"))
        return status, payload


def _body(payload: bytes) -> dict[str, Any]:
    try:
        body = HTTPXRequest.parse_json_payload(payload)
    except TelegramError:
        return {}
    return body if isinstance(body, dict) else {}
