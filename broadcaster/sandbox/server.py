"""Running a sandbox: in a background thread for tests and demos, or in the foreground for people.

Both listen on 127.0.0.1 only, on a socket bound before the server starts (so the port, also a
random one, is known before anyone is told). The server protocol is uvicorn's h11 protocol with
one addition: it hands the connection's transport to the app (see
:data:`~.exchange.TRANSPORT_STATE_KEY`), which the ``drop``, ``down`` and ``hang`` faults close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType, TracebackType

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from broadcaster.errors import BroadcastError

from .app import SandboxApp
from .exchange import TRANSPORT_STATE_KEY
from .specs import find_specs_dir

__all__ = ["DEFAULT_PORT", "HOST", "Sandbox", "serve"]

HOST = "127.0.0.1"
DEFAULT_PORT = 8765
_READY_TIMEOUT_S = 10.0


class _TransportProtocol(H11Protocol):
    """uvicorn's h11 protocol, exposing each connection's transport in the ASGI ``state``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # Copy, so that each connection has its own entry and the shared state is untouched.
        self.app_state = {**self.app_state, TRANSPORT_STATE_KEY: transport}
        super().connection_made(transport)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its owner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises a captured SIGINT/SIGTERM after shutting down, which would turn a
        # clean stop into a KeyboardInterrupt or a kill; `serve` handles the signals instead.
        yield


def _listen(port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without
    # it every answer written in two parts waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise BroadcastError(
            f"the sandbox cannot listen on {HOST}:{port}: {error.strerror}"
        ) from None
    sock.set_inheritable(True)
    return sock


def _server(app: SandboxApp) -> _Server:
    config = uvicorn.Config(
        app.asgi,
        http=_TransportProtocol,
        ws="none",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=5,
    )
    return _Server(config)


class Sandbox:
    """The platform emulators in a background thread on a loopback port.

    Use it as a context manager::

        with Sandbox() as sb:
            env = sb.env()             # the .env entries: URL overrides and credentials
            sb.faults.fail("twilio", status=429, retry_after=1)
            ...
            sb.records.find("twilio")  # what Twilio received

    Attributes:
        app: The :class:`~.app.SandboxApp` with every emulator; its emulators are also
            attributes here: ``facebook``, ``twilio``, ``telegram``, ``login``, ``botframework``,
            ``connector``, ``workflows``, ``cms``, and ``teams`` (act as Teams).
        records: What the emulators received and sent (:class:`~.records.Recorder`).
        faults: Fault injection (:class:`~.faults.FaultBook`).
        credentials: The accepted credentials (:class:`~.credentials.Credentials`).
    """

    def __init__(
        self,
        *,
        specs_dir: Path | None = None,
        port: int = 0,
        seed: int | None = None,
        callback_delay_s: float = 0.05,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Prepare a sandbox (call :meth:`start`, or use ``with``).

        Args:
            specs_dir: Platform specs directory; None looks in the usual places
                (:func:`~.specs.find_specs_dir`) and falls back to structural checks.
            port: Loopback port; 0 picks a free one.
            seed: Reproducible credentials and ``ratio`` faults.
            callback_delay_s: Pause between a Twilio message's status changes (and callbacks).
            clock: Source of Unix time.
        """
        self.app = SandboxApp(
            specs_dir=find_specs_dir(specs_dir),
            seed=seed,
            clock=clock,
            callback_delay_s=callback_delay_s,
        )
        self.facebook = self.app.facebook
        self.twilio = self.app.twilio
        self.telegram = self.app.telegram
        self.login = self.app.login
        self.botframework = self.app.botframework
        self.connector = self.app.connector
        self.workflows = self.app.workflows
        self.cms = self.app.cms
        self.teams = self.app.teams
        self.records = self.app.ctx.records
        self.faults = self.app.ctx.faults
        self.credentials = self.app.ctx.credentials
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (after :meth:`start`)."""
        return self.app.base_url

    def env(self) -> dict[str, str]:
        """The ``.env`` entries: URL overrides, credentials and the exercise settings.

        Raises:
            RuntimeError: The sandbox has not been started (its port is not known yet).
        """
        if not self.base_url:
            raise RuntimeError("start the sandbox first: its URLs include the port")
        return self.app.env()

    def reset(self) -> None:
        """Forget records, faults and platform state; keep credentials, keys and the port."""
        self.app.reset()

    def start(self) -> Sandbox:
        """Start serving and wait until the server accepts requests.

        Raises:
            BroadcastError: The port cannot be bound.
            RuntimeError: The server did not come up, or was already started.
        """
        if self._thread is not None:
            raise RuntimeError("the sandbox is already running")
        self._socket = _listen(self._port)
        self.app.bind(f"http://{HOST}:{self._socket.getsockname()[1]}")
        self._server = _server(self.app)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"broadcaster-sandbox-{self._socket.getsockname()[1]}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving (open connections get up to two seconds) and release the port."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=_READY_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%H:%M:%S"))
    for name in ("broadcaster.sandbox", "uvicorn.error"):
        log = logging.getLogger(name)
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def _write_env_file(path: Path, text: str) -> None:
    # The file holds credentials: owner-only from the moment it exists.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def serve(
    port: int = DEFAULT_PORT,
    env_file: Path | None = None,
    specs_dir: Path | None = None,
    *,
    callback_delay_s: float = 0.5,
) -> None:
    """Run the sandbox in the foreground until Ctrl-C or SIGTERM (``broadcaster sandbox``).

    Standard output gets the complete ``.env`` (``KEY=value`` lines and ``#`` comments only);
    request logs, with secrets and phone numbers masked, go to standard error.

    Args:
        port: Loopback port; 0 picks a free one.
        env_file: Also write the ``.env`` there (mode 0600).
        specs_dir: Platform specs directory (``BROADCASTER_SPECS_DIR``); None looks in the usual
            places and falls back to structural checks.
        callback_delay_s: Pause between a Twilio message's status changes.

    Raises:
        BroadcastError: The port cannot be bound.
        FileNotFoundError: ``specs_dir`` holds no specs.
    """
    app = SandboxApp(specs_dir=find_specs_dir(specs_dir), callback_delay_s=callback_delay_s)
    sock = _listen(port)
    app.bind(f"http://{HOST}:{sock.getsockname()[1]}")
    server = _server(app)

    def stop(signum: int, frame: FrameType | None) -> None:
        # A second Ctrl-C stops at once instead of waiting for open connections.
        server.force_exit = server.should_exit
        server.should_exit = True

    # Handlers first: whoever reads the .env may signal at once, and must get a clean stop.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _announce(app, env_file)
        _log_to_stderr()
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()


def _announce(app: SandboxApp, env_file: Path | None) -> None:
    text = app.env_text()
    if env_file is not None:
        _write_env_file(env_file, text)
        text += f"# Also written to {env_file}\n"
    sys.stdout.write(text)
    sys.stdout.flush()
