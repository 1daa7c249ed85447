"""A local recorder that plays the platform for the queue tests, and the adapter that talks to it.

The recorder is a real HTTP server. ``POST /deliver/<target>`` carries a delivery's idempotency
key; the *effect* (the "post") happens when the recorder answers 2xx, whether or not the client
lives to read the answer. ``GET /has/<key>`` is the platform's "do you already hold this?" — the
adapter's verify step. Each target's answers can be scripted (status, Retry-After, latency, hang).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import quote, unquote

import httpx

from broadcaster.channels.base import Channel, ChannelContext, Receipt, Rendered
from broadcaster.channels.registry import ChannelRegistry
from broadcaster.config import TargetConfig
from broadcaster.errors import PermanentError, RateLimited, TransientError, UnknownOutcome
from broadcaster.rendering.message import Message


@dataclass(frozen=True)
class Answer:
    """One scripted answer."""

    status: int = 200
    retry_after: float | None = None
    delay: float = 0.0


@dataclass
class RecorderState:
    """Everything the recorder saw, and what it will answer."""

    effects: Counter[str] = field(default_factory=Counter)
    requests: list[tuple[str, str, float, int]] = field(default_factory=list)  # target, key, t, pid
    scripts: dict[str, list[Answer]] = field(default_factory=lambda: defaultdict(list))
    latency: float = 0.0
    verifies: int = 0
    active: int = 0
    most_active: int = 0  # the most requests it was serving at the same moment
    hang: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    #: Requests after the first ``admit`` wait (up to 60 s) for ``gate`` to be set.
    admit: int | None = None
    admitted: int = 0
    gate: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_answer(self, target: str) -> Answer:
        with self.lock:
            queue = self.scripts[target]
            return queue.pop(0) if queue else Answer()

    def times(self, target: str) -> list[float]:
        with self.lock:
            return [t for tgt, _, t, _ in self.requests if tgt == target]


class Recorder:
    """The recorder server, on a free loopback port, in a background thread."""

    def __init__(self) -> None:
        self.state = RecorderState()
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real platform's API does

            def setup(self) -> None:
                super().setup()
                # Headers and body are separate writes: without TCP_NODELAY each answer waits
                # ~40 ms for the client's delayed ACK.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                target = unquote(self.path.removeprefix("/deliver/"))
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with state.lock:
                    state.requests.append((target, body["key"], time.monotonic(), body["pid"]))
                    state.active += 1
                    state.most_active = max(state.most_active, state.active)
                if target in state.hang:
                    state.release.wait(60)  # hang until the test ends
                    return
                with state.lock:
                    state.admitted += 1
                    held = state.admit is not None and state.admitted > state.admit
                if held:
                    state.gate.wait(60)
                answer = state.next_answer(target)
                if answer.delay or state.latency:
                    time.sleep(answer.delay or state.latency)
                with state.lock:
                    state.active -= 1
                if 200 <= answer.status < 300:
                    with state.lock:
                        state.effects[body["key"]] += 1
                self.send_response(answer.status)
                if answer.retry_after is not None:
                    self.send_header("Retry-After", str(int(answer.retry_after)))
                payload = json.dumps({"id": f"rec-{body['key']}"}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                key = unquote(self.path.removeprefix("/has/"))
                with state.lock:
                    state.verifies += 1
                    held = state.effects[key] > 0
                self.send_response(200 if held else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # many workers connect at once
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.state.release.set()
        self.server.shutdown()
        self.server.server_close()


def delivery_key(message: Message) -> str:
    """The idempotency key of one delivery."""
    return f"{message.uid}/{message.revision}/{message.target.id}/{message.recipient}"


def recorder_registry(url: str, timeout: float = 30.0) -> ChannelRegistry:
    """A registry whose ``website`` targets deliver to the recorder at ``url``."""

    class RecorderChannel(Channel):
        name: ClassVar[str] = "website"
        can_verify = True
        max_attempts = 6
        max_age_seconds = 3600
        default_concurrency = 64

        def __init__(self, target: TargetConfig, context: ChannelContext) -> None:
            super().__init__(target, context)
            self.client = httpx.AsyncClient(base_url=url, timeout=timeout)

        def render(self, message: Message) -> Rendered:
            return Rendered(text=message.content.title)

        async def send(self, message: Message, rendered: Rendered) -> Receipt:
            import os

            key = delivery_key(message)
            try:
                response = await self.client.post(
                    f"/deliver/{quote(message.target.id)}", json={"key": key, "pid": os.getpid()}
                )
            except httpx.ConnectError as exc:  # nothing was sent
                raise TransientError(self.name, f"cannot connect: {exc}") from None
            except httpx.TransportError as exc:  # sent, but the answer was lost
                raise UnknownOutcome(self.name, f"no answer: {type(exc).__name__}") from None
            after = response.headers.get("Retry-After")
            wait = float(after) if after else None
            if response.status_code == 429:
                raise RateLimited(self.name, "429", retry_after=wait)
            if response.status_code >= 500:
                raise TransientError(self.name, f"HTTP {response.status_code}", retry_after=wait)
            if response.status_code >= 400:
                raise PermanentError(self.name, f"HTTP {response.status_code}: refused")
            return Receipt(str(response.json()["id"]))

        async def verify(self, message: Message) -> Receipt | None:
            try:
                response = await self.client.get(f"/has/{quote(delivery_key(message), safe='')}")
            except httpx.HTTPError as exc:
                raise TransientError(self.name, f"cannot verify: {exc}") from None
            return Receipt(f"rec-{delivery_key(message)}") if response.status_code == 200 else None

        async def aclose(self) -> None:
            await self.client.aclose()

    registry = ChannelRegistry()
    registry.register_class("website", RecorderChannel)
    return registry
