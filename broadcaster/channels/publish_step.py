"""The publish step of a static site: runs ``publish_command`` once per delivery and records it.

The website adapter starts ``python -m broadcaster.channels.publish_step SPEC`` in a session of its
own, so a worker that dies (SIGKILL, Ctrl-C) or stops waiting (a deadline, a shutdown) neither
stops a publish half-way nor loses its result. This process takes the delivery's lock, runs the
command unless a stamp records a success, and writes the stamp itself: the delivery's next owner
learns whether the step ran, and waits on the lock while it runs.

Files in the site's ``published/`` folder, named by ``h``, the SHA-256 of the delivery key:

- ``<h>.lock``: held while a publish step of the delivery runs (and briefly by readers).
- ``<h>.json``: the stamp: ``key``, ``exit_code`` (null on timeout), ``timed_out``,
  ``output_tail`` (the last 4 KB of stdout and stderr), ``started``, ``finished``.
- ``<h>.out``: the command's output while it runs; ``<h>.err``: this process's own errors.

The one gap: if this process itself dies (a power cut, the OOM killer) after the command ended
and before the stamp is renamed into place, the step ran but nothing says so, and a retry runs it
again; the window is milliseconds, and nothing in broadcaster signals this process.

Only the standard library (and broadcaster's file helpers, which use nothing else) is imported
here: the module starts once per publish and must be quick.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from broadcaster.fileio import atomic_write

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt
else:
    import fcntl

__all__ = ["MODULE", "PublishSpec", "Stamp", "StepFiles", "StepRunning", "main", "settled_stamp"]

MODULE = "broadcaster.channels.publish_step"
OUTPUT_TAIL_BYTES = 4096


class StepRunning(Exception):
    """A publish step of this delivery holds the lock: its outcome is not known yet."""


@dataclass(frozen=True, kw_only=True)
class Stamp:
    """The durable record of one run of a publish step."""

    key: str
    exit_code: int | None
    timed_out: bool
    output_tail: str
    started: str
    finished: str

    @property
    def succeeded(self) -> bool:
        """True when the command ran to the end and exited 0."""
        return self.exit_code == 0 and not self.timed_out


@dataclass(frozen=True)
class StepFiles:
    """The files of one delivery's publish step, in a site's ``published/`` folder."""

    folder: Path
    key: str

    @property
    def name(self) -> str:
        """The hash that names the files (a key may hold characters a file name cannot)."""
        return hashlib.sha256(self.key.encode("utf-8")).hexdigest()

    @property
    def lock(self) -> Path:
        """Held while the step runs."""
        return self.folder / f"{self.name}.lock"

    @property
    def stamp(self) -> Path:
        """The record of the last run."""
        return self.folder / f"{self.name}.json"

    @property
    def output(self) -> Path:
        """The command's output while it runs."""
        return self.folder / f"{self.name}.out"

    @property
    def errors(self) -> Path:
        """Where the step's own process writes its errors (a traceback, if it fails)."""
        return self.folder / f"{self.name}.err"


@dataclass(frozen=True, kw_only=True)
class PublishSpec:
    """What one publish step runs, handed to the step's process as JSON on its command line."""

    folder: Path
    key: str
    command: list[str]
    cwd: Path
    timeout: float
    env: dict[str, str] = field(default_factory=dict)

    @property
    def files(self) -> StepFiles:
        """The step's lock, stamp and output files."""
        return StepFiles(self.folder, self.key)

    def argv(self) -> list[str]:
        """The command line that runs this step in a new Python process."""
        spec = {**asdict(self), "folder": str(self.folder), "cwd": str(self.cwd)}
        return [sys.executable, "-m", MODULE, json.dumps(spec)]

    @classmethod
    def from_json(cls, text: str) -> PublishSpec:
        """The spec :meth:`argv` wrote."""
        data = json.loads(text)
        return cls(
            folder=Path(data["folder"]),
            key=str(data["key"]),
            command=[str(part) for part in data["command"]],
            cwd=Path(data["cwd"]),
            timeout=float(data["timeout"]),
            env={str(k): str(v) for k, v in data["env"].items()},
        )


def settled_stamp(files: StepFiles) -> Stamp | None:
    """The stamp of a delivery whose publish step is not running, or None if it never ran.

    Raises:
        StepRunning: A publish step of this delivery runs now; ask again later.
        ValueError: The stamp is not one this module wrote for this key.
    """
    with _locked(files.lock, wait=False):
        return _read_stamp(files)


def run_step(spec: PublishSpec) -> Stamp:
    """Run the command unless a stamp records a success already; returns the stamp."""
    files = spec.files
    with _locked(files.lock, wait=True):
        for leftover in files.folder.glob(f".{files.stamp.name}.*.tmp"):
            leftover.unlink(missing_ok=True)  # a stamp this process's predecessor never renamed
        done = _read_stamp(files)
        if done is not None and done.succeeded:
            return done
        started = _now()
        exit_code, tail = _run_command(spec, files.output)
        stamp = Stamp(
            key=spec.key,
            exit_code=exit_code,
            timed_out=exit_code is None,
            output_tail=tail,
            started=started,
            finished=_now(),
        )
        _write_stamp(files.stamp, stamp)
        files.output.unlink(missing_ok=True)
    return stamp


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m broadcaster.channels.publish_step SPEC``; 0 once a stamp exists."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: python -m {MODULE} SPEC_JSON", file=sys.stderr)
        return 2
    spec = PublishSpec.from_json(args[0])
    run_step(spec)
    spec.files.errors.unlink(missing_ok=True)  # this process's stderr: nothing went wrong
    return 0


def _run_command(spec: PublishSpec, output_path: Path) -> tuple[int | None, str]:
    """Run the command: its exit code (None when it ran too long) and its output's tail."""
    with open(output_path, "wb") as output:
        try:
            process = subprocess.Popen(
                spec.command,
                cwd=spec.cwd,
                env={**os.environ, **spec.env},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # A group of its own, so that a timeout stops everything the command started.
                start_new_session=True,
                creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
            )
        except OSError as exc:
            # Reported as a shell would: 127 for a command not found, 126 for one not runnable.
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            return code, f"cannot run {spec.command[0]}: {exc.strerror or exc}"
        try:
            exit_code: int | None = process.wait(timeout=spec.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.wait()
            exit_code = None
    return exit_code, _tail(output_path)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if sys.platform == "win32":  # pragma: no cover - no process groups to kill on Windows
        process.kill()
        return
    # Not reaped yet, so the group id is still this command's. SIGKILL, because a command that
    # outlived its limit may not answer SIGTERM; the next attempt starts it afresh.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _tail(path: Path) -> str:
    with open(path, "rb") as output:
        output.seek(max(0, output.seek(0, os.SEEK_END) - OUTPUT_TAIL_BYTES))
        return output.read().decode("utf-8", errors="replace")


def _read_stamp(files: StepFiles) -> Stamp | None:
    try:
        data: Any = json.loads(files.stamp.read_text(encoding="utf-8"))
        stamp = Stamp(**data)
    except FileNotFoundError:
        return None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{files.stamp} is not a publish record: {exc}") from None
    if stamp.key != files.key:
        raise ValueError(f"{files.stamp} records {stamp.key!r}, not {files.key!r}")
    return stamp


def _write_stamp(path: Path, stamp: Stamp) -> None:
    # Synced and renamed into place in one step, so a power cut cannot leave half a record.
    # Private (0600) like the rest of broadcaster's own files: the record names the delivery.
    atomic_write(path, json.dumps(asdict(stamp), ensure_ascii=False, indent=2), mode=0o600)


@contextlib.contextmanager
def _locked(path: Path, *, wait: bool) -> Iterator[None]:
    """Hold the exclusive lock on ``path``; without ``wait``, raise StepRunning if it is taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            handle.seek(0)
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)
            except OSError as exc:
                if wait:
                    raise
                raise StepRunning(str(path)) from exc
        else:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError as exc:  # only without wait: another process holds it
                raise StepRunning(str(path)) from exc
        yield


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


if __name__ == "__main__":
    sys.exit(main())
