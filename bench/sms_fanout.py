"""SMS fan-out: 25,000 recipients through the real twilio SDK to the sandbox's Twilio, end to end.

What users run is what is measured, at default options:

* the platform sandbox (:class:`broadcaster.sandbox.Sandbox`, in a process of its own) answers
  every Twilio request 50 ms late (its ``latency`` fault);
* a workspace made by ``broadcaster init``, its ``.env`` pointed at the sandbox, one SMS target
  at the sandbox's Twilio account with only what a user must write (list, sender, the
  ``env:`` references of the account SID and auth token) and the adapter's defaults otherwise
  (see :func:`sms_target_block` for the one exception, the per-target rate limit);
* N fictitious Swedish mobile numbers imported with ``broadcaster lists import``; an
  announcement drafted, submitted and approved by two approvers (``draft``, ``submit``,
  ``approve`` as in ``broadcaster demo``); ``broadcaster send`` timed as a whole process (the
  dispatch: N deliveries and N jobs in one transaction, plus the CLI's start);
* ``broadcaster worker --until-idle`` processes, started together, until every delivery is
  sent. Figures: wall time from ``send`` to the last worker's exit, messages/s, each worker's
  peak RSS (Linux ``VmHWM`` of the worker process, polled every 0.1 s while it runs; the
  RESULT line has the largest, the report also the sum) and CPU time per message (the
  workers', from ``wait4``, and the sandbox's). Run with one worker (the README's default on
  SQLite) and with two; RESULT has the one-worker run. The sandbox's record then has to show
  exactly N messages created, one to each number of the list, and ``status --json`` the
  announcement ``sent``.

Peers, against the same sandbox with the same latency, in the same run:

* (a) the ceiling: a bare asynchronous loop posting the same create requests (the form fields
  the workers sent, Basic auth) with the same number of requests in flight as the workers keep
  (each worker's ``min(max_in_flight, target concurrency)``, times the workers). It runs with
  httpx and with aiohttp (the library under twilio's async client); the faster is the ceiling,
  since a slow client would flatter the ratio. (httpx 0.28 is CPU-bound here: without sniffio
  installed, httpcore tries that import on every request, and its pool scans every connection
  for each request; so it posts only 3,000 creates, and aiohttp is the ceiling in practice.)
* (b) Apprise used the usual way: one ``twilio://`` URL carrying 200 recipients, ``notify()``
  once; its Twilio plugin's ``notify_sms_url`` class attribute is pointed at the sandbox in
  this process (Apprise has no setting for another API host). Its plugin waits 0.2 s between
  requests (``request_rate_per_sec``) and posts one at a time; that is how it is used.

Targets (2 cores): >= 400 messages/s end to end, >= 0.7 of the ceiling, <= 300 MB peak RSS at
25,000 and at 250,000 recipients, >= 50x Apprise, dispatch (``broadcaster send``) < 2 s.
Figures are printed against the targets, never asserted; a run that loses or duplicates a
message stops with an error. The sandbox, the workers and the peers share the machine's cores
(and with whatever else runs there: the load average is printed): CPU time per message is the
figure that does not depend on that.

Numbers: PTS keeps only 070-17 406 05 ... 070-17 406 99 for fiction, far fewer than needed, so
the lists are the consecutive numbers from 070-174 00 00 (25,000: up to 070-176 49 99). They are
only ever sent to the loopback sandbox (the sandbox's ``.env`` makes the workspace an exercise,
which refuses any other platform address).

Run: ``.venv/bin/python bench/sms_fanout.py`` (a few minutes); ``--large`` for 250,000
recipients (one worker; about ten minutes); ``--recipients N --quick`` for a smoke run (one
worker, Apprise to 10 recipients); ``--profile DIR`` runs each worker under cProfile (CPU time
of every thread, written to DIR) and prints where the time went. The last line is ``RESULT
recipients=... msgs_per_s=... peak_rss_mb=... ceiling_msgs_per_s=... ratio_vs_ceiling=...
apprise_msgs_per_s=... ratio_vs_apprise=... dispatch_s=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

N = 25_000
N_LARGE = 250_000
APPRISE_RECIPIENTS = 200
LATENCY_S = 0.05
#: Each aiohttp ceiling loop posts at most this many (its rate does not depend on the count) ...
CEILING_MAX = 10_000
#: ... and the httpx loop fewer: it is far slower (see the module docstring).
CEILING_HTTPX_MAX = 3_000

TARGET_MSGS_PER_S = 400.0
TARGET_VS_CEILING = 0.7
TARGET_RSS_MB = 300.0
TARGET_VS_APPRISE = 50.0
TARGET_DISPATCH_S = 2.0

#: The bench's per-target limit when the adapter's default would not allow the target rate.
BENCH_RATE_PER_SECOND = 1000.0

BIN = Path(sys.executable).parent
BROADCASTER = str(BIN / "broadcaster")
AUTHOR = "kommunikator"
APPROVERS = ("anna.hasselbom", "jens.odevall")
TARGET_ID = "sms-bench"
LIST_NAME = "bench-invanare"
SENDER = "Borgholm"
TITLE = "Dataintrång"
BODY = (
    "Kommunens servrar är avstängda efter ett dataintrång. "
    "Ring växeln på 0485-880 00 om du behöver hjälp."
)
#: 070-174 00 00 as a national number; the lists count up from here.
FIRST_NUMBER = 701_740_000
APPRISE_FIRST_NUMBER = 702_740_000
APPRISE_SOURCE = "46701740605"  # PTS's fiction range


def numbers(count: int, first: int = FIRST_NUMBER) -> list[str]:
    """``count`` E.164 numbers counting up from ``first`` (``+46`` and the national number)."""
    return [f"+46{first + n}" for n in range(count)]


def digest(values: Sequence[str]) -> str:
    """A short fingerprint of a set of numbers, to compare what was sent with the list."""
    return hashlib.sha256("\n".join(sorted(values)).encode()).hexdigest()[:16]


def peak_rss_kb(pid: int | str = "self") -> int:
    """A process's peak resident memory (``VmHWM``; 0 when it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def load() -> float:
    """The one-minute load average (other work on the machine slows every figure)."""
    return os.getloadavg()[0]


# ---------------------------------------------------------------------------------------------
# The sandbox, in a process of its own (so that neither the workers nor the peers share its
# interpreter); this script runs it with --sandbox-process and talks to it over stdin/stdout.


def sandbox_main() -> None:
    """``--sandbox-process``: serve the sandbox with the latency fault; answer commands."""
    from broadcaster.sandbox import Sandbox

    with Sandbox() as sandbox:
        sandbox.faults.latency("twilio", LATENCY_S)
        full = sandbox.app.ctx.specs.full
        print(json.dumps({"env": sandbox.env(), "full_validation": full}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "summary":
                answer = _summary(sandbox)
            elif command == "reset":
                sandbox.reset()
                sandbox.faults.latency("twilio", LATENCY_S)
                answer = {}
            elif command == "cpu":
                answer = {}
            else:
                break
            times = os.times()
            answer |= {"cpu_s": times.user + times.system, "rss_mb": peak_rss_kb() / 1024}
            print(json.dumps(answer), flush=True)


def _summary(sandbox: Any) -> dict[str, Any]:
    """What Twilio received: creates accepted and refused, lookups, messages per number."""
    posts = [
        r
        for r in sandbox.records.find("twilio", direction="in", method="POST")
        if r.path.endswith("/Messages.json")
    ]
    accepted = [r for r in posts if r.status == 201]
    refused = Counter(str(r.status) for r in posts if r.status != 201)
    lookups = len(sandbox.records.find("twilio", direction="in", method="GET"))
    per_number = Counter(message.to for message in sandbox.twilio.messages())
    sample = dict(accepted[0].form or {}) if accepted else {}
    sample.pop("To", None)  # the number differs per request; the rest is the same
    return {
        "posts": len(posts),
        "created": sum(per_number.values()),
        "numbers": len(per_number),
        "duplicates": sum(n - 1 for n in per_number.values() if n > 1),
        "refused": dict(refused),
        "lookups": lookups,
        "digest": digest(list(per_number)),
        "form": {k: v[-1] for k, v in sample.items()},
        "bodies": len({r.field("Body") for r in accepted}),
    }


class SandboxProcess:
    """The sandbox child process: its ``.env`` and commands."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--sandbox-process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = self._read()
        self.env: dict[str, str] = hello["env"]
        self.full_validation: bool = hello["full_validation"]

    @property
    def base_url(self) -> str:
        return self.env["BROADCASTER_SANDBOX_URL"]

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process stopped")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, command: str) -> dict[str, Any]:
        """``summary`` (see :func:`_summary`), ``reset`` or ``cpu``; each answer has the
        sandbox process's ``cpu_s`` and peak ``rss_mb``."""
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.write("stop\n")
                self.process.stdin.close()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def sandbox_process() -> Iterator[SandboxProcess]:
    sandbox = SandboxProcess()
    try:
        yield sandbox
    finally:
        sandbox.close()


# ---------------------------------------------------------------------------------------------
# The workspace, made and driven with the CLI


@dataclass
class Workspace:
    """A ``broadcaster init`` folder pointed at the sandbox, with the SMS target and its list."""

    root: Path
    env: dict[str, str]
    rate_note: str = ""
    imported: Measured | None = None

    def cli(self, *args: str, person: str = AUTHOR) -> Measured:
        """Run ``broadcaster ARGS`` in the workspace as ``person``: its wall time, peak RSS and
        output; a failure stops the bench."""
        started = time.perf_counter()
        process = subprocess.Popen(
            [BROADCASTER, *args],
            cwd=self.root,
            env={**self.env, "BROADCASTER_USER": person},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        watch = _RssWatch([process.pid])
        stdout, stderr = process.communicate()
        seconds = time.perf_counter() - started
        rss = watch.stop()[0]
        if process.returncode != 0:
            raise RuntimeError(
                f"broadcaster {' '.join(args)} exited {process.returncode}:\n{stderr}"
            )
        return Measured(seconds, rss, stdout)

    def json(self, *args: str, person: str = AUTHOR) -> Any:
        return json.loads(self.cli(*args, "--json", person=person).stdout)


@dataclass(frozen=True)
class Measured:
    """One CLI command: wall time, peak RSS (polled VmHWM), what it printed."""

    seconds: float
    rss_mb: float
    stdout: str


def base_env() -> dict[str, str]:
    """This environment without anything that would pick another workspace or identity."""
    env = dict(os.environ)
    for name in ("BROADCASTER_CONFIG", "BROADCASTER_USER"):
        env.pop(name, None)
    return env


@dataclass(frozen=True)
class SmsDefaults:
    """The limits a user gets without writing any."""

    rate_per_second: float | None
    concurrency: int
    max_in_flight: int

    @property
    def in_flight(self) -> int:
        """Sends one worker keeps in flight to one SMS target."""
        return min(self.concurrency, self.max_in_flight)


def sms_defaults() -> SmsDefaults:
    """The SMS adapter's default rate and concurrency, and the worker's ``max_in_flight``."""
    from broadcaster.channels.registry import default_registry
    from broadcaster.config import QueueSettings

    adapter = default_registry().adapter_class("sms")
    return SmsDefaults(
        adapter.default_rate_per_second,
        adapter.default_concurrency,
        QueueSettings().max_in_flight,
    )


def sms_target_block() -> tuple[str, str]:
    """The target a user writes (list, sender, account references), and why a rate was added.

    The one key beyond that: when the adapter's default rate limit is below what the 400
    messages/s target needs (with room to spare), the target gets ``rate_per_second`` high
    enough not to be what is measured — as a municipality does whose Twilio account has the
    throughput it pays for.
    """
    rate = sms_defaults().rate_per_second
    lines = [
        "[[targets]]",
        f'id = "{TARGET_ID}"',
        'channel = "sms"',
        'organisation = "borgholm"',
        f'list = "{LIST_NAME}"',
        f'sender = "{SENDER}"',
        'account_sid = "env:TWILIO_ACCOUNT_SID"',
        'auth_token = "env:TWILIO_AUTH_TOKEN"',
    ]
    note = ""
    if rate is not None and rate < 2 * TARGET_MSGS_PER_S:
        lines.append(f"rate_per_second = {BENCH_RATE_PER_SECOND:g}")
        note = (
            f"rate_per_second raised to {BENCH_RATE_PER_SECOND:g} for this target: the "
            f"adapter's default of {rate:g}/s would cap it below the {TARGET_MSGS_PER_S:.0f} "
            "msg/s target, and the bench measures broadcaster, not the account's throughput"
        )
    return "\n".join(lines) + "\n", note


def make_workspace(folder: Path, sandbox: SandboxProcess, count: int) -> Workspace:
    """``broadcaster init``, the sandbox's .env, the SMS target, ``lists import`` of N numbers."""
    root = folder / "ws"
    ws = Workspace(root=folder, env=base_env())
    ws.cli("init", str(root))
    ws.root = root
    config = root / "broadcaster.toml"
    block, ws.rate_note = sms_target_block()
    config.write_text(config.read_text(encoding="utf-8") + "\n" + block, encoding="utf-8")
    env_file = root / ".env"
    lines = [env_file.read_text(encoding="utf-8").rstrip("\n"), "", "# the bench's sandbox"]
    lines += [f"{key}={value}" for key, value in sandbox.env.items()]
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    csv = folder / "invanare.csv"
    with csv.open("w", encoding="utf-8") as out:  # as a municipality's export looks: national
        out.write("nummer;namn\n")
        for n in range(count):
            out.write(f"0{FIRST_NUMBER + n};\n")
    ws.imported = ws.cli(
        "lists", "import", LIST_NAME, str(csv), "--organisation", "borgholm", "--json"
    )
    report = json.loads(ws.imported.stdout)
    if report["imported"] != count or report["skipped"]:
        raise RuntimeError(f"lists import: {report['imported']} imported, {report['skipped']!r}")
    return ws


def approved_announcement(ws: Workspace) -> int:
    """Draft to the SMS target, submit, two approvals (as ``broadcaster demo`` does)."""
    draft = ws.json("draft", "--title", TITLE, "--body", BODY, "--to", TARGET_ID)
    announcement = int(draft["id"])
    ws.cli("submit", str(announcement))
    for person in APPROVERS:
        ws.cli("approve", str(announcement), person=person)
    return announcement


# ---------------------------------------------------------------------------------------------
# Workers


@dataclass
class WorkerRun:
    """One end-to-end run: dispatch with ``send``, drain with ``workers`` processes."""

    workers: int
    count: int
    dispatch_s: float
    dispatch_rss_mb: float
    drain_s: float
    rss_mb: list[float]
    cpu_s: list[float]
    in_flight: int
    sandbox_cpu_s: float
    load: float
    sandbox: dict[str, Any]
    imported: Measured | None
    rate_note: str
    profiles: list[str] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return self.dispatch_s + self.drain_s

    @property
    def per_s(self) -> float:
        """Messages per second end to end: from ``send`` to the last worker's exit."""
        return self.count / self.wall_s

    @property
    def drain_per_s(self) -> float:
        return self.count / self.drain_s

    @property
    def peak_rss_mb(self) -> float:
        return max(self.rss_mb)

    @property
    def worker_ms(self) -> float:
        """Worker CPU time per message (all workers, start-up included)."""
        return sum(self.cpu_s) / self.count * 1000

    @property
    def sandbox_ms(self) -> float:
        return self.sandbox_cpu_s / self.count * 1000


class _RssWatch:
    """Polls the peak RSS (VmHWM) of processes while they run; VmHWM only grows, so the last
    reading before exit is within one poll interval of the true peak."""

    def __init__(self, pids: Sequence[int], interval: float = 0.1) -> None:
        self.peaks = dict.fromkeys(pids, 0)
        self._interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            for pid in self.peaks:
                self.peaks[pid] = max(self.peaks[pid], peak_rss_kb(pid))

    def stop(self) -> list[float]:
        self._done.set()
        self._thread.join()
        return [kb / 1024 for kb in self.peaks.values()]


@dataclass(frozen=True)
class Drain:
    """The workers' wall time, peak RSS (MB) and CPU time (s) each."""

    wall_s: float
    rss_mb: list[float]
    cpu_s: list[float]


def run_workers(ws: Workspace, count: int, folder: Path, profile: Path | None) -> Drain:
    """``broadcaster worker --until-idle`` x ``count``, started together, until all exit."""
    env = {**ws.env, "BROADCASTER_USER": AUTHOR}
    logs = [folder / f"worker-{n}.log" for n in range(count)]
    started = time.perf_counter()
    processes = []
    for n, log in enumerate(logs):
        argv = [BROADCASTER, "worker", "--until-idle"]
        if profile is not None:
            argv = [sys.executable, __file__, "--profiled-worker", str(profile / f"w{count}-{n}")]
        with log.open("w") as err:
            processes.append(
                subprocess.Popen(argv, cwd=ws.root, env=env, stdout=subprocess.DEVNULL, stderr=err)
            )
    watch = _RssWatch([p.pid for p in processes])
    codes, cpu = [], []
    for process in processes:
        # wait4, not wait: the child's own CPU time comes with it.
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        codes.append(process.returncode)
        cpu.append(usage.ru_utime + usage.ru_stime)
    elapsed = time.perf_counter() - started
    rss = watch.stop()
    if any(codes):
        tails = "\n".join(log.read_text()[-2000:] for log in logs)
        raise RuntimeError(f"a worker exited {codes}:\n{tails}")
    return Drain(elapsed, rss, cpu)


@dataclass
class Prepared:
    """A workspace with its list imported and an approved announcement, not yet sent."""

    ws: Workspace
    announcement: int
    folder: Path
    #: The create request's fields but ``To``, as the adapter will send them: the text from
    #: ``broadcaster preview``, the sender and the target's default validity period.
    form: dict[str, str]


def prepare(sandbox: SandboxProcess, folder: Path, count: int, workers: int) -> Prepared:
    """A fresh workspace with ``count`` numbers and an approved announcement to them."""
    from broadcaster.config import SmsTarget

    run_folder = folder / f"workers-{workers}"
    run_folder.mkdir()
    ws = make_workspace(run_folder, sandbox, count)
    announcement = approved_announcement(ws)
    preview = ws.json("preview", str(announcement))
    (target,) = [t for t in preview["targets"] if t["target"] == TARGET_ID]
    validity = SmsTarget.model_fields["validity_period"].default
    form = {"Body": target["text"], "From": SENDER, "ValidityPeriod": str(validity)}
    return Prepared(ws, announcement, run_folder, form)


def bench_workers(
    sandbox: SandboxProcess, ready: Prepared, count: int, workers: int, profile: Path | None
) -> WorkerRun:
    """Send; drain; check the sandbox got each number once, with the expected request."""
    ws = ready.ws
    sandbox.ask("reset")
    before = load()
    send = ws.cli("send", str(ready.announcement))
    sandbox_cpu = sandbox.ask("cpu")["cpu_s"]
    drain = run_workers(ws, workers, ready.folder, profile)
    summary = sandbox.ask("summary")
    status = ws.json("status", str(ready.announcement))
    run = WorkerRun(
        workers=workers,
        count=count,
        dispatch_s=send.seconds,
        dispatch_rss_mb=send.rss_mb,
        drain_s=drain.wall_s,
        rss_mb=drain.rss_mb,
        cpu_s=drain.cpu_s,
        in_flight=sms_defaults().in_flight * workers,
        sandbox_cpu_s=summary["cpu_s"] - sandbox_cpu,
        load=max(before, load()),
        sandbox=summary,
        imported=ws.imported,
        rate_note=ws.rate_note,
    )
    check_exactly_once(run, numbers(count), status)
    if summary["form"] != ready.form:  # else the ceiling would not post the same requests
        raise RuntimeError(f"the workers sent {summary['form']!r}, not {ready.form!r}")
    if profile is not None:
        run.profiles = [str(profile / f"w{workers}-{n}") for n in range(workers)]
    return run


def check_exactly_once(run: WorkerRun, expected: Sequence[str], status: dict[str, Any]) -> None:
    """Every number got exactly one message, and the announcement says so."""
    s = run.sandbox
    problems = []
    if s["created"] != len(expected) or s["numbers"] != len(expected) or s["duplicates"]:
        problems.append(
            f"{s['created']} messages to {s['numbers']} numbers ({s['duplicates']} duplicates)"
        )
    if s["digest"] != digest(expected):
        problems.append("the numbers messaged are not the list's")
    if s["refused"]:
        problems.append(f"requests refused: {s['refused']}")
    if status.get("state") != "sent":
        problems.append(f"announcement {status.get('state')}")
    if problems:
        raise RuntimeError(f"{run.workers} worker(s): " + "; ".join(problems))


# ---------------------------------------------------------------------------------------------
# (a) The ceiling: a bare asynchronous loop posting the same requests


@dataclass(frozen=True)
class Loop:
    """One bare loop: creates posted, rate, CPU time per message (client, sandbox)."""

    posts: int
    per_s: float
    client_ms: float
    sandbox_ms: float


@dataclass(frozen=True)
class Ceiling:
    """The bare loops: aiohttp just before and just after the workers' run (the machine's load
    changes), httpx once; the ceiling is the faster client (a slow one is no ceiling)."""

    in_flight: int
    aiohttp: list[Loop]
    httpx: Loop
    loads: list[float]

    @property
    def aiohttp_per_s(self) -> float:
        return statistics.mean(loop.per_s for loop in self.aiohttp)

    @property
    def best(self) -> float:
        return max(self.httpx.per_s, self.aiohttp_per_s)

    @property
    def cpu_ms(self) -> float:
        """CPU time per message of the aiohttp loop and the sandbox together."""
        return statistics.mean(loop.client_ms + loop.sandbox_ms for loop in self.aiohttp)


def bare_loop(
    sandbox: SandboxProcess, client: str, form: dict[str, str], count: int, in_flight: int
) -> Loop:
    """``in_flight`` coroutines of ``client`` (httpx or aiohttp) posting ``count`` creates."""
    env = sandbox.env
    url = (
        f"{env['BROADCASTER_TWILIO_API_URL']}/2010-04-01/Accounts/"
        f"{env['TWILIO_ACCOUNT_SID']}/Messages.json"
    )
    auth = (env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"])
    post_all = _httpx_loop if client == "httpx" else _aiohttp_loop
    sandbox_cpu = sandbox.ask("reset")["cpu_s"]
    cpu = time.process_time()
    elapsed = asyncio.run(post_all(url, auth, form, numbers(count), in_flight))
    cpu = time.process_time() - cpu
    summary = sandbox.ask("summary")
    if summary["created"] != count or summary["duplicates"] or summary["refused"]:
        raise RuntimeError(f"ceiling ({client}): {summary['created']} of {count} created")
    return Loop(
        posts=count,
        per_s=count / elapsed,
        client_ms=cpu / count * 1000,
        sandbox_ms=(summary["cpu_s"] - sandbox_cpu) / count * 1000,
    )


def bracketed(
    sandbox: SandboxProcess, ready: Prepared, count: int, workers: int, profile: Path | None
) -> tuple[WorkerRun, Ceiling]:
    """The workers' run between two runs of the aiohttp loop (the machine's load changes),
    then the httpx loop."""
    in_flight = sms_defaults().in_flight * workers
    posts = min(count, CEILING_MAX)
    loads = [load()]
    aiohttp = [bare_loop(sandbox, "aiohttp", ready.form, posts, in_flight)]
    run = bench_workers(sandbox, ready, count, workers, profile)
    loads.append(load())
    aiohttp.append(bare_loop(sandbox, "aiohttp", ready.form, posts, in_flight))
    loads.append(load())
    httpx = bare_loop(sandbox, "httpx", ready.form, min(count, CEILING_HTTPX_MAX), in_flight)
    return run, Ceiling(in_flight, aiohttp, httpx, loads)


async def _httpx_loop(
    url: str, auth: tuple[str, str], form: dict[str, str], to: list[str], in_flight: int
) -> float:
    import httpx

    # Idle connections are dropped before the sandbox's 5 s keep-alive ends: httpx's default is
    # the same 5 s, and a request written as the server closes its connection fails.
    limits = httpx.Limits(
        max_connections=in_flight, max_keepalive_connections=in_flight, keepalive_expiry=2.0
    )
    pending = iter(to)
    async with httpx.AsyncClient(auth=auth, limits=limits, timeout=30.0) as client:

        async def poster() -> None:
            for number in pending:
                answer = await client.post(url, data={**form, "To": number})
                if answer.status_code != 201:
                    raise RuntimeError(f"ceiling: HTTP {answer.status_code}: {answer.text}")

        started = time.perf_counter()
        await asyncio.gather(*(poster() for _ in range(in_flight)))
        return time.perf_counter() - started


async def _aiohttp_loop(
    url: str, auth: tuple[str, str], form: dict[str, str], to: list[str], in_flight: int
) -> float:
    import base64

    import aiohttp

    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    pending = iter(to)
    connector = aiohttp.TCPConnector(limit=in_flight)
    timeout = aiohttp.ClientTimeout(total=30.0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def poster() -> None:
            for number in pending:
                async with session.post(url, data={**form, "To": number}, headers=headers) as r:
                    text = await r.text()
                    if r.status != 201:
                        raise RuntimeError(f"ceiling: HTTP {r.status}: {text}")

        started = time.perf_counter()
        await asyncio.gather(*(poster() for _ in range(in_flight)))
        return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# (b) Apprise, the usual way: one twilio:// URL carrying the list


def bench_apprise(sandbox: SandboxProcess, count: int) -> float:
    """Messages/s of one ``Apprise.notify`` to a ``twilio://`` URL with ``count`` numbers
    (nan when Apprise is not installed)."""
    try:
        import apprise
        from apprise.plugins.twilio import NotifyTwilio
    except ImportError:
        return math.nan
    sandbox.ask("reset")
    env = sandbox.env
    # Apprise has no setting for the API host: its plugin formats this class attribute.
    NotifyTwilio.notify_sms_url = (
        f"{env['BROADCASTER_TWILIO_API_URL']}/2010-04-01/Accounts/{{sid}}/Messages.json"
    )
    to = numbers(count, APPRISE_FIRST_NUMBER)
    url = (
        f"twilio://{env['TWILIO_ACCOUNT_SID']}:{env['TWILIO_AUTH_TOKEN']}@{APPRISE_SOURCE}/"
        + "/".join(number.lstrip("+") for number in to)
    )
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise RuntimeError("Apprise refused the twilio:// URL")
    started = time.perf_counter()
    ok = notifier.notify(title=TITLE, body=BODY)
    elapsed = time.perf_counter() - started
    summary = sandbox.ask("summary")
    if not ok or summary["created"] != count or summary["digest"] != digest(to):
        raise RuntimeError(f"Apprise: notify {ok}, {summary['created']} of {count} created")
    return count / elapsed


def apprise_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("apprise")
    except PackageNotFoundError:
        return "(not installed: pip install -e '.[bench]')"


# ---------------------------------------------------------------------------------------------
# Profiling a worker (--profile DIR)


def profiled_worker(prefix: str) -> None:
    """``--profiled-worker PREFIX``: ``broadcaster worker --until-idle`` with cProfile in every
    thread (the event loop, and the threads that run the database calls), measuring each
    thread's CPU time; writes ``PREFIX-main.prof`` and ``PREFIX-threadN.prof``."""
    import cProfile

    profiles: list[cProfile.Profile] = []

    def start(frame: Any, event: str, arg: Any) -> None:  # the first event in a new thread
        sys.setprofile(None)
        profile = cProfile.Profile(time.thread_time)
        profiles.append(profile)
        profile.enable()

    threading.setprofile(start)
    main_profile = cProfile.Profile(time.thread_time)
    sys.argv = ["broadcaster", "worker", "--until-idle"]
    from broadcaster.__main__ import main as cli

    main_profile.enable()
    try:
        cli()
    finally:
        main_profile.disable()
        main_profile.dump_stats(f"{prefix}-main.prof")
        for n, profile in enumerate(profiles):
            profile.dump_stats(f"{prefix}-thread{n}.prof")


_GROUPS = (
    ("broadcaster/", "broadcaster"),
    ("twilio/", "twilio SDK"),
    ("aiohttp", "aiohttp"),
    ("yarl", "aiohttp"),
    ("multidict", "aiohttp"),
    ("urllib/", "urllib (form encoding)"),
    ("email/", "email (date parsing)"),
    ("asyncio/", "asyncio"),
    ("sqlalchemy", "SQLAlchemy"),
    ("sqlite3", "sqlite3"),
    ("concurrent/", "threads"),
    ("threading", "threads"),
)


def _group(function: tuple[str, int, str]) -> str:
    path, _, name = function
    for needle, group in _GROUPS:
        if needle in path:
            return group
    if path == "~":
        if "sqlite3" in name:
            return "sqlite3"
        if any(word in name for word in ("marshal", "compile", "exec", "__build_class__")):
            return "imports"
        return "builtins"
    return "imports" if "<frozen" in path else "other"


def print_profile(prefix: str) -> None:
    """CPU time of one profiled worker by package: the event loop's thread, then the others."""
    import glob
    import pstats

    for label, pattern in (("event loop", "-main.prof"), ("database threads", "-thread*.prof")):
        files = sorted(glob.glob(prefix + pattern))
        if not files:
            continue
        stats = pstats.Stats(*files)
        totals: Counter[str] = Counter()
        for function, (_, _, own, _, callers) in stats.stats.items():  # type: ignore[attr-defined]
            group = _group(function)
            if function[0] != "~" or not callers:
                totals[group] += own
                continue
            # A built-in (isinstance, dict.get, socket.send ...) counts for whoever called it.
            for caller, (_, _, caller_own, _) in callers.items():
                called_by = _group(caller)
                totals[group if caller[0] == "~" else called_by] += caller_own
        total = sum(totals.values())
        print(f"  {label}: {total:.2f} s CPU (profiled: slower than unprofiled)")
        for group, seconds in totals.most_common(9):
            print(f"    {group:<34} {seconds:6.2f} s {seconds / total:6.1%}")


# ---------------------------------------------------------------------------------------------
# Report


def mark(value: float, target: float, *, at_most: bool = False) -> str:
    if math.isnan(value):
        return "n/a"
    return "✓" if (value <= target if at_most else value >= target) else "✗"


def report_run(run: WorkerRun) -> None:
    s = run.sandbox
    rss = ", ".join(f"{mb:.0f}" for mb in run.rss_mb)
    print(
        f"\n{run.workers} worker process(es), {run.in_flight} requests in flight, "
        f"{run.count:,} recipients (load average {run.load:.1f})"
    )
    print(
        f"  broadcaster send (dispatch)   {run.dispatch_s:8.2f} s     target < "
        f"{TARGET_DISPATCH_S:g} s {mark(run.dispatch_s, TARGET_DISPATCH_S, at_most=True)} "
        f"(the whole command; peak RSS {run.dispatch_rss_mb:.0f} MB)"
    )
    print(f"  workers until idle            {run.drain_s:8.2f} s     {run.drain_per_s:,.0f} msg/s")
    print(
        f"  end to end                    {run.wall_s:8.2f} s     {run.per_s:,.0f} msg/s   "
        f"target ≥ {TARGET_MSGS_PER_S:.0f} {mark(run.per_s, TARGET_MSGS_PER_S)}"
    )
    print(
        f"  peak RSS per worker           {rss:>8} MB    max {run.peak_rss_mb:.0f} MB, "
        f"sum {sum(run.rss_mb):.0f} MB; target ≤ {TARGET_RSS_MB:.0f} MB per worker "
        f"{mark(run.peak_rss_mb, TARGET_RSS_MB, at_most=True)}"
    )
    print(
        f"  CPU per message               {run.worker_ms:8.2f} ms    workers (start-up "
        f"included); sandbox {run.sandbox_ms:.2f} ms"
    )
    print(
        f"  sandbox record: {s['created']:,} messages created, to {s['numbers']:,} numbers, "
        f"{s['duplicates']} duplicates, {s['lookups']} lookups; exactly once ✓"
    )
    for prefix in run.profiles:
        print(f"  profile of {Path(prefix).name} ({prefix}-*.prof):")
        print_profile(prefix)


def report_peers(main_run: WorkerRun, ceiling: Ceiling, apprise_rate: float, n: int) -> None:
    ratio_ceiling = main_run.per_s / ceiling.best
    ratio_apprise = main_run.per_s / apprise_rate
    broadcaster_ms = main_run.worker_ms + main_run.sandbox_ms
    print(
        f"\npeers on the same sandbox; broadcaster = {main_run.workers} worker "
        f"({main_run.per_s:,.0f} msg/s end to end)"
    )
    print(f"  (a) ceiling: bare loops, {ceiling.in_flight} in flight")
    loops = [("aiohttp, before", ceiling.aiohttp[0]), ("aiohttp, after", ceiling.aiohttp[-1])]
    for (name, loop), average in zip(
        [*loops, ("httpx", ceiling.httpx)], ceiling.loads, strict=True
    ):
        print(
            f"      {name:<16} {loop.per_s:6,.0f} msg/s  {loop.posts:,} creates; CPU per "
            f"message: client {loop.client_ms:.2f} ms, sandbox {loop.sandbox_ms:.2f} ms "
            f"(load {average:.1f})"
        )
    print(
        f"      broadcaster / the faster  {ratio_ceiling:.2f}x   target ≥ {TARGET_VS_CEILING} "
        f"{mark(ratio_ceiling, TARGET_VS_CEILING)}"
    )
    print(
        f"      CPU per message, client and sandbox: bare aiohttp {ceiling.cpu_ms:.2f} ms, "
        f"broadcaster {broadcaster_ms:.2f} ms: {ceiling.cpu_ms / broadcaster_ms:.2f}x, the "
        "ratio where CPU is the limit"
    )
    print(
        f"  (b) Apprise {apprise_version()}: one twilio:// URL, {n} recipients "
        f"{apprise_rate:8,.1f} msg/s   broadcaster {ratio_apprise:,.0f}x, target ≥ "
        f"{TARGET_VS_APPRISE:.0f}x {mark(ratio_apprise, TARGET_VS_APPRISE)}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="SMS fan-out through broadcaster's CLI and workers, against peers."
    )
    parser.add_argument("--recipients", type=int, default=None, help=f"default {N:,}")
    parser.add_argument("--large", action="store_true", help=f"{N_LARGE:,} recipients, 1 worker")
    parser.add_argument("--quick", action="store_true", help="one worker; Apprise to 10")
    parser.add_argument("--workers", default=None, help="worker counts to run, e.g. 1,2")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR")
    args = parser.parse_args(argv)
    count = args.recipients or (N_LARGE if args.large else N)
    default_workers = "1" if (args.quick or args.large) else "1,2"
    worker_counts = [int(w) for w in (args.workers or default_workers).split(",")]
    main_workers = 1 if 1 in worker_counts else worker_counts[0]
    apprise_count = min(10 if args.quick else APPRISE_RECIPIENTS, count)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)

    runs: list[WorkerRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-sms-") as name, sandbox_process() as sandbox:
        folder = Path(name)
        validation = "full schema" if sandbox.full_validation else "structural checks only"
        print(
            f"sandbox at {sandbox.base_url}: {LATENCY_S * 1000:.0f} ms latency on every Twilio "
            f"request; create requests validated ({validation}); {os.cpu_count()} cores",
            flush=True,
        )
        ceiling = None
        for workers in worker_counts:
            ready = prepare(sandbox, folder, count, workers)
            if workers == main_workers:
                run, ceiling = bracketed(sandbox, ready, count, workers, args.profile)
            else:
                run = bench_workers(sandbox, ready, count, workers, args.profile)
            runs.append(run)
            print(
                f"{workers} worker(s): {run.per_s:,.0f} msg/s end to end, "
                f"send {run.dispatch_s:.2f} s",
                flush=True,
            )
        assert ceiling is not None
        print(
            f"ceiling: aiohttp {ceiling.aiohttp_per_s:,.0f} msg/s, "
            f"httpx {ceiling.httpx.per_s:,.0f} msg/s",
            flush=True,
        )
        apprise_rate = bench_apprise(sandbox, apprise_count)
        print(f"Apprise: {apprise_rate:,.1f} msg/s", flush=True)
        sandbox_rss = sandbox.ask("summary")["rss_mb"]

    main_run = next(r for r in runs if r.workers == main_workers)
    defaults = sms_defaults()
    rate = "none" if defaults.rate_per_second is None else f"{defaults.rate_per_second:g}/s"
    print(
        f"\nSMS target at the adapter's defaults: concurrency {defaults.concurrency} per "
        f"worker, max_in_flight {defaults.max_in_flight}, default rate limit {rate}"
    )
    if main_run.rate_note:
        print(f"  {main_run.rate_note}")
    if main_run.imported is not None:
        print(
            f"  `broadcaster lists import` of {count:,} numbers: "
            f"{main_run.imported.seconds:.2f} s, peak RSS {main_run.imported.rss_mb:.0f} MB"
        )
    print(f"  each create request: {', '.join(sorted(main_run.sandbox['form']))}, To")
    for run in runs:
        report_run(run)
    report_peers(main_run, ceiling, apprise_rate, apprise_count)
    print(f"  (the sandbox process peaked at {sandbox_rss:.0f} MB; not counted above)")
    busiest = max([*(run.load for run in runs), *ceiling.loads])
    if busiest > (os.cpu_count() or 1):
        print(
            f"note: other work kept the machine busy (load average up to {busiest:.1f} on "
            f"{os.cpu_count()} cores): the rates above are lower and less comparable than on an "
            "idle machine; CPU time per message is not"
        )
    ratio_ceiling = main_run.per_s / ceiling.best
    ratio_apprise = main_run.per_s / apprise_rate
    print(
        f"RESULT recipients={count} msgs_per_s={main_run.per_s:.0f} "
        f"peak_rss_mb={main_run.peak_rss_mb:.0f} ceiling_msgs_per_s={ceiling.best:.0f} "
        f"ratio_vs_ceiling={ratio_ceiling:.2f} apprise_msgs_per_s={apprise_rate:.1f} "
        f"ratio_vs_apprise={ratio_apprise:.0f} dispatch_s={main_run.dispatch_s:.2f}"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--sandbox-process"]:
        sandbox_main()
    elif len(sys.argv) == 3 and sys.argv[1] == "--profiled-worker":
        profiled_worker(sys.argv[2])
    else:
        main()
