"""The pool's supervisor: one worker process per configured slot, restarted when it dies,
signals passed on, the config reloaded on HUP.

Each worker is a ``python -m resque work -q <queues> ...`` subprocess with the pool's worker
arguments. The pool restarts a worker that dies (``RestartPolicy``: backing off while it keeps
dying young, giving up when it keeps failing at start-up), forwards signals (TERM/INT/QUIT:
then waits for every worker and exits; USR1/USR2/CONT), and on HUP reloads the config: new
workers start, the old ones get QUIT and finish their current job first. The pool itself
never talks to Redis.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

import setproctitle

from resque import __version__
from resque import pidfile as pidfiles
from resque.pool.config import Config, PoolConfigError
from resque.settings import PoolSettings

log = logging.getLogger("resque.pool")

# Worker settings that belong to the pool, not to each worker it starts.
POOL_ONLY_ENV = ("COUNT", "PIDFILE", "BACKGROUND", "QUEUE", "QUEUES")
FORWARDED = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT)
STOPPING = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


@dataclass
class Slot:
    """One configured worker: the process running it now, and its restart history."""

    queues: str
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    crashes: int = 0  # deaths in a row, each within ``min_uptime`` of its start
    next_start: float = 0.0


@dataclass(frozen=True)
class RestartPolicy:
    """When to restart a worker that died: one that lived ``min_uptime`` seconds restarts at
    once; one that died younger waits ``base * 2**(crashes-1)`` seconds, at most ``limit``.
    Deterministic, unlike ``connection.Backoff``'s jittered reconnect delays: one pool
    restarts its own workers, there is no herd to spread. After ``give_up_after`` young
    failures in a row, restarting is pointless (a refused password fails every start alike):
    the pool gives up, so that whatever runs it sees the failure instead of a spinning pool."""

    base: float = PoolSettings.restart_delay
    limit: float = PoolSettings.restart_delay_limit
    min_uptime: float = PoolSettings.min_uptime
    give_up_after: int = PoolSettings.give_up_after

    @classmethod
    def from_settings(cls, settings: PoolSettings) -> RestartPolicy:
        return cls(settings.restart_delay, settings.restart_delay_limit, settings.min_uptime,
                   settings.give_up_after)

    def died_young(self, lived: float) -> bool:
        return lived < self.min_uptime

    def delay(self, crashes: int) -> float:
        """Seconds to wait after ``crashes`` young deaths in a row (0: restart at once)."""
        return 0.0 if crashes == 0 else min(self.limit, self.base * 2 ** (crashes - 1))

    def gives_up(self, crashes: int, status: int | None) -> bool:
        """After ``crashes`` young deaths in a row, the last with exit ``status``: stop
        trying? Only failures count; a worker that exits 0 young has not failed to start."""
        return 0 < self.give_up_after <= crashes and status != 0


@dataclass
class Pool:
    """Keeps one worker process per configured slot; ``run()`` returns when all have exited.

    ``load`` re-reads the config (called at start and on every HUP); ``worker_args`` follow
    ``resque work -q <queues>`` on each worker's command line.
    """

    load: Callable[[], Config]
    worker_args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # extra environment for workers
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    python: str = sys.executable
    slots: list[Slot] = field(default_factory=list)
    retiring: list[subprocess.Popen[bytes]] = field(default_factory=list)
    stopping: int | None = None  # the signal that is stopping the pool
    paused: bool = False
    gave_up: str | None = None  # why the pool stopped restarting its workers, if it did
    _pending: list[int] = field(default_factory=list)
    _wakeup: tuple[int, int] | None = None
    _title: str = ""

    def run(self, config: Config | None = None, *, pidfile: str | None = None) -> int:
        """Start the workers (for ``config``, else ``load()``), supervise them until
        TERM/INT/QUIT, wait for every one to exit, return 0; or 1 once it gave up on a
        worker that keeps failing at start-up (the others are stopped as by TERM).
        ``pidfile`` gets the pid once the signal handlers are in place."""
        self._install_signals()
        try:
            with pidfiles.held(pidfile):
                return self._supervise(config)
        finally:
            self._abandon()
            self._restore_signals()

    def _supervise(self, config: Config | None) -> int:
        self._configure(self.load() if config is None else config)
        while True:
            self._handle_signals()
            self._reap()
            if self.stopping is not None and not self.processes():
                break
            if self.stopping is None and not self.paused:
                self._start_due()
            elif self.paused and self.stopping is None:
                # Idempotent for a paused worker; reaches one that was still starting
                # (USR2 ignored until its handler is in place) when the pause came.
                for process in self.processes():
                    self._send(process, signal.SIGUSR2)
            self._sleep()
        log.info("pool stopped")
        return 0 if self.gave_up is None else 1

    def processes(self) -> list[subprocess.Popen[bytes]]:
        """Every live worker process, retiring ones included."""
        live = [s.process for s in self.slots if s.process is not None] + self.retiring
        return [p for p in live if p.poll() is None]

    # --- workers ------------------------------------------------------------------------

    def _configure(self, config: Config) -> None:
        """Slots for ``config``; the workers of any previous slots retire (QUIT)."""
        old = [s.process for s in self.slots if s.process is not None]
        self.slots = [Slot(queues) for queues, n in config.items() for _ in range(n)]
        summary = ", ".join(f"{q} x{n}" for q, n in config.items()) or "nothing"
        log.info("pool config: %s", summary)
        if self.stopping is None and not self.paused:
            self._start_due()
        for process in old:
            self._send(process, signal.SIGQUIT)
        self.retiring += old

    def _start_due(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.process is None and now >= slot.next_start:
                self._spawn(slot)

    def _spawn(self, slot: Slot) -> None:
        command = [self.python, "-m", "resque", "work", "-q", slot.queues, *self.worker_args]
        env = {k: v for k, v in os.environ.items() if k not in POOL_ONLY_ENV}
        env.update(self.env)
        try:
            slot.process = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, preexec_fn=_worker_preexec
            )
        except OSError as exc:
            slot.crashes += 1
            slot.next_start = time.monotonic() + self.restart.delay(slot.crashes)
            log.error("cannot start a worker for %s: %s", slot.queues, exc)
            return
        slot.started = time.monotonic()
        log.info("started worker %d on %s", slot.process.pid, slot.queues)
        self._set_title()

    def _reap(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            process = slot.process
            if process is None or process.poll() is None:
                continue
            slot.process = None
            lived = now - slot.started
            # Status 0 is a worker that ended by itself (--max-jobs, --max-memory): recycled,
            # not crashed, so it is replaced at once however young.
            young = self.restart.died_young(lived) and process.returncode != 0
            slot.crashes = slot.crashes + 1 if young else 0
            delay = self.restart.delay(slot.crashes)
            slot.next_start = now + delay
            if self.stopping is None and self.restart.gives_up(slot.crashes, process.returncode):
                self._give_up(slot, process.returncode)
            elif self.stopping is None:
                log.warning("worker %d on %s %s after %.1fs; restarting%s", process.pid,
                            slot.queues, _exit_reason(process.returncode), lived,
                            f" in {delay:.0f}s" if delay else "")
        for process in [p for p in self.retiring if p.poll() is not None]:
            self.retiring.remove(process)
            log.info("old worker %d %s", process.pid, _exit_reason(process.returncode))
        self._set_title()

    def _give_up(self, slot: Slot, status: int | None) -> None:
        """One line that says why, then stop every worker as TERM does."""
        self.gave_up = (
            f"giving up: the worker on {slot.queues} failed at start-up {slot.crashes} times in "
            f"a row (the last {_exit_reason(status)} within {self.restart.min_uptime:g}s of "
            "starting); its own error is above. Fix that and start the pool again "
            f"(RESQUE_POOL_GIVE_UP_AFTER={self.restart.give_up_after})")
        log.error("%s", self.gave_up)
        self.stopping = signal.SIGTERM
        for process in self.processes():
            self._send(process, signal.SIGTERM)

    def _send(self, process: subprocess.Popen[bytes], signum: int) -> None:
        if process.poll() is None:
            try:
                process.send_signal(signum)
            except ProcessLookupError:
                pass

    def _abandon(self) -> None:
        """On an unexpected exit (an exception), TERM the workers rather than orphan them."""
        left = self.processes()
        for process in left:
            self._send(process, signal.SIGTERM)
        for process in left:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    # --- signals ------------------------------------------------------------------------

    def _install_signals(self) -> None:
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        self._wakeup = (read_end, write_end)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        for signum in (*STOPPING, *FORWARDED, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, self._on_signal)

    def _restore_signals(self) -> None:
        for signum in (*STOPPING, *FORWARDED, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        if self._wakeup is not None:
            signal.set_wakeup_fd(-1)
            for fd in self._wakeup:
                os.close(fd)
            self._wakeup = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGCHLD:  # a child's exit only needs the wake-up
            self._pending.append(signum)

    def _handle_signals(self) -> None:
        while self._pending:
            signum = self._pending.pop(0)
            name = signal.Signals(signum).name
            if signum in STOPPING:
                # A later TERM/INT escalates a QUIT (and a second TERM kills jobs, as for a
                # single worker); a QUIT never softens a TERM already sent.
                if self.stopping in (None, signal.SIGQUIT) or signum != signal.SIGQUIT:
                    log.info("%s: passing it to %d worker(s), then exiting", name,
                             len(self.processes()))
                    self.stopping = signum
                    for process in self.processes():
                        self._send(process, signum)
            elif signum == signal.SIGHUP:
                self._reload()
            else:
                log.info("%s: passing it to %d worker(s)", name, len(self.processes()))
                if signum == signal.SIGUSR2:
                    self.paused = True
                elif signum == signal.SIGCONT:
                    self.paused = False
                for process in self.processes():
                    self._send(process, signum)

    def _reload(self) -> None:
        if self.stopping is not None:
            return
        try:
            config = self.load()
        except PoolConfigError as exc:
            log.error("HUP: keeping the current workers, the new config is unusable: %s", exc)
            return
        log.info("HUP: starting workers for the new config; old workers finish their job")
        self._configure(config)

    def _sleep(self) -> None:
        """Until a signal, a child's exit, or the next due restart (at most a second)."""
        timeout = 1.0
        waiting = [s.next_start for s in self.slots if s.process is None]
        if waiting and self.stopping is None and not self.paused:
            timeout = max(0.0, min(timeout, min(waiting) - time.monotonic()))
        if self._pending or self._wakeup is None:
            return
        try:
            readable, _, _ = select.select([self._wakeup[0]], [], [], timeout)
        except InterruptedError:
            return
        if readable:
            try:
                while os.read(self._wakeup[0], 512):
                    pass
            except BlockingIOError:
                pass

    def _set_title(self) -> None:
        pids = " ".join(str(p.pid) for p in self.processes())
        title = f"resque-pool-{__version__}: managing [{pids}]"
        if title != self._title:
            self._title = title
            setproctitle.setproctitle(title)


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


_PR_SET_PDEATHSIG = 1


def _worker_preexec() -> None:
    """In each worker before exec: its own process group (a terminal's Ctrl-C reaches only
    the pool, which passes it on once), USR1/USR2 ignored until the worker installs its
    handlers (so an early pause cannot kill it), and TERM if the pool dies (Linux)."""
    os.setpgid(0, 0)
    for signum in (signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass
