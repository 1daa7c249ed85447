"""``serve`` in a background thread of this process: for the demo and the tests.

The service runs in its own event loop on its own thread, on a socket the caller opened (so the
port is known, and free, before anything is sent to it). Anything that touches the service's
loop goes through :meth:`Background.call_soon`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from broadcaster.app import App
from broadcaster.server.runner import Service

__all__ = ["Background", "serve_in_background"]


@dataclass
class Background:
    """A running ``serve``: its :class:`Service`, loop and thread, and its base URL."""

    service: Service
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    url: str
    #: What stopped the service other than :meth:`stop` (a bug, a socket that failed).
    errors: list[BaseException] = field(default_factory=list)

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the service's loop (a no-op once the service has stopped)."""
        if self.thread.is_alive():
            # The loop may have closed since: then the service has stopped, as asked.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(callback)

    def wake_worker(self) -> None:
        """Have the service's worker look for due jobs now: this thread just queued some."""
        worker = self.service.worker
        if worker is not None:
            self.call_soon(worker.wake)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop cleanly (the worker finishes its running jobs); False if it is still running."""
        if self.thread.is_alive():
            self.call_soon(self.service.stop)
            self.thread.join(timeout=timeout)
        return not self.thread.is_alive()


def serve_in_background(
    app: App, sock: socket.socket, *, worker: bool = True, name: str = "serve"
) -> Background:
    """Start ``serve`` for ``app`` on the listening ``sock`` in a new daemon thread."""
    loop = asyncio.new_event_loop()
    service = Service(app, sock, worker=worker)
    errors: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(service.run())
        except BaseException as exc:  # the owner reads it after stop()
            errors.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return Background(service, loop, thread, f"http://{shown}:{port}", errors)
