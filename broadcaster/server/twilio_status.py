"""``POST /twilio/status``: Twilio's status callbacks for the SMS it took from us.

The adapter gives each message ``StatusCallback={public_base_url}/twilio/status?d=<delivery id>``,
and Twilio POSTs every later status there as a signed form. In order, a callback is:

1. refused with 413 when its body is over the limit, 415 when it is not a form;
2. refused with 403 (and audited with the client's IP, never a number) unless its
   ``X-Twilio-Signature`` is valid for the public URL with the secret of a configured SMS
   target — the delivery's own target, checked when the batch reads the delivery;
3. refused with 400 when ``d``, ``MessageSid``, ``MessageStatus`` or ``ErrorCode`` is missing or
   malformed (only authentic requests learn what is wrong with them);
4. applied in a batch (see :mod:`.twilio_apply`) and answered 200 with ``{"result": ...}``:
   ``applied``, ``ignored`` (older status, other message, unknown delivery) or ``duplicate``.

A database that does not answer gives 503, so Twilio's retry (same idempotency token) can land
later. Phone numbers in the form (``To``, ``From``) are read by nobody here.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from broadcaster.queue.batching import Batcher
from broadcaster.server.context import ServerContext
from broadcaster.server.http import error_response
from broadcaster.server.twilio_apply import (
    ENDPOINT,
    Outcome,
    Refusal,
    StatusReport,
    TokenPruning,
    apply_batch,
)
from broadcaster.server.twilio_signature import (
    SETTINGS_HEADER,
    SIGNATURE_HEADER,
    TwilioSignatures,
)
from broadcaster.store.database import is_unavailable
from broadcaster.store.deliveries import PLATFORM_STATUS_RANK

__all__ = ["routes"]

log = logging.getLogger("broadcaster.server.twilio")

IDEMPOTENCY_HEADER = "i-twilio-idempotency-token"
_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
_ERROR_CODE = re.compile(r"\d{1,9}")
_DELIVERY_ID = re.compile(r"[1-9]\d{0,17}")
#: Longest idempotency token stored (the column's width); Twilio's are about 40 characters.
_MAX_TOKEN = 128
#: More form fields than this is no Twilio callback (it sends about a dozen).
_MAX_FIELDS = 100
#: Callbacks written per transaction.
_BATCH = 500


class BadCallback(ValueError):
    """An authentic callback with a missing or malformed field (answered 400)."""


def routes(context: ServerContext) -> list[BaseRoute]:
    """The Twilio status callback route of this server."""
    endpoint = _TwilioStatus(context)
    context.on_close(endpoint.batcher.aclose)
    return [Route(ENDPOINT, endpoint.handle, methods=["POST"])]


class _TwilioStatus:
    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self.signatures = TwilioSignatures(context.app.config)
        self.batcher: Batcher[StatusReport | Refusal, Outcome] = Batcher(
            functools.partial(apply_batch, context.app, pruning=TokenPruning()),
            max_batch=_BATCH,
        )

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
            return error_response(415, "expected a form (application/x-www-form-urlencoded)")
        try:
            params = parse_qsl(
                body.decode("utf-8"),
                keep_blank_values=True,  # an empty value is signed like any other
                strict_parsing=bool(body),
                max_num_fields=_MAX_FIELDS,
            )
        except ValueError:
            return error_response(400, "the body is not a valid form")
        client_ip = request.client.host if request.client else "unknown"
        delivery_id = _delivery_id(request.query_params.getlist("d"))
        signed = self._authenticate(request, params)
        if isinstance(signed, str):
            return await self._refuse(
                Refusal(client_ip=client_ip, reason=signed, delivery_id=delivery_id)
            )
        try:
            report = _report(dict(params), delivery_id, request, signed, client_ip)
        except BadCallback as exc:
            return error_response(400, str(exc))
        return await self._apply(report)

    def _authenticate(
        self, request: Request, params: list[tuple[str, str]]
    ) -> str | frozenset[str]:
        """The SMS targets whose secret signed the request, or why it is not Twilio's."""
        # As the bytes arrived: Twilio signed the URL exactly as it was given, %-escapes and all.
        scope = request.scope
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = self.signatures.public_url(path.decode("latin-1"), query.decode("latin-1"))
        if url is None:
            return "public_base_url is not set, so no signature can be checked"
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            return "no X-Twilio-Signature"
        signers = self.signatures.signers(
            url, params, signature, request.headers.get(SETTINGS_HEADER)
        )
        return signers or "the signature does not match any SMS target's secret"

    async def _refuse(self, refusal: Refusal) -> Response:
        budget = self.context.refusals
        if not budget.admit(ENDPOINT, refusal.client_ip, self.context.app.clock()):
            return error_response(403, "forbidden")  # counted; summarised (server/refusals.py)
        log.warning(
            "refused a Twilio status callback from %s: %s",
            refusal.client_ip,
            refusal.reason,
            extra={"client_ip": refusal.client_ip, "delivery": refusal.delivery_id},
        )
        try:
            await self.batcher(refusal)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("could not audit the refusal: the database is unavailable")
        return error_response(403, "forbidden")

    async def _apply(self, report: StatusReport) -> Response:
        try:
            outcome = await self.batcher(report)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("a Twilio status callback waits for Twilio's retry: database unavailable")
            return error_response(503, "database unavailable", {"Retry-After": "5"})
        if outcome is Outcome.REFUSED:
            log.warning(
                "refused a Twilio status callback for delivery %d from %s: signed by another "
                "SMS target's secret",
                report.delivery_id,
                report.client_ip,
            )
            return error_response(403, "forbidden")
        return JSONResponse({"result": str(outcome)})


def _delivery_id(values: list[str]) -> int | None:
    if len(values) != 1 or not _DELIVERY_ID.fullmatch(values[0]):
        return None
    return int(values[0])


def _report(
    form: Mapping[str, str],
    delivery_id: int | None,
    request: Request,
    signers: frozenset[str],
    client_ip: str,
) -> StatusReport:
    """The callback's fields, checked; raises :class:`BadCallback` naming what is wrong."""
    if delivery_id is None:
        raise BadCallback("the query must hold one delivery id: ?d=<id>")
    sid = form.get("MessageSid", "")
    if not _SID.fullmatch(sid):
        raise BadCallback("MessageSid is missing or not a message SID")
    status = form.get("MessageStatus", "")
    if status not in PLATFORM_STATUS_RANK:
        raise BadCallback(f"MessageStatus must be one of {', '.join(PLATFORM_STATUS_RANK)}")
    code = form.get("ErrorCode", "")
    if code and not _ERROR_CODE.fullmatch(code):
        raise BadCallback("ErrorCode must be a number")
    token = request.headers.get(IDEMPOTENCY_HEADER) or None
    if token is not None and len(token) > _MAX_TOKEN:
        raise BadCallback(f"I-Twilio-Idempotency-Token is longer than {_MAX_TOKEN} characters")
    return StatusReport(
        delivery_id=delivery_id,
        message_sid=sid,
        status=status,
        error_code=int(code) if code else None,
        token=token,
        signers=signers,
        client_ip=client_ip,
    )
