"""The request pipeline every emulator shares: read, record, apply faults, answer.

An emulator is a set of Starlette routes plus three platform-specific pieces: which target a
request is about (for faults), how the platform formats an error (for ``fail``/``ratio`` faults
and for its own refusals, raised as :class:`EmulatorError`), and how it answers an unknown path.

Closing a connection without an answer (``drop``, ``down``, the end of a ``hang``) needs the
socket, which ASGI does not expose; :data:`TRANSPORT_STATE_KEY` is where the sandbox's server
protocol puts it (see :mod:`broadcaster.sandbox.server`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from .credentials import Credentials
from .faults import Fault, FaultBook, FaultKind
from .records import Record, Recorder
from .specs import Specs

__all__ = [
    "ALL_METHODS",
    "TRANSPORT_STATE_KEY",
    "Context",
    "Emulator",
    "EmulatorError",
    "Handler",
    "Incoming",
    "NoAnswer",
    "mask",
    "retry_after_headers",
]

TRANSPORT_STATE_KEY = "broadcaster.sandbox.transport"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
logger = logging.getLogger("broadcaster.sandbox")

_PHONE = re.compile(r"\+\d{6,15}")


def mask(text: str, secrets: list[str]) -> str:
    """``text`` with every secret shortened to its first 4 characters and phone numbers hidden."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, secret[:4] + "***")
    return _PHONE.sub(lambda m: m.group()[:3] + " *** ** " + m.group()[-2:], text)


@dataclass
class Context:
    """What every emulator of one sandbox shares. Nothing in it is global."""

    credentials: Credentials
    specs: Specs
    records: Recorder
    faults: FaultBook
    clock: Callable[[], float]
    rng: random.Random
    base_url: str = ""
    secrets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Incoming:
    """A received request, read completely before any fault or handler runs."""

    method: str
    url: str
    path: str
    path_params: dict[str, str]
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    form: dict[str, list[str]] | None
    json: Any
    scope: Scope = field(repr=False)

    @classmethod
    async def read(cls, request: Request) -> Incoming:
        """Read ``request`` including its body (parsed when form-encoded or JSON)."""
        body = await request.body()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        form = None
        payload: Any = None
        if content_type == "application/x-www-form-urlencoded":
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        elif content_type == "multipart/form-data":
            parsed = await request.form()
            form = {k: [str(v) for v in parsed.getlist(k)] for k in parsed}
        elif body and (content_type.endswith("json") or content_type == ""):
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
        return cls(
            method=request.method,
            url=str(request.url),
            path=request.url.path,
            path_params={k: str(v) for k, v in request.path_params.items()},
            query=parse_qs(request.url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            form=form,
            json=payload,
            scope=request.scope,
        )

    def field(self, name: str) -> str | None:
        """The last value of ``name`` from the form, else the JSON object, else the query."""
        if self.form is not None and name in self.form:
            return self.form[name][-1]
        if isinstance(self.json, dict) and name in self.json:
            value = self.json[name]
            return value if isinstance(value, str) else json.dumps(value)
        values = self.query.get(name)
        return values[-1] if values else None

    def params(self) -> dict[str, Any]:
        """Every parameter as one mapping: query, then form (last value) or JSON object."""
        merged: dict[str, Any] = {k: v[-1] for k, v in self.query.items()}
        if self.form is not None:
            merged.update({k: v[-1] for k, v in self.form.items()})
        elif isinstance(self.json, dict):
            merged.update(self.json)
        return merged


class EmulatorError(Exception):
    """A refusal in the platform's own format; raise it from a handler."""

    @abstractmethod
    def response(self) -> Response:
        """The platform's answer for this refusal."""


Handler = Callable[[Incoming], Awaitable[Response]]


class NoAnswer(Response):
    """Close the connection without answering, after waiting up to ``wait_s`` for the client.

    With ``wait_s=0`` this is a dropped connection; with a long wait it is a hang that ends when
    the client gives up (it disconnects) or the wait is over.
    """

    def __init__(self, wait_s: float = 0.0) -> None:
        """Create the non-answer."""
        super().__init__(status_code=599)
        self.wait_s = wait_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wait, then close the socket; never send a byte."""
        if self.wait_s > 0:
            await _until_disconnect(receive, self.wait_s)
        transport = scope.get("state", {}).get(TRANSPORT_STATE_KEY)
        if transport is None:
            raise ConnectionAbortedError("the sandbox closed the connection (fault injection)")
        transport.close()
        # Let the server notice the closed connection before the app returns, so that it does not
        # try to send a 500 on a socket that is gone.
        await _until_disconnect(receive, 1.0)


async def _until_disconnect(receive: Receive, wait_s: float) -> None:
    try:
        async with asyncio.timeout(wait_s):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        return


def retry_after_headers(retry_after: float | None) -> dict[str, str]:
    """``Retry-After`` (whole seconds, rounded up) when a retry delay is given."""
    if retry_after is None:
        return {}
    return {"Retry-After": str(math.ceil(retry_after))}


def _decoded(response: Response) -> Any:
    body = bytes(response.body) if isinstance(response.body, bytes | memoryview) else b""
    if "json" in (response.media_type or response.headers.get("content-type", "")) and body:
        try:
            return json.loads(body)
        except ValueError:
            pass
    return body.decode("utf-8", "replace")


class Emulator(ABC):
    """One platform's emulator: routes mounted under ``mount``, sharing the sandbox context."""

    platform: ClassVar[str]
    mount: ClassVar[str]

    def __init__(self, ctx: Context) -> None:
        """Create the emulator with its sandbox's shared context."""
        self.ctx = ctx

    @abstractmethod
    def routes(self) -> list[BaseRoute]:
        """The platform's routes, relative to :attr:`mount`; build them with :meth:`route`."""

    @abstractmethod
    def fault_response(self, fault: Fault) -> Response:
        """The platform's error answer for an injected ``fail``/``ratio`` fault.

        Use ``fault.status``, ``fault.code`` (derive one from the status when None),
        ``fault.subcode``, ``fault.message`` and ``fault.retry_after`` (as ``Retry-After``).
        """

    @abstractmethod
    def unknown_path(self, incoming: Incoming) -> Response:
        """The platform's answer for a path or method it does not have."""

    def targets(self, incoming: Incoming) -> list[str]:
        """Every name of what ``incoming`` is about, primary name first (for faults)."""
        return []

    @abstractmethod
    def reset(self) -> None:
        """Forget everything posted to the platform (credentials stay)."""

    def route(self, path: str, handler: Handler, methods: list[str]) -> Route:
        """A route whose requests go through the shared pipeline."""
        return Route(path, self._endpoint(handler), methods=methods)

    def mounted(self) -> Mount:
        """The emulator as one mount, with a platform-style answer for unknown paths."""

        async def unknown(incoming: Incoming) -> Response:
            return self.unknown_path(incoming)

        catch_all = Route("/{rest:path}", self._endpoint(unknown), methods=ALL_METHODS)
        return Mount(self.mount, routes=[*self.routes(), catch_all])

    def _endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self._exchange(request, handler)

        return endpoint

    async def _exchange(self, request: Request, handler: Handler) -> Response:
        incoming = await Incoming.read(request)
        targets = self.targets(incoming)
        record = self.ctx.records.add(
            platform=self.platform,
            direction="in",
            method=incoming.method,
            url=incoming.url,
            path=incoming.path,
            query=incoming.query,
            headers=incoming.headers,
            body=incoming.body.decode("utf-8", "replace"),
            form=incoming.form,
            json=incoming.json,
            target=targets[0] if targets else None,
        )
        response = await self._respond(incoming, targets, record, handler)
        self._log(record)
        return response

    async def _respond(
        self, incoming: Incoming, targets: list[str], record: Record, handler: Handler
    ) -> Response:
        plan = self.ctx.faults.plan(self.platform, targets)
        fault = plan.terminal
        kind = fault.kind if fault else None
        finish = self.ctx.records.finish
        if fault is not None and kind is FaultKind.DOWN:
            finish(record, fault=kind.value, note="connection closed: platform down")
            return NoAnswer()
        if plan.latency:
            await asyncio.sleep(plan.latency)
        if fault is not None and kind in (FaultKind.FAIL, FaultKind.RATIO):
            response = self.fault_response(fault)
            status, answer = response.status_code, _decoded(response)
            finish(record, status=status, response=answer, fault=kind.value)
            return response
        if fault is not None and kind is FaultKind.HANG and not fault.effect:
            finish(record, fault=kind.value, note="no answer (hang); not carried out")
            return NoAnswer(fault.seconds)
        response = await self._handle(incoming, handler)
        finish(record, status=response.status_code, response=_decoded(response))
        if fault is not None and kind in (FaultKind.DROP, FaultKind.HANG):
            note = f"answer {response.status_code} not sent ({kind.value}); carried out"
            finish(record, status=None, fault=kind.value, note=note)
            return NoAnswer(fault.seconds if kind is FaultKind.HANG else 0.0)
        return response

    async def _handle(self, incoming: Incoming, handler: Handler) -> Response:
        try:
            return await handler(incoming)
        except EmulatorError as refusal:
            return refusal.response()

    def _log(self, record: Record) -> None:
        if logger.isEnabledFor(logging.INFO):
            outcome = str(record.status) if record.status is not None else "no answer"
            fault = f" [{record.fault}]" if record.fault else ""
            path = mask(record.path, self.ctx.secrets)
            logger.info("%s %s %s -> %s%s", self.platform, record.method, path, outcome, fault)
