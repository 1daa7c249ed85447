"""Headless Chromium for tests, driven over the DevTools protocol on a pipe.

Chromium's ``--remote-debugging-pipe`` reads protocol commands (JSON, each ending in a NUL byte)
on its file descriptor 3 and writes answers and events on 4, so the standard library is all it
takes: no driver, no websocket package, no port. A page is opened at a given viewport (a real
360-pixel-wide one for a phone, which a headless window cannot be made), and a test can read
what it logged, evaluate JavaScript in it, take a screenshot, and run axe-core
(``tests/vendor/axe-core``) on it.

Chromium is Debian's ``chromium`` (``.ci/run`` installs it); :func:`find_chromium` says where it
is, and :func:`require_chromium` skips a test without it, or fails it when
``BROADCASTER_REQUIRE_BROWSER=1`` (as in CI).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REQUIRE_VAR = "BROADCASTER_REQUIRE_BROWSER"
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
AXE_VERSION = "4.14.1"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
#: The WCAG 2.1 A and AA rules (axe's tags for WCAG 2.0 and 2.1, levels A and AA).
WCAG21_AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
#: Longest wait for one answer; the machine may be busy.
TIMEOUT_S = 90.0


def find_chromium() -> str | None:
    """The Chromium executable on PATH, or None."""
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


def require_chromium() -> str:
    """The Chromium executable; skips the test without one (fails it when CI requires one)."""
    found = find_chromium()
    if found is None:
        message = "needs Chromium (Debian: apt-get install chromium; .ci/run installs it)"
        if os.environ.get(REQUIRE_VAR) == "1":
            pytest.fail(f"{REQUIRE_VAR}=1 but {message}")
        pytest.skip(message)
    return found


@dataclass
class Page:
    """One open page: what it logged, and the means to look at it."""

    browser: Browser
    session: str
    #: Console messages of level error or warning, uncaught exceptions and failed loads.
    problems: list[str] = field(default_factory=list)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        answer = self.browser.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            self.session,
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise AssertionError(f"JavaScript failed: {details.get('exception', details)}")
        return answer["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the whole page (not only the viewport) to ``path``."""
        metrics = self.browser.call("Page.getLayoutMetrics", {}, self.session)
        size = metrics["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.browser.call(
            "Page.captureScreenshot",
            {"format": "png", "clip": clip, "captureBeyondViewport": True},
            self.session,
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def axe(self, tags: tuple[str, ...] = WCAG21_AA) -> dict[str, Any]:
        """Run axe-core's rules with these tags: ``violations`` (id, impact, help, targets)."""
        source = AXE.read_bytes()
        assert hashlib.sha256(source).hexdigest() == AXE_SHA256, f"{AXE} is not axe {AXE_VERSION}"
        self.evaluate(source.decode("utf-8") + "\n;true")
        options = json.dumps({"runOnly": {"type": "tag", "values": list(tags)}})
        result = self.evaluate(
            f"axe.run(document, {options}).then(r => ({{"
            "version: axe.version, passes: r.passes.length, incomplete: r.incomplete.length,"
            "violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " targets: v.nodes.map(n => n.target.join(' '))}))}))"
        )
        assert isinstance(result, dict)
        return result


class Browser:
    """A headless Chromium process; :meth:`open` loads a page at a viewport size."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_browser_read, self._to_browser = map(_above_4, os.pipe())
        self._from_browser, from_browser_write = map(_above_4, os.pipe())

        def wire_pipes() -> None:  # in the child: the protocol's descriptors are 3 and 4
            os.dup2(to_browser_read, 3)
            os.dup2(from_browser_write, 4)

        self.process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",  # as root in a container, Chromium's sandbox cannot start
                "--disable-gpu",
                "--disable-extensions",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Only dup2 runs between fork and exec; the descriptors it makes are inheritable and
            # every other one of this process is close-on-exec (PEP 446), so none leaks.
            preexec_fn=wire_pipes,
            close_fds=False,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    def close(self) -> None:
        """Stop the browser and release the pipes."""
        with contextlib.suppress(OSError):
            self._send({"id": self._id(), "method": "Browser.close"})
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)

    def open(self, url: str, width: int, height: int, *, mobile: bool = False) -> Page:
        """A new tab at ``width`` x ``height`` CSS pixels, with ``url`` loaded."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", {}, session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
            session,
        )
        self._events.clear()
        self.call("Page.navigate", {"url": url}, session)
        self._wait_for("Page.loadEventFired", session)
        # Anything logged while loading, and a moment after for late messages.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            self._read(deadline - time.monotonic())
        page.problems.extend(_problems(e) for e in self._events if _problems(e))
        self._events.clear()
        return page

    def call(self, method: str, params: dict[str, Any], session: str | None = None) -> Any:
        """Send one command and wait for its answer (events meanwhile are kept)."""
        number = self._id()
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._send(message)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            for index, event in enumerate(self._events):
                if event.get("id") == number:
                    del self._events[index]
                    if "error" in event:
                        raise AssertionError(f"{method}: {event['error']}")
                    return event.get("result", {})
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"Chromium did not answer {method} in {TIMEOUT_S:g} s"
            self._read(remaining)

    def _wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not any(
            e.get("method") == method and e.get("sessionId") == session for e in self._events
        ):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"Chromium sent no {method} in {TIMEOUT_S:g} s"
            self._read(remaining)

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode("utf-8") + b"\0"
        while data:
            data = data[os.write(self._to_browser, data) :]

    def _read(self, timeout: float) -> None:
        """Read what has arrived within ``timeout`` seconds into the list of messages."""
        ready, _, _ = select.select([self._from_browser], [], [], max(0.0, timeout))
        if not ready:
            return
        chunk = os.read(self._from_browser, 1 << 20)
        assert chunk, f"Chromium stopped (exit status {self.process.poll()})"
        self._buffer += chunk
        *messages, self._buffer = self._buffer.split(b"\0")
        self._events.extend(json.loads(m) for m in messages if m)


def _above_4(fd: int) -> int:
    """``fd`` moved to a number above 4 (close-on-exec), so wiring 3 and 4 cannot clobber it."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


def _problems(event: dict[str, Any]) -> str:
    """What a protocol event says went wrong in the page, or "" when nothing did."""
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning"):
        values = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
        return f"console.{params['type']}: {' '.join(values)}"
    if method == "Runtime.exceptionThrown":
        return f"exception: {params.get('exceptionDetails', {}).get('text', '')}"
    if method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
        entry = params["entry"]
        return f"{entry.get('source')} {entry['level']}: {entry.get('text')} {entry.get('url', '')}"
    if method == "Network.loadingFailed":
        return f"failed to load: {params.get('errorText')} ({params.get('type')})"
    return ""


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[Browser]:
    """A running headless Chromium (skips, or fails in CI, when there is none)."""
    browser = Browser(require_chromium(), profile)
    try:
        yield browser
    finally:
        browser.close()
