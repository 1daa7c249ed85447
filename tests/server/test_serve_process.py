"""`broadcaster serve` as a process: it starts, answers, absorbs a burst and stops on a signal."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from broadcaster.app import open_app
from broadcaster.store.schema import deliveries
from broadcaster.workspace import load_workspace
from tests.server.conftest import BORGHOLM_TOKEN, PUBLIC, callback_form, configure, sms_deliveries

_LISTENING = re.compile(r"serving on (http://\S+)")


@dataclass
class ServeProcess:
    """A `broadcaster serve` process; its log lines are collected as they come."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    url: str = ""
    reader: threading.Thread | None = None

    def wait_for_url(self, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while not self.url:
            for line in list(self.lines):
                if found := _LISTENING.search(line):
                    self.url = found.group(1)
            assert self.process.poll() is None, "\n".join(self.lines)
            assert time.monotonic() < deadline, "serve did not start:\n" + "\n".join(self.lines)
            time.sleep(0.05)
        return self.url

    @property
    def log(self) -> str:
        return "\n".join(self.lines)


def start(workspace_dir: Path, *args: str) -> ServeProcess:
    env = {**os.environ}
    env.pop("BROADCASTER_CONFIG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "broadcaster", "serve", "--port", "0", *args],
        cwd=workspace_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = ServeProcess(process)

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            running.lines.append(line.rstrip("\n"))

    running.reader = threading.Thread(target=read, daemon=True)
    running.reader.start()
    return running


@pytest.fixture
def serving(workspace_dir: Path, database_url: str) -> Path:
    configure(workspace_dir, database_url)
    return workspace_dir


def stop(running: ServeProcess, signum: int = signal.SIGTERM, timeout: float = 15) -> float:
    """Signal the process; how long it took to exit."""
    started = time.monotonic()
    running.process.send_signal(signum)
    try:
        running.process.wait(timeout=timeout)
    finally:
        took = time.monotonic() - started
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()
        if running.reader is not None:
            running.reader.join(timeout=5)
        if running.process.stderr is not None:
            running.process.stderr.close()
    return took


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_health_and_stops_promptly_on_a_signal(serving: Path, signum: int) -> None:
    running = start(serving)
    try:
        url = running.wait_for_url()
        deadline = time.monotonic() + 10
        while (health := httpx.get(f"{url}/healthz", timeout=5)).json()["worker"] != "running":
            assert time.monotonic() < deadline, health.text
            time.sleep(0.05)
        assert health.status_code == 200
    finally:
        took = stop(running, signum)
    assert running.process.returncode == 0, running.log
    assert took < 5, f"took {took:.1f} s to stop"
    assert f"Twilio status callbacks: {PUBLIC}/twilio/status" in running.log
    assert "worker stopped after 0 job(s)" in running.log
    assert "serve stopped" in running.log
    assert "Traceback" not in running.log


def test_serve_says_why_it_cannot_listen(serving: Path) -> None:
    first = start(serving, "--no-worker")
    try:
        port = first.wait_for_url().rsplit(":", 1)[1]
        second = subprocess.run(
            [sys.executable, "-m", "broadcaster", "serve", "--port", port],
            cwd=serving,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        stop(first)
    assert second.returncode == 1
    assert f"serve: cannot listen on 127.0.0.1:{port}" in second.stderr
    assert "Traceback" not in second.stderr


BURST = 5_000


#: Connections open at once, as Twilio's senders would hold them (not 5,000 sockets).
CONNECTIONS = 50


async def _post_all(
    url: str, requests: list[tuple[int, dict[str, str], dict[str, str]]]
) -> tuple[list[httpx.Response], float]:
    """Every request started at once, over CONNECTIONS keep-alive connections."""
    # One client per connection: an httpx pool's bookkeeping grows with its connections times
    # the requests waiting for them, and one pool of 50 would measure the client, not serve.
    clients = [
        httpx.AsyncClient(limits=httpx.Limits(max_connections=1), timeout=120)
        for _ in range(CONNECTIONS)
    ]
    free: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
    for client in clients:
        free.put_nowait(client)

    async def post(delivery_id: int, form: dict[str, str], headers: dict[str, str]) -> Any:
        client = await free.get()
        try:
            return await client.post(
                f"{url}/twilio/status?d={delivery_id}", data=form, headers=headers
            )
        finally:
            free.put_nowait(client)

    try:
        started = time.perf_counter()
        answers = await asyncio.gather(*(post(*request) for request in requests))
        return list(answers), time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()


@pytest.mark.slow
def test_a_burst_of_5000_callbacks_is_absorbed_and_applied_once(serving: Path) -> None:
    app = open_app(load_workspace(serving / "broadcaster.toml", {}))
    try:
        sent = sms_deliveries(app, BURST)
    finally:
        app.close()
    validator = RequestValidator(BORGHOLM_TOKEN)
    requests = []
    for delivery in sent:
        form = callback_form(delivery.id, "delivered")
        signature = validator.compute_signature(f"{PUBLIC}/twilio/status?d={delivery.id}", form)
        headers = {"X-Twilio-Signature": signature, "I-Twilio-Idempotency-Token": str(uuid.uuid4())}
        requests.append((delivery.id, form, headers))

    running = start(serving, "--no-worker")
    try:
        url = running.wait_for_url()
        answers, seconds = asyncio.run(_post_all(url, requests))
        # Twilio retrying some of them (same idempotency token): nothing is applied twice.
        replays, _ = asyncio.run(_post_all(url, requests[:500]))
    finally:
        stop(running)

    print(f"\n{BURST} status callbacks in {seconds:.2f} s: {BURST / seconds:.0f} callbacks/s")
    assert [a.status_code for a in answers] == [200] * BURST, running.log
    assert {a.json()["result"] for a in answers} == {"applied"}
    assert {a.json()["result"] for a in replays} == {"duplicate"}
    assert running.process.returncode == 0, running.log
    app = open_app(load_workspace(serving / "broadcaster.toml", {}))
    try:
        with app.store.read() as conn:
            delivered = conn.execute(
                select(func.count()).where(deliveries.c.platform_status == "delivered")
            ).scalar_one()
    finally:
        app.close()
    assert delivered == BURST
