"""The website channel. ``static`` mode: a crisis site written into a folder (DESIGN §6).

In the seed incident one municipality's website was down for days; a static folder can be served
by any web server or copied to a backup host (``publish_command``), and a delivery to it is
retried until it works while every other channel goes out at once.

A delivery has up to two steps, and its outcome covers both (DESIGN §7): the files (an upsert by
uid and revision, switched at once; see :mod:`~broadcaster.channels.static_site`), then the
publish step, run at most once per delivery by a process of its own that records the result (see
:mod:`~broadcaster.channels.publish_step`). ``send`` resumes at the first step not known to be
done; ``verify`` answers yes only when every step is.

The publish step's exit status and the tail of its output stay with the delivery: in the
receipt's data when it succeeded (``publish_exit_code``, ``publish_output``,
``publish_finished``), in the error (its ``last_error``) when it failed; masked as
:mod:`~broadcaster.channels.publish_output` says.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import threading
from pathlib import Path
from typing import ClassVar

from broadcaster.channels.base import Channel, ChannelContext, Receipt, Rendered
from broadcaster.channels.publish_output import KEPT_BYTES, kept_output
from broadcaster.channels.publish_step import PublishSpec, Stamp, StepRunning, settled_stamp
from broadcaster.channels.static_site import Built, StaticSite, entry_from_message, page_path
from broadcaster.config import TargetConfig, WebsiteStaticTarget
from broadcaster.errors import InputError, PermanentError, RenderError, TransientError
from broadcaster.rendering.message import Message
from broadcaster.rendering.readable import html_to_text

__all__ = ["WebsiteChannel"]

#: How much longer than its own limit a running publish step may hold its lock (Python starting,
#: the stamp being written) before a waiting send or verify gives up.
_STEP_GRACE_S = 5.0
#: How often a waiting send or verify looks whether the publish step has finished.
_POLL_S = 0.05
#: How many renderings send may still pick up (the worker renders a few ahead at most).
_BUILT_KEPT = 8
#: A failed publish step's output up to this many lines is its error as it is.
_SHORT_OUTPUT_LINES = 3


class WebsiteChannel(Channel):
    """Publishes announcements to a static crisis site."""

    name: ClassVar[str] = "website"
    mode: ClassVar[str | None] = "static"
    can_verify = True
    # Files are an upsert by uid and revision, and the publish step runs once per delivery key.
    blind_resend_ok = True
    # A website that is down (as in the seed) is worth retrying for a long time.
    max_attempts = 60
    max_age_seconds = 48 * 3600
    # One writer per site: the files are rebuilt as a whole (and guarded by a lock as well).
    default_concurrency = 1

    def __init__(self, target: TargetConfig, context: ChannelContext) -> None:
        super().__init__(target, context)
        if not isinstance(target, WebsiteStaticTarget):
            raise InputError(
                f"target {target.id}: website mode {getattr(target, 'mode', '?')!r} "
                "has no adapter in this version of broadcaster (static mode works)"
            )
        self.static_target = target
        self._built: dict[int, Built] = {}
        self._lock = threading.Lock()

    def call_timeout(self) -> float:
        """Room for the files, a previous publish step still running, and this one's."""
        seconds = self.call_timeout_seconds
        if self.static_target.publish_command:
            seconds += self.static_target.publish_timeout_seconds + _STEP_GRACE_S
        return seconds

    def _site(self, message: Message) -> StaticSite:
        return StaticSite(
            root=self.context.resolve_path(self.static_target.output_dir),
            organisation=message.organisation,
            renderer=self.context.renderer,
            exercise=self.context.exercise or message.exercise,
            public_url=self.static_target.public_url,
            language=message.content.language,
            timezone=self.context.timezone,
            inline_updates=self.static_target.inline_updates,
            retracted=self.static_target.retracted,
        )

    def render(self, message: Message) -> Rendered:
        """The site's files as they will be once this message is published."""
        built = self._site(message).prepare(entry_from_message(message))
        # Kept for send: the worker renders, then sends what it rendered; if the site is still
        # as it was, send switches these files rather than render them all again.
        with self._lock:
            self._built[id(built.files)] = built
            while len(self._built) > _BUILT_KEPT:
                self._built.pop(next(iter(self._built)))
        return Rendered(files=built.files)

    def readable(self, message: Message, rendered: Rendered) -> str:
        """The update's own page as a visitor reads it (banner, title, time, body, contacts)."""
        page = page_path(message.uid)
        html = (rendered.files or {}).get(page)
        if html is None:
            return super().readable(message, rendered)
        public_url = self.static_target.public_url
        base_url = f"{public_url.rstrip('/')}/{page}" if public_url else None
        return html_to_text(html, base_url=base_url)

    async def send(self, message: Message, rendered: Rendered) -> Receipt:
        """Write the site, then run ``publish_command`` (if set) unless it already ran.

        Cancelling the send (a deadline, a shutdown) leaves a running publish step to finish on
        its own; a later send or verify of the delivery waits for it.
        """
        site = self._site(message)
        with self._lock:
            built = self._built.pop(id(rendered.files), None)
        if built is not None and built.files is not rendered.files:
            built = None  # not what this adapter rendered for it
        try:
            path = await asyncio.to_thread(site.publish, entry_from_message(message), built)
        except RenderError as exc:
            raise PermanentError(self.name, f"templates fail: {exc}") from None
        except OSError as exc:
            # Disk full, permissions, a missing mount: an administrator can fix it, so retry.
            raise TransientError(self.name, f"cannot write {site.root}: {exc}") from None
        if self.static_target.publish_command:
            stamp = await self._publish(self._spec(message, site))
            return Receipt(path, _published(stamp))
        return Receipt(path)

    async def verify(self, message: Message) -> Receipt | None:
        """The receipt if every step is done: the site shows this revision and was published."""
        site = self._site(message)
        if not await asyncio.to_thread(site.has, message.uid, message.revision):
            return None
        if self.static_target.publish_command:
            stamp = await self._settled_stamp(self._spec(message, site))
            if stamp is None or not stamp.succeeded:
                return None
            return Receipt(page_path(message.uid), _published(stamp))
        return Receipt(page_path(message.uid))

    def _spec(self, message: Message, site: StaticSite) -> PublishSpec:
        return PublishSpec(
            folder=site.folders.published,
            key=message.idempotency_key,
            command=list(self.static_target.publish_command or []),
            cwd=self.context.resolve_path("."),
            timeout=self.static_target.publish_timeout_seconds,
            env={
                "BROADCASTER_DELIVERY_KEY": message.idempotency_key,
                "BROADCASTER_TARGET": self.target.id,
                "BROADCASTER_SITE_DIR": str(site.root.absolute()),
                "BROADCASTER_ANNOUNCEMENT_UID": message.uid,
                "BROADCASTER_REVISION": str(message.revision),
            },
        )

    async def _publish(self, spec: PublishSpec) -> Stamp:
        """Run the publish step unless a stamp records its success; raise if it failed."""
        done = await self._settled_stamp(spec)
        if done is not None and done.succeeded:
            return done
        try:
            status = await _run_detached(spec.argv(), spec.files.errors)
        except OSError as exc:
            raise TransientError(self.name, f"cannot start the publish step: {exc}") from None
        stamp = await self._settled_stamp(spec)
        if stamp is None:
            error = await asyncio.to_thread(_last_line, spec.files.errors)
            raise TransientError(
                self.name,
                f"the publish step stopped (status {status}) without recording an outcome: "
                f"{error or 'no error output'}",
            )
        self._raise_for(stamp)
        return stamp

    def _raise_for(self, stamp: Stamp) -> None:
        """Raise the failure a stamp records: its exit status and its output's tail, masked."""
        lines = _output(stamp).splitlines()
        output = " / ".join(lines)
        if len(lines) > _SHORT_OUTPUT_LINES:  # the last line first: it usually says what failed
            output = f"{lines[-1]} (its output's last {KEPT_BYTES} bytes: {output})"
        if stamp.timed_out:
            raise TransientError(
                self.name,
                "publish_command ran longer than publish_timeout_seconds "
                f"({self.static_target.publish_timeout_seconds:g} s) and was stopped"
                + (f"; its output ended: {output}" if output else ""),
            )
        if not stamp.succeeded:
            raise TransientError(
                self.name,
                f"publish_command exited with {stamp.exit_code}: {output or 'no output'}",
            )

    async def _settled_stamp(self, spec: PublishSpec) -> Stamp | None:
        """The delivery's stamp once no publish step of it runs (None: it never ran).

        A step that runs holds the stamp's lock; the wait is bounded by the step's own limit,
        which it enforces on its command.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + spec.timeout + _STEP_GRACE_S
        while True:
            try:
                return await asyncio.to_thread(settled_stamp, spec.files)
            except StepRunning:
                if loop.time() >= deadline:
                    raise TransientError(
                        self.name, "a previous publish of this delivery is still running"
                    ) from None
            except ValueError as exc:
                # Deleting a stamp by hand is how a person says "publish it again"; a broken one
                # must not be guessed at, as either guess could be wrong.
                raise PermanentError(
                    self.name, f"{exc}; check whether it was published, delete it, retry"
                ) from None
            except OSError as exc:
                raise TransientError(self.name, f"cannot read the publish record: {exc}") from None
            await asyncio.sleep(_POLL_S)


def _output(stamp: Stamp) -> str:
    """The tail of the command's output as kept on the delivery (the command's environment
    was the worker's: see :func:`~broadcaster.channels.publish_output.kept_output`)."""
    return kept_output(stamp.output_tail, os.environ)


def _published(stamp: Stamp) -> dict[str, str | int]:
    """What a receipt keeps of a publish step that succeeded."""
    return {
        "publish_exit_code": stamp.exit_code or 0,
        "publish_output": _output(stamp),
        "publish_finished": stamp.finished,
    }


async def _run_detached(argv: list[str], errors: Path) -> int:
    """Start ``argv`` in a session of its own and wait for its exit status.

    Cancelling the wait leaves the process running. asyncio's own subprocess transport kills its
    child when it is closed or collected (on Python 3.12+ that happens when the event loop
    closes), so a plain thread starts and reaps the process instead. The process's stdin and
    stdout are /dev/null and its stderr a file, never a pipe that dies with the worker.
    """
    status: concurrent.futures.Future[int] = concurrent.futures.Future()
    threading.Thread(
        target=_start_and_reap, args=(argv, errors, status), name="publish-step", daemon=True
    ).start()
    return await asyncio.wrap_future(status)


def _start_and_reap(argv: list[str], errors: Path, status: concurrent.futures.Future[int]) -> None:
    if not status.set_running_or_notify_cancel():
        return  # the send was cancelled before anything started
    try:
        errors.parent.mkdir(parents=True, exist_ok=True)
        with open(errors, "wb") as error_file:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=error_file,
                start_new_session=True,  # Ctrl-C or a signal to the worker's group passes it by
            )
        exit_status = process.wait()
    except Exception as exc:
        status.set_exception(exc)
    else:
        status.set_result(exit_status)


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""
