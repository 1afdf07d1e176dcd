"""Running real worker processes in tests: start, watch, signal, always clean up.

``Workers`` starts ``python -m resque work --app workerapp`` in its own session (so the
worker and its forked child can be killed together), with output captured to a file, and
kills whatever is left when the test ends. Every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import redis

from resque import __version__, layout
from support.replies import bytes_list, texts

TESTS = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"  # job modules, loaded by name: --app workerapp
PYTHON = sys.executable
HOST = socket.gethostname()
TITLE_PREFIX = f"resque-{__version__}: "
T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], timeout: float = 15.0, what: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.01)


def notes(r: redis.Redis) -> list[str]:
    """What the workerapp jobs logged, in order."""
    return texts(r.lrange("workerapp:log", 0, -1))


def failures(r: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(item) for item in r.lrange("resque:failed", 0, -1)]


def queued(r: redis.Redis, queue: str) -> list[bytes]:
    return bytes_list(r.lrange(f"resque:queue:{queue}", 0, -1))


def push(r: redis.Redis, queue: str, job: str, *args: Any) -> None:
    """Queue a job exactly as Ruby does (SADD + RPUSH, no wake-up message)."""
    r.sadd("resque:queues", queue)
    r.rpush(f"resque:queue:{queue}", layout.encode_job(job, list(args)))


def title_of(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def blocked_opening_a_fifo(pid: int) -> bool:
    """Is the process asleep in the kernel until a FIFO it opens gets its other end? (Linux
    names the function a process sleeps in, /proc/<pid>/wchan: fifo_open, wait_for_partner.)"""
    try:
        where = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False
    return where in ("wait_for_partner", "fifo_open")


def read_fifo(path: Path, timeout: float = 10.0) -> str:
    """All a FIFO's writer writes until it closes; "" at once if it has no writer (it died).
    Opened without blocking, so a dead writer fails the test instead of hanging it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            select.select([fd], [], [], 0.1)
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                continue
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


class WorkerProcess:
    def __init__(self, popen: subprocess.Popen[bytes], queues: str, output: Path) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.queues = queues
        self.output_path = output

    @property
    def id(self) -> str:
        """``host:pid:queues`` as the worker writes it (``!exclusions`` left out)."""
        kept = [q for q in self.queues.split(",") if not q.startswith("!")]
        return f"{HOST}:{self.pid}:{','.join(kept)}"

    def title(self) -> str:
        return title_of(self.pid)

    def wait_title(self, start: str, timeout: float = 15.0) -> str:
        """Wait until the process title (after ``resque-<version>: ``) starts with ``start``."""
        return wait_for(
            lambda: self.title() if self.title().startswith(TITLE_PREFIX + start) else "",
            timeout,
            f"title {start!r} (now {self.title()!r}); output:\n{self.output()}",
        )

    def child_pid(self, timeout: float = 15.0) -> int:
        """The pid of the forked child, read from the parent's ``Forked <pid> at`` title."""
        match = re.search(r"Forked (\d+) at \d+$", self.wait_title("Forked ", timeout))
        assert match, self.title()
        return int(match.group(1))

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float = 10.0) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker {self.pid} still running after {timeout}s; output:\n{self.output()}"
            ) from None

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole session: the worker and any child it forked."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.popen.wait(10)


class Workers:
    """Starts worker processes for one test and kills the ones still running at the end."""

    def __init__(self, redis_url: str, directory: Path) -> None:
        self.redis_url = redis_url
        self.directory = directory
        self.started: list[WorkerProcess] = []

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RESQUE_", "QUEUE"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(APPS), env.get("PYTHONPATH")]))
        env["WORKERAPP_REDIS"] = self.redis_url
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra or {})
        return env

    def start(
        self,
        queues: str = "high,low",
        *args: str,
        env: dict[str, str] | None = None,
        interval: float = 0.2,
        queue_option: bool = True,
        app: str | None = "workerapp",
        verbose: bool = True,
    ) -> WorkerProcess:
        """``resque work --app <app> -q <queues> --interval <interval> -v <args>``."""
        command = [
            PYTHON,
            "-m",
            "resque",
            "work",
            *(["--app", app] if app else []),
            "--redis",
            self.redis_url,
            "--interval",
            str(interval),
            *(["-v"] if verbose else []),
        ]
        if queue_option:
            command += ["-q", queues]
        output = self.directory / f"worker-{len(self.started)}.log"
        with open(output, "wb") as sink:
            popen = subprocess.Popen(
                [*command, *args],
                env=self.env(env),
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = WorkerProcess(popen, queues, output)
        self.started.append(worker)
        return worker

    def run(
        self, queues: str = "high,low", *args: str, timeout: float = 20.0, **options: Any
    ) -> WorkerProcess:
        """A burst worker, run to completion; asserts it exited 0."""
        worker = self.start(queues, "--burst", *args, **options)
        code = worker.wait(timeout)
        assert code == 0, f"worker exited {code}; output:\n{worker.output()}"
        return worker

    def cleanup(self) -> None:
        for worker in self.started:
            worker.kill()
