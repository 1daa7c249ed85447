"""From the second approver's click in Teams to the first delivery sent, with ``serve``'s worker.

What production runs is what is measured. A ``broadcaster init`` workspace (embedded SQLite, its
two static crisis sites as targets) gets approval cards in Teams through the sandbox: its ``.env``
is the sandbox's, so the bot posts to the sandbox's Bot Connector and the sandbox acts as Teams.
``broadcaster serve`` runs as its own process, with the worker inside (as deployed). This process
plays the officer (``create_draft``, ``submit``, the code behind ``draft`` and ``submit``) and the
approvers, who click Approve over HTTP with tokens signed as Bot Framework signs them.

Figures:

* **approval to sent** — per crisis update (sent by its last approval, ``[approval]
  send_on_approval`` unset): from just before the second approver's click is sent to the first
  of its deliveries being ``sent`` (the delivery's ``sent_at``, written by ``serve``'s worker);
  the clicker's card shows it approved and sending before that (the invoke's answer);
* **invoke handling** — the round trip of one click (token checked, decision recorded, the card
  answered), over ``--invokes`` clicks on updates that are not crises (two approvers each), so
  no fan-out runs meanwhile; p50 and p99.

Targets (printed against, never asserted): approval to sent under 1 s. Run:
``.venv/bin/python bench/approval_latency.py`` (under a minute). The last line is
``RESULT key=value ...`` with the same keys every run.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROUNDS = 5
INVOKES = 200
TARGET_S = 1.0
AUTHOR = "lina.kommunikator"
ANNA, JENS = "anna.hasselbom", "jens.odevall"
BODY = (
    "Dricksvattnet i Borgholm är förorenat. Koka vattnet före användning tills vidare. "
    "Vatten delas ut vid kommunhuset från klockan 18."
)


def configure(folder: Path, env: dict[str, str], object_ids: tuple[str, ...]) -> None:
    """The workspace's approval cards go to the sandbox's approvers' channel, by the bot."""
    from broadcaster.sandbox import TEAMS_CHANNEL_IDS
    from broadcaster.scaffold import init_workspace

    init_workspace(folder)
    path = folder / "broadcaster.toml"
    text = path.read_text(encoding="utf-8")
    start, end = text.index("[approval]"), text.index("[[organisations]]")
    identities = "".join(
        f'"{person}" = "{oid}"\n' for person, oid in zip((JENS, ANNA), object_ids, strict=False)
    )
    approval = (
        "[approval]\nrequired = 2\n"
        f'approvers = ["{JENS}", "{ANNA}"]\n'
        f'teams_channel_id = "{TEAMS_CHANNEL_IDS[0]}"\n'
        f"[approval.identities]\n{identities}\n"
    )
    bot = (
        '\n[teams_bot]\napp_id = "env:TEAMS_APP_ID"\napp_password = "env:TEAMS_APP_PASSWORD"\n'
        'tenant_id = "env:TEAMS_TENANT_ID"\n'
    )
    path.write_text(text[:start] + approval + text[end:] + bot, encoding="utf-8")
    with (folder / ".env").open("a", encoding="utf-8") as dotenv:
        dotenv.write("".join(f"{key}={value}\n" for key, value in env.items()))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.005)


def start_serve(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """``broadcaster serve`` with its worker, in its own process, answering /healthz."""
    import httpx

    server = subprocess.Popen(
        [sys.executable, "-m", "broadcaster", "serve", "--port", str(port)],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")},
    )

    def healthy() -> bool:
        if server.poll() is not None:
            error = server.stderr.read().decode() if server.stderr else ""
            raise RuntimeError(f"serve stopped: {error[-2000:]}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, "serve to answer /healthz")
    return server


class Bench:
    """The officer and the approvers, against one ``serve``."""

    def __init__(self, app: Any, sandbox: Any, url: str, object_ids: dict[str, str]) -> None:
        self.app, self.sandbox, self.url, self.object_ids = app, sandbox, url, object_ids

    def submitted(self, severity: Any, number: int) -> int:
        from broadcaster.authoring import DraftInput, create_draft, submit

        draft = DraftInput(title=f"Vattnet, läge {number}", body=BODY, severity=severity,
                           to=("borgholm",))  # fmt: skip
        created = create_draft(self.app, AUTHOR, draft)
        submit(self.app, AUTHOR, created.id)
        return int(created.id)

    def card(self, announcement_id: int) -> str:
        """The id of the announcement's card, once ``serve``'s worker has posted it."""
        from broadcaster.sandbox.teams import find_execute_action

        def posted() -> str | None:
            for activity in self.sandbox.connector.activities():
                action = find_execute_action(activity.card(), "approve")
                if action and action["data"].get("announcement") == announcement_id:
                    return str(activity.id)
            return None

        found: str = wait_for(posted, f"the card of announcement {announcement_id}")
        return found

    def click(self, person: str, announcement_id: int, activity_id: str | None = None) -> float:
        """One Approve click by ``person``; its round trip in seconds."""
        from broadcaster.approval_card import action_data
        from broadcaster.approval_card_view import card_view

        if activity_id is None:
            with self.app.store.read() as conn:
                data = action_data(card_view(self.app, conn, announcement_id))
            activity = self.sandbox.teams.invoke(
                verb="approve", user_object_id=self.object_ids[person], data=data
            )
        else:
            activity = self.sandbox.teams.invoke(
                verb="approve", user_object_id=self.object_ids[person], activity_id=activity_id
            )
        started = time.perf_counter()
        answer = self.sandbox.teams.send(self.url, activity, timeout_s=30)
        elapsed = time.perf_counter() - started
        body = answer.json()
        card = body.get("value") if isinstance(body, dict) else None
        refused = [e for e in (card or {}).get("body", []) if e.get("style") == "attention"]
        if answer.status_code != 200 or body.get("statusCode") != 200 or refused:
            raise RuntimeError(f"the click was not taken: {answer.status_code} {answer.text[:300]}")
        return elapsed

    def first_sent(self, announcement_id: int) -> datetime | None:
        from sqlalchemy import func, select

        from broadcaster.store.schema import deliveries

        with self.app.store.read() as conn:
            moment: datetime | None = conn.execute(
                select(func.min(deliveries.c.sent_at)).where(
                    deliveries.c.announcement_id == announcement_id,
                    deliveries.c.state == "sent",
                )
            ).scalar_one()
        return moment


def measure(bench: Bench, rounds: int, invokes: int) -> dict[str, Any]:
    from broadcaster.model import Severity

    latencies: list[float] = []
    for number in range(1, rounds + 1):
        announcement = bench.submitted(Severity.CRISIS, number)
        card = bench.card(announcement)
        bench.click(ANNA, announcement, card)
        clicked = time.time()
        bench.click(JENS, announcement, card)
        sent = wait_for(lambda a=announcement: bench.first_sent(a), "the first delivery sent")
        latencies.append(sent.timestamp() - clicked)
        print(f"  crisis update {number}: approval to sent {latencies[-1] * 1000:.0f} ms")
    times: list[float] = []
    for number in range(1, invokes // 2 + 1):
        announcement = bench.submitted(Severity.IMPORTANT, 100 + number)
        times.append(bench.click(ANNA, announcement))
        times.append(bench.click(JENS, announcement))
    return {"latencies": latencies, "invokes": times}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(result: dict[str, Any]) -> None:
    latencies = [s * 1000 for s in result["latencies"]]
    invokes = [s * 1000 for s in result["invokes"]]
    median = statistics.median(latencies)
    worst = max(latencies)
    p50, p99 = percentile(invokes, 0.5), percentile(invokes, 0.99)
    mark = "✓" if worst <= TARGET_S * 1000 else "✗"
    target = f"target < {TARGET_S * 1000:.0f} ms"
    print(
        f"approval to first delivery sent: median {median:.0f} ms, worst {worst:.0f} ms "
        f"over {len(latencies)} crisis updates ({target}) {mark}"
    )
    print(
        f"invoke handling (round trip): p50 {p50:.1f} ms, p99 {p99:.1f} ms over "
        f"{len(invokes)} clicks"
    )
    print(
        f"RESULT approval_to_sent_ms={median:.0f} approval_to_sent_max_ms={worst:.0f} "
        f"invoke_p50_ms={p50:.1f} invoke_p99_ms={p99:.1f} invokes={len(invokes)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="crisis updates to time")
    parser.add_argument("--invokes", type=int, default=INVOKES, help="clicks to time")
    options = parser.parse_args()
    from broadcaster.app import open_app
    from broadcaster.sandbox import APPROVER_OBJECT_IDS, Sandbox
    from broadcaster.workspace import load_workspace

    with Sandbox(seed=13) as sandbox, tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary) / "ws"
        configure(folder, sandbox.env(), APPROVER_OBJECT_IDS)
        port = free_port()
        server = start_serve(folder, port)
        app = open_app(load_workspace(folder / "broadcaster.toml", sandbox.env()))
        object_ids = {JENS: APPROVER_OBJECT_IDS[0], ANNA: APPROVER_OBJECT_IDS[1]}
        try:
            bench = Bench(app, sandbox, f"http://127.0.0.1:{port}/api/messages", object_ids)
            result = measure(bench, options.rounds, options.invokes)
        finally:
            app.close()
            server.terminate()
            server.wait(timeout=60)
    report(result)


if __name__ == "__main__":
    main()
