"""CMS webhook receiver: what the website channel's ``webhook`` mode POSTs to.

Any path under ``/cms/`` accepts a JSON POST signed with the target's secret
(``MORBYLANGA_CMS_WEBHOOK_SECRET``) as :mod:`broadcaster.signing` describes; a missing, stale or
wrong signature gets 401, a body that is not JSON 400, an accepted one 200 ``{"ok": true}``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from broadcaster.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_webhook

from .exchange import Context, Emulator, EmulatorError, Incoming, retry_after_headers
from .faults import Fault

__all__ = ["CmsDelivery", "CmsEmulator"]


class CmsError(EmulatorError):
    """A refusal by the CMS."""

    def __init__(self, status: int, error: str, retry_after: float | None = None) -> None:
        """Describe the refusal."""
        super().__init__(error)
        self.status, self.error, self.retry_after = status, error, retry_after

    def response(self) -> Response:
        """``{"error": ...}``."""
        headers = retry_after_headers(self.retry_after)
        return JSONResponse({"error": self.error}, self.status, headers=headers)


@dataclass(frozen=True)
class CmsDelivery:
    """A webhook POST the CMS accepted."""

    path: str
    payload: Any
    received: float


class CmsEmulator(Emulator):
    """The Mörbylånga CMS's broadcaster endpoint (any path under ``/cms``)."""

    platform = "cms"
    mount = "/cms"

    def __init__(self, ctx: Context) -> None:
        """Create the receiver with the webhook secret from the sandbox credentials."""
        super().__init__(ctx)
        self._lock = threading.Lock()
        self._deliveries: list[CmsDelivery] = []
        self.tolerance_s = 300.0

    def deliveries(self) -> list[CmsDelivery]:
        """Accepted POSTs, oldest first."""
        with self._lock:
            return list(self._deliveries)

    def reset(self) -> None:
        """Forget accepted POSTs."""
        with self._lock:
            self._deliveries.clear()

    def routes(self) -> list[BaseRoute]:
        """Every path."""
        return [self.route("/{path:path}", self._receive, ["POST"])]

    def targets(self, incoming: Incoming) -> list[str]:
        """The path below ``/cms``."""
        return ["/" + incoming.path_params.get("path", incoming.path.removeprefix(self.mount))]

    def fault_response(self, fault: Fault) -> Response:
        """``{"error": ...}`` with the status."""
        message = fault.message or f"CMS unavailable ({fault.status})"
        return CmsError(fault.status, message, fault.retry_after).response()

    def unknown_path(self, incoming: Incoming) -> Response:
        """405 for anything but POST."""
        return CmsError(405, "method not allowed").response()

    async def _receive(self, incoming: Incoming) -> Response:
        valid = verify_webhook(
            self.ctx.credentials.cms_secret,
            incoming.headers.get(TIMESTAMP_HEADER.lower()),
            incoming.headers.get(SIGNATURE_HEADER.lower()),
            incoming.body,
            now=self.ctx.clock(),
            tolerance_s=self.tolerance_s,
        )
        if not valid:
            raise CmsError(401, "invalid or missing signature")
        try:
            payload = json.loads(incoming.body)
        except ValueError:
            raise CmsError(400, "body is not JSON") from None
        path = self.targets(incoming)[0]
        with self._lock:
            self._deliveries.append(CmsDelivery(path, payload, self.ctx.clock()))
        return JSONResponse({"ok": True})
