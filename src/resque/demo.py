"""``resque demo``: the whole loop on a Redis of its own, in about ten seconds.

It starts its own redis-server (append-only, in its data folder), never the one
``RESQUE_REDIS`` names, unless ``--redis`` gives one, and says which it uses. It starts from
clean demo data (``--continue`` keeps the last run's), enqueues a batch of jobs on two queues
(a few fail on purpose), runs worker processes with ``resque work``, shows a progress bar while
they drain, and ends with a summary. Logs stay in the data folder.

Everything it starts, it stops, on Ctrl-C, TERM and HUP (a closed terminal) alike: workers
first (they finish with Redis), then the dashboard, then the redis-server. Its children run
in sessions of their own, so a terminal's signals reach the demo only, which stops them in
that order. On a Redis given with ``--redis`` it works in the ``resque-demo`` namespace, so
that starting clean never deletes an application's ``resque:`` keys.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import click

import resque
from resque.connection import describe
from resque.embedded import EmbeddedRedis
from resque.errors import ResqueError
from resque.facade import Resque

QUEUES = ("demo_high", "demo_low")
OWN_NAMESPACE = "resque"  # on the demo's own redis-server, as every Resque uses by default
SHARED_NAMESPACE = "resque-demo"  # on a Redis given with --redis: never an application's keys
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
WORKER_STOP_TIMEOUT = 10.0


@resque.job(queue="demo_high", name="Demo::Greet")
def greet(name: str) -> None:
    """A quick job; its name is Ruby-style, so a Ruby worker could define it too."""
    _ = f"hello, {name}"


@resque.job(queue="demo_low", name="Demo::Resize")
def resize(width: int, height: int) -> None:
    """A job that takes a little while."""
    time.sleep(0.002)
    if width <= 0 or height <= 0:
        raise ValueError(f"cannot resize to {width}x{height}")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "resque-demo"


class Stopped(BaseException):
    """A stop signal (INT, TERM, HUP) arrived; a ``BaseException`` like ``KeyboardInterrupt``,
    so that nothing between the signal and the clean-up swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class DemoOptions:
    """What ``resque demo`` was asked for (its command-line options)."""

    job_count: int = 300
    worker_count: int = 2
    fork: bool = True
    data_dir: str | None = None
    redis_url: str | None = None
    linger: float = 0.0
    keep: bool = False  # --continue: keep the last run's data and counters


def run_demo(options: DemoOptions) -> int:
    """Run the demo; the exit status: 0, 1 if a worker failed, 128 + N when signal N
    stopped it before the jobs drained."""
    demo = Demo(options)
    with demo.signals.installed():
        try:
            return demo.run()
        except Stopped as stop:
            demo.say(f"\nGot {stop}: stopping the workers, the dashboard and the redis-server.")
            return 128 + stop.signum
        except ResqueError as exc:  # no redis-server to start, a Redis that refuses us...
            demo.say(f"Error: {exc}", err=True)
            return 1
        finally:
            with _stop_signals_ignored():  # a second Ctrl-C must not cut the clean-up short
                demo.stop()


class StopSignals:
    """INT, TERM and HUP raise ``Stopped``, except inside ``held()``: there the signal waits
    until the block ends, so that a process is never started without being recorded (and
    then left running by the clean-up)."""

    def __init__(self) -> None:
        self.holding = False
        self.pending: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.holding:
            self.pending = self.pending or signum
            return
        raise Stopped(signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous = {signum: signal.signal(signum, self.handle) for signum in STOP_SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
            if self.pending is not None:
                signum, self.pending = self.pending, None
                raise Stopped(signum)


@contextlib.contextmanager
def _stop_signals_ignored() -> Iterator[None]:
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class Demo:
    """One run: the Redis, the dashboard and the workers it started, so it can stop them."""

    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.data_dir = Path(options.data_dir) if options.data_dir else default_data_dir()
        self.log_path = self.data_dir / "workers.log"
        self.server: EmbeddedRedis | None = None
        self.dashboard: Any = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.redis_url = options.redis_url or ""
        self.namespace = SHARED_NAMESPACE if options.redis_url else OWN_NAMESPACE
        self.signals = StopSignals()

    def say(self, message: str = "", newline: bool = True, err: bool = False) -> None:
        """Print, unless the terminal is gone (after a HUP, writing to it fails)."""
        with contextlib.suppress(OSError):
            click.echo(message, nl=newline, err=err)

    # --- the run ------------------------------------------------------------------------

    def run(self) -> int:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        client = self._connect()
        self._start_clean(client)
        self._start_dashboard()
        before = _counts(client)
        self._enqueue(client)
        self._start_workers()
        started = time.monotonic()
        self._drain(client, before["processed"])
        self._summary(client, before, time.monotonic() - started)
        code = 0 if all(w.returncode == 0 for w in self.workers) else 1
        self._linger()
        return code

    def _connect(self) -> Resque:
        if self.options.redis_url:
            client = Resque(self.options.redis_url, namespace=self.namespace)
            self.say(f"Redis: {describe(client.redis)} (from --redis), namespace "
                     f"{self.namespace!r}; logs in {self.data_dir}")
            return client
        self.server = EmbeddedRedis(self.data_dir, persistent=True, new_session=True)
        with self.signals.held():
            self.server.start()
        self.redis_url = self.server.url
        ignored = [name for name in ("RESQUE_REDIS", "REDIS_URL") if os.environ.get(name)]
        note = f"; {' and '.join(ignored)} not used (--redis URL uses another)" if ignored else ""
        self.say(f"Redis: the demo's own redis-server at {self.redis_url} (data and logs in "
                 f"{self.data_dir}){note}")
        return Resque(self.redis_url, namespace=self.namespace)

    def _start_dashboard(self) -> None:
        try:
            from resque.web.server import start_dashboard
        except ImportError:
            self.say("Install 'resque[web]' to watch the demo in the dashboard.")
            return
        self.dashboard = start_dashboard(self.redis_url, namespace=self.namespace)
        self.say(f"Dashboard: {self.dashboard.url}")

    def _start_clean(self, client: Resque) -> None:
        if self.options.keep:
            counts = _counts(client)
            self.say(f"Continuing with the last run's data (--continue): {counts['processed']} "
                     f"jobs processed, {counts['failed']} failed so far.")
            return
        removed = _remove_namespace(client) if self.server is None else _flush(client)
        if removed:
            self.say(f"Starting from clean demo data: removed the last run's {removed} keys "
                     "(--continue keeps them).")

    def _enqueue(self, client: Resque) -> None:
        rng = random.Random(42)
        failing = 0
        for i in range(self.options.job_count):
            if i % 3:
                client.enqueue(greet, f"user{i}")
            else:
                width = rng.randint(-100, 800)  # a few negative widths fail on purpose
                failing += width <= 0
                client.enqueue(resize, width, 600)
        self.say(f"Enqueued {self.options.job_count} jobs on {', '.join(QUEUES)} "
                 f"({failing} will fail on purpose). Queues now: {client.queue_sizes()}")

    def _start_workers(self) -> None:
        """``resque work --burst`` processes, in sessions of their own (the demo stops them);
        the Redis URL reaches them in ``RESQUE_REDIS``, never on a command line."""
        command = [sys.executable, "-m", "resque", "work", "--app", "resque.demo",
                   "-q", ",".join(QUEUES), "--burst", "--namespace", self.namespace,
                   "--fork" if self.options.fork else "--no-fork"]
        env = {**os.environ, "RESQUE_REDIS": self.redis_url}
        mode = "a" if self.options.keep else "w"
        with open(self.log_path, mode + "b") as log_file:  # warnings stay off the progress bar
            for _ in range(self.options.worker_count):
                with self.signals.held():
                    self.workers.append(subprocess.Popen(
                        command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                        env=env, start_new_session=True))

    def _drain(self, client: Resque, processed_before: int) -> None:
        total = self.options.job_count
        label = f"{self.options.worker_count} workers"
        bar = Progress(total)
        show = _bar_writer(self.say, sys.stdout.isatty())
        self.say(f"{label} draining {total} jobs...")
        while any(worker.poll() is None for worker in self.workers):
            bar.update(_counts(client)["processed"] - processed_before)
            show(bar.line(label))
            time.sleep(0.1)
        bar.update(_counts(client)["processed"] - processed_before)
        show(bar.line(label), final=True)

    def _summary(self, client: Resque, before: dict[str, int], elapsed: float) -> None:
        after = _counts(client)
        processed = after["processed"] - before["processed"]
        failed = after["failed"] - before["failed"]
        mode = "fork per job" if self.options.fork else "in-process"
        self.say(f"Processed {processed} jobs ({failed} failed) in {elapsed:.1f}s: "
                 f"{processed / elapsed:.0f} jobs/s with {self.options.worker_count} worker "
                 f"processes ({mode}).")
        self.say(f"Failed jobs are kept in the '{client.keys.failed}' list for retry; "
                 f"worker logs are in {self.log_path}.")

    def _linger(self) -> None:
        if self.dashboard is None or self.options.linger <= 0:
            return
        self.say(f"The dashboard stays up at {self.dashboard.url}: press Ctrl-C to stop.")
        try:
            deadline = time.monotonic() + self.options.linger
            while time.monotonic() < deadline:
                time.sleep(0.5)
        except Stopped:
            pass  # the usual way to end the demo: not an interruption

    # --- stopping -----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop what this run started, each step even if another failed."""
        _stop_processes(self.workers, WORKER_STOP_TIMEOUT)
        if self.dashboard is not None:
            self.dashboard.stop()
            self.dashboard = None
        if self.server is not None:
            self.server.stop()
            self.server = None


def _stop_processes(processes: list[subprocess.Popen[bytes]], timeout: float) -> None:
    """TERM each one still running (a worker then finishes its job or hands it back), wait
    up to ``timeout`` seconds in all, then KILL what is left."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _counts(client: Resque) -> dict[str, int]:
    """``stat:processed`` and ``stat:failed``: one round trip."""
    with client.redis.pipeline(transaction=False) as pipe:
        pipe.get(client.keys.stat("processed"))
        pipe.get(client.keys.stat("failed"))
        processed, failed = pipe.execute()
    return {"processed": int(processed or 0), "failed": int(failed or 0)}


def _flush(client: Resque) -> int:
    """Empty the demo's own redis-server; returns how many keys it held."""
    count = int(client.redis.dbsize())
    client.redis.flushdb()
    return count


def _remove_namespace(client: Resque) -> int:
    """Delete the keys of the demo's namespace only (on a Redis the demo does not own)."""
    removed = 0
    batch: list[bytes] = []
    for key in client.redis.scan_iter(match=client.keys.prefix + "*", count=1000):
        batch.append(key)
        if len(batch) == 500:
            removed += int(client.redis.unlink(*batch))
            batch.clear()
    if batch:
        removed += int(client.redis.unlink(*batch))
    return removed


# --- the progress bar ---------------------------------------------------------------------------


class Progress:
    """Jobs done out of ``total``, the rate, and an ETA from the rate measured over the last
    ``WINDOW`` seconds. No ETA until the warm-up is over (``WARM_UP`` seconds after the first
    job was done): workers take a moment to start, and a rate measured across that moment
    would promise a wildly late end."""

    WINDOW = 3.0
    WARM_UP = 1.0

    def __init__(self, total: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.clock = clock
        self.samples: list[tuple[float, int]] = []
        self.first_done_at: float | None = None

    def update(self, done: int) -> None:
        now = self.clock()
        done = max(0, min(done, self.total))
        if done and self.first_done_at is None:
            self.first_done_at = now
        self.samples.append((now, done))
        while len(self.samples) > 2 and self.samples[1][0] <= now - self.WINDOW:
            self.samples.pop(0)

    @property
    def done(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def rate(self) -> float | None:
        """Jobs per second since the later of the first job done and the window's start."""
        if self.first_done_at is None or len(self.samples) < 2:
            return None
        start = next((s for s in self.samples if s[0] >= self.first_done_at), self.samples[0])
        (t0, d0), (t1, d1) = start, self.samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None

    def eta(self) -> float | None:
        """Seconds left at the measured rate; None during the warm-up or without a rate."""
        if self.first_done_at is None or self.clock() - self.first_done_at < self.WARM_UP:
            return None
        rate = self.rate()
        return (self.total - self.done) / rate if rate else None

    def line(self, label: str, width: int = 30) -> str:
        filled = width * self.done // self.total if self.total else width
        rate, eta = self.rate(), self.eta()
        shown = f"{label} [{'#' * filled}{'-' * (width - filled)}] {self.done}/{self.total}"
        if self.done >= self.total:
            return f"{shown}  done"
        speed = f"{rate:,.0f} jobs/s" if rate is not None else "starting"
        left = f"ETA {_duration(eta)}" if eta is not None else "ETA measuring"
        return f"{shown}  {speed}  {left}"


def _duration(seconds: float) -> str:
    """``0.4s``, ``12s``, ``2m05s``."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


def _bar_writer(say: Callable[..., None], terminal: bool) -> Callable[..., None]:
    """Draws the bar in place on a terminal; elsewhere only its last state, once."""
    width = 0

    def show(line: str, final: bool = False) -> None:
        nonlocal width
        if terminal:
            say("\r" + line.ljust(width), newline=final)
            width = len(line)
        elif final:
            say(line)

    return show
