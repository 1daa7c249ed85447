"""The plumbing every route shares: a bug answers 500 `internal error`, never a traceback."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broadcaster.server.http import CatchAll, exception_handlers
from tests.cli.test_startup_imports import imported_modules, loaded


async def broken(request: Request) -> Response:
    raise RuntimeError("a bug while answering about +46701234567")


def test_a_bug_answers_internal_error_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    web = Starlette(
        routes=[Route("/broken", broken)],
        middleware=[Middleware(CatchAll)],
        exception_handlers=exception_handlers(1024),
    )

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=web)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
            return await client.get("/broken")

    with caplog.at_level(logging.ERROR, logger="broadcaster.server"):
        answer = asyncio.run(call())

    assert (answer.status_code, answer.json()) == (500, {"error": "internal error"})
    assert "Traceback" not in answer.text and "RuntimeError" not in answer.text
    [record] = caplog.records
    assert record.getMessage() == "internal error answering GET /broken"
    assert record.exc_info is not None  # the traceback is in the log, for whoever reads it


def test_serve_help_starts_no_web_server(tmp_path: Path) -> None:
    modules = imported_modules(tmp_path, "serve", "--help")
    assert loaded(modules, "typer")
    assert [name for name in ("starlette", "uvicorn", "twilio") if loaded(modules, name)] == []
