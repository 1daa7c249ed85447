"""The sandbox's own HTTP API under ``/_sandbox``: records, faults, state, and acting as Teams.

==========================================  ====================================================
``GET  /_sandbox/health``                   ``{"ok": true}``
``GET  /_sandbox/env``                      the ``.env`` entries as JSON
``GET  /_sandbox/records``                  ``{"records": [...]}``; filters ``platform``,
                                            ``target``, ``direction``, ``method``
``DELETE /_sandbox/records``                forget records
``GET  /_sandbox/faults``                   ``{"faults": [...]}`` still active
``POST /_sandbox/faults``                   JSON :class:`~.faults.Fault` fields -> 201 ``{"id"}``
``DELETE /_sandbox/faults[?platform=]``     clear faults; ``DELETE /_sandbox/faults/{id}`` one
``GET  /_sandbox/state``                    posts, messages, activities, webhooks received
``POST /_sandbox/reset``                    forget records, faults and state
``POST /_sandbox/teams/click``              ``{"bot_url", "verb", "user_object_id",
                                            "activity_id"?, "data"?, "conversation_id"?,
                                            "user_name"?}`` -> ``{"status", "body"}``
``POST /_sandbox/twilio/opt-out``           ``{"number"}``: further messages get 21610
``POST /_sandbox/twilio/outcomes``          ``{"match", "status", "error_code"}``
``POST /_sandbox/facebook/invalidate``      ``{"page_id", "reason"}``: the Page token fails (190)
``POST /_sandbox/telegram/remove-bot``      ``{"chat"}``: posts get 403 Forbidden
``POST /_sandbox/connector/block``          ``{"channel_id"}``: writes get 403
==========================================  ====================================================

These requests are neither recorded nor subject to faults.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from .faults import Fault

if TYPE_CHECKING:
    from .app import SandboxApp

__all__ = ["control_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]


def _json_default(value: Any) -> Any:
    return str(value)


def _answer(body: Any, status: int = 200) -> Response:
    text = json.dumps(body, default=_json_default, ensure_ascii=False)
    return Response(text, status, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ValueError("the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise TypeError("the body must be a JSON object")
    return data


def _guarded(handler: Endpoint) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except (ValueError, KeyError, LookupError, TypeError) as error:
            return JSONResponse({"error": str(error)}, 400)

    return endpoint


class _Control:
    """The handlers of ``/_sandbox``, bound to one sandbox."""

    def __init__(self, app: SandboxApp) -> None:
        self.app = app
        self.ctx = app.ctx
        self.settings: dict[str, Callable[[dict[str, Any]], None]] = {
            "twilio/opt-out": lambda d: app.twilio.opt_out(d["number"]),
            "twilio/outcomes": lambda d: app.twilio.set_outcome(
                d["match"], d.get("status", "undelivered"), d.get("error_code", 30003)
            ),
            "facebook/invalidate": lambda d: app.facebook.invalidate_token(
                d["page_id"], d.get("reason", "expired")
            ),
            "telegram/remove-bot": lambda d: app.telegram.remove_bot(d["chat"]),
            "connector/block": lambda d: app.connector.block(d["channel_id"]),
        }

    async def health(self, request: Request) -> Response:
        return _answer({"ok": True})

    async def env(self, request: Request) -> Response:
        return _answer(self.app.env())

    async def records(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.ctx.records.clear()
            return _answer({"ok": True})
        q = request.query_params
        direction = q.get("direction")
        if direction not in (None, "in", "out"):
            raise ValueError("direction must be 'in' or 'out'")
        found = self.ctx.records.find(
            q.get("platform"),
            target=q.get("target"),
            direction="in" if direction == "in" else "out" if direction else None,
            method=q.get("method"),
        )
        return _answer({"records": [r.to_json() for r in found]})

    async def faults(self, request: Request) -> Response:
        if request.method == "GET":
            return _answer({"faults": [f.to_json() for f in self.ctx.faults.active()]})
        if request.method == "DELETE":
            self.ctx.faults.clear(request.query_params.get("platform"))
            return _answer({"ok": True})
        fault_id = self.ctx.faults.add(Fault.from_json(await _body(request)))
        return _answer({"id": fault_id}, 201)

    async def fault(self, request: Request) -> Response:
        removed = self.ctx.faults.remove(request.path_params["fault_id"])
        return _answer({"removed": removed}, 200 if removed else 404)

    async def state(self, request: Request) -> Response:
        return _answer(self.app.state())

    async def reset(self, request: Request) -> Response:
        self.app.reset()
        return _answer({"ok": True})

    async def click(self, request: Request) -> Response:
        data = await _body(request)
        bot_url = data.pop("bot_url")
        try:
            answer = await self.app.teams.click_async(bot_url, **data)
        except httpx.HTTPError as error:
            return _answer({"error": f"the bot did not answer: {error!r}"}, 502)
        return _answer({"status": answer.status_code, "body": answer.text})

    async def setting(self, request: Request) -> Response:
        action = self.settings.get(request.path_params["action"])
        if action is None:
            return _answer({"error": f"unknown action {request.path_params['action']}"}, 404)
        action(await _body(request))
        return _answer({"ok": True})


def control_routes(app: SandboxApp) -> list[BaseRoute]:
    """The ``/_sandbox`` mount for ``app``."""
    c = _Control(app)
    routes = [
        Route("/health", _guarded(c.health), methods=["GET"]),
        Route("/env", _guarded(c.env), methods=["GET"]),
        Route("/records", _guarded(c.records), methods=["GET", "DELETE"]),
        Route("/faults", _guarded(c.faults), methods=["GET", "POST", "DELETE"]),
        Route("/faults/{fault_id}", _guarded(c.fault), methods=["DELETE"]),
        Route("/state", _guarded(c.state), methods=["GET"]),
        Route("/reset", _guarded(c.reset), methods=["POST"]),
        Route("/teams/click", _guarded(c.click), methods=["POST"]),
        Route("/{action:path}", _guarded(c.setting), methods=["POST"]),
    ]
    return [Mount("/_sandbox", routes=routes)]
