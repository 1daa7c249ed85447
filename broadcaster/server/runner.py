"""Running ``broadcaster serve``: uvicorn and the queue worker in one process and event loop.

The first SIGINT or SIGTERM stops both cleanly: the server stops accepting connections and
answers the requests it holds (callbacks in flight are written), while the worker lets its
running jobs finish within ``[queue] shutdown_grace_seconds`` and releases the rest. A second
signal stops waiting for open HTTP connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator

import uvicorn

from broadcaster.app import App
from broadcaster.config import SmsTarget
from broadcaster.delivery import SendObserver
from broadcaster.errors import BroadcastError
from broadcaster.server.app import create_app
from broadcaster.server.context import DEFAULT_MAX_BODY_BYTES
from broadcaster.worker_runtime import run_worker

__all__ = ["InProcessWorker", "Service", "listen", "run_serve"]

log = logging.getLogger("broadcaster.server")

#: Open connections get this long to finish after a stop before they are dropped.
_GRACEFUL_S = 10


class InProcessWorker:
    """The queue worker as a task in the server's event loop."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[int] | None = None
        self._observers: list[SendObserver] = []

    def start(self) -> None:
        """Start working (call inside the running loop)."""
        self._task = asyncio.get_running_loop().create_task(
            run_worker(self._app, stop=self._stop, wake=self._wake, on_send=self._sent),
            name="broadcaster-worker",
        )
        self._task.add_done_callback(self._ended)

    def wake(self) -> None:
        """Look for due jobs now: a request just queued some (call inside the running loop)."""
        self._wake.set()

    def observe_sends(self, observer: SendObserver) -> None:
        """Tell ``observer`` the channel and duration of every platform call."""
        self._observers.append(observer)

    def _sent(self, channel: str, seconds: float) -> None:
        for observer in self._observers:
            observer(channel, seconds)

    @property
    def state(self) -> str:
        """``starting``, ``running``, ``stopped`` (asked to) or ``failed`` (a bug stopped it)."""
        task = self._task
        if task is None:
            return "starting"
        if not task.done():
            return "running"
        if not task.cancelled() and task.exception() is not None:
            return "failed"
        return "stopped"

    async def drain(self) -> int:
        """Stop taking jobs, let the running ones finish; how many jobs it settled in all."""
        self._stop.set()
        task = self._task
        if task is None:
            return 0
        await asyncio.wait({task})
        if task.cancelled() or task.exception() is not None:
            return 0  # already logged by _ended
        return task.result()

    def _ended(self, task: asyncio.Task[int]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("the worker stopped on an error; /healthz reports it", exc_info=error)
        elif not self._stop.is_set():
            log.error("the worker stopped by itself; /healthz reports it")
        else:
            log.info("worker stopped after %d job(s)", task.result(), extra={"jobs": task.result()})


class _Server(uvicorn.Server):
    """uvicorn, leaving the signals to :class:`Service` (which also stops the worker)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn would re-raise a captured signal after its shutdown, turning a clean stop into
        # a kill; and it knows nothing of the worker.
        yield


class Service:
    """One ``serve``: the HTTP server on ``sock`` and, unless ``worker`` is False, the worker."""

    def __init__(
        self,
        app: App,
        sock: socket.socket,
        *,
        worker: bool = True,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.sock = sock
        self.worker = InProcessWorker(app) if worker else None
        web = create_app(app, worker=self.worker, max_body_bytes=max_body_bytes)
        self.server = _Server(
            uvicorn.Config(
                web,
                ws="none",
                lifespan="on",
                log_config=None,  # our handler (phone numbers masked) gets uvicorn's warnings
                access_log=False,  # one line per callback would be 26,000 lines per send
                server_header=False,
                timeout_graceful_shutdown=_GRACEFUL_S,
            )
        )
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Serve until :meth:`stop`; returns once the server and the worker are both done."""
        if self.worker is not None:
            self.worker.start()
        serving = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        stopping = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        self.server.should_exit = True
        drained = self.worker.drain() if self.worker is not None else asyncio.sleep(0)
        # Both finish whatever happens to the other: a server that failed still lets the
        # worker release its jobs.
        served, _ = await asyncio.gather(serving, drained, return_exceptions=True)
        if isinstance(served, BaseException):
            raise served

    def stop(self) -> None:
        """Begin a clean stop; called again, stop waiting for open connections."""
        if self._stopping.is_set():
            self.server.force_exit = True
        self._stopping.set()


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: any free port)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise BroadcastError(f"serve: cannot listen on {host!r}: {error.strerror}") from None
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so, and without it
    # every answer written in two parts waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise BroadcastError(
            f"serve: cannot listen on {host}:{port}: {error.strerror or error}"
        ) from None
    return sock


def run_serve(app: App, *, host: str, port: int, worker: bool = True) -> None:
    """``broadcaster serve`` in the foreground until SIGINT or SIGTERM."""
    sock = listen(host, port)
    _announce(app, sock, worker)

    async def main() -> None:
        service = Service(app, sock, worker=worker)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, service.stop)
        await service.run()

    try:
        asyncio.run(main())
    finally:
        sock.close()
    log.info("serve stopped")


def _announce(app: App, sock: socket.socket, worker: bool) -> None:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    base = app.config.broadcaster.public_base_url
    log.info(
        "serving on http://%s:%d (%s)%s",
        shown,
        port,
        "with the worker" if worker else "no worker: run `broadcaster worker` elsewhere",
        f"; Twilio status callbacks: {base.rstrip('/')}/twilio/status" if base else "",
        extra={"port": port},
    )
    has_sms = any(isinstance(target, SmsTarget) for target in app.config.targets)
    if has_sms and not base:
        log.warning(
            "[broadcaster] public_base_url is not set: SMS go out without status callbacks, "
            "and any that arrive are refused"
        )
