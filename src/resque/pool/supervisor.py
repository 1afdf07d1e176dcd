"""``resque pool``: run and supervise several worker processes from one small config.

The config maps a queue list to a number of workers, as resque-pool's YAML does::

    "high,low": 2
    mail: 1
    production:          # an environment section, merged over the top level when
      mail: 3            # RESQUE_ENV / RACK_ENV / RAILS_ENV (or --environment) names it

Each worker is a ``python -m resque work -q <queues> ...`` subprocess with the pool's
``--redis``/``--namespace``/``--app`` options. The pool restarts a worker that dies (backing off
while it keeps dying young), forwards signals (TERM/INT/QUIT: then waits for every worker and
exits; USR1/USR2/CONT), and on HUP reloads the config: new workers start, the old ones get
QUIT and finish their current job first. The pool itself never talks to Redis.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import click

from resque.cli import namespace_option, redis_option, setup_logging
from resque.errors import ResqueError

log = logging.getLogger("resque.pool")

DEFAULT_CONFIGS = ("resque-pool.yml", "config/resque-pool.yml")
ENVIRONMENT_VARIABLES = ("RESQUE_ENV", "RACK_ENV", "RAILS_ENV")
# Worker settings that belong to the pool, not to each worker it starts.
POOL_ONLY_ENV = ("COUNT", "PIDFILE", "BACKGROUND", "QUEUE", "QUEUES")
FORWARDED = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT)
STOPPING = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


class PoolConfigError(ResqueError, ValueError):
    """A pool config that cannot be used; the message says which entry and why."""


Config = dict[str, int]
"""Queue list (``"high,low"``) -> number of workers."""


# --- the config -----------------------------------------------------------------------------


def parse_config(data: Any, environment: str | None = None, source: str = "config") -> Config:
    """Validate a decoded config; an environment section named ``environment`` is merged in.

    Values that are mappings are environment sections (resque-pool's layout); the others
    must be counts >= 0. Queue lists are normalised (``"high, low"`` -> ``"high,low"``).
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise PoolConfigError(f"{source}: expected a mapping of queues to counts, not {data!r}")
    merged: dict[Any, Any] = {k: v for k, v in data.items() if not isinstance(v, Mapping)}
    section = data.get(environment) if environment else None
    if isinstance(section, Mapping):
        merged.update(section)
    config: Config = {}
    for queues, count in merged.items():
        if isinstance(count, Mapping):
            raise PoolConfigError(f"{source}: {queues!r} nests a section inside a section")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise PoolConfigError(
                f"{source}: the count for {queues!r} must be a whole number >= 0, not {count!r}"
            )
        names = [q.strip() for q in str(queues).split(",")]
        if not all(names) or any(any(ch.isspace() for ch in q) for q in names):
            raise PoolConfigError(f"{source}: {queues!r} is not a comma-separated queue list")
        key = ",".join(names)
        config[key] = config.get(key, 0) + count
    return config


def parse_inline(specs: Sequence[str]) -> Config:
    """``-w`` values: ``"high,low:2"`` (the count after the last colon, default 1), or a
    JSON object ``'{"high,low": 2}'``; several are added together."""
    config: Config = {}
    for spec in specs:
        text = spec.strip()
        if text.startswith("{"):
            try:
                part = parse_config(json.loads(text), source=f"-w {spec!r}")
            except json.JSONDecodeError as exc:
                raise PoolConfigError(f"-w {spec!r} is not valid JSON: {exc}") from None
        else:
            queues, sep, count = text.rpartition(":")
            if not sep:
                queues, count = text, "1"
            if not count.isdigit():
                raise PoolConfigError(f"-w {spec!r}: expected QUEUES[:COUNT], e.g. high,low:2")
            part = parse_config({queues: int(count)}, source=f"-w {spec!r}")
        for queues, count_ in part.items():
            config[queues] = config.get(queues, 0) + count_
    return config


def load_config(path: str | os.PathLike[str], environment: str | None = None) -> Config:
    """Read a YAML (or JSON) pool config file. YAML needs PyYAML (the ``scheduler`` extra)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PoolConfigError(f"cannot read the pool config {path}: {exc.strerror}") from None
    if path.suffix == ".json" or text.lstrip().startswith("{"):
        try:
            return parse_config(json.loads(text), environment, str(path))
        except json.JSONDecodeError as exc:
            if path.suffix == ".json":
                raise PoolConfigError(f"{path} is not valid JSON: {exc}") from None
    try:
        import yaml
    except ImportError:
        raise PoolConfigError(
            f"{path} is YAML, which needs PyYAML: pip install 'resque[scheduler]' (or "
            "PyYAML), or write the config as JSON, or pass -w 'high,low:2'"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PoolConfigError(f"{path} is not valid YAML: {exc}") from None
    return parse_config(data, environment, str(path))


def find_config(explicit: str | None = None) -> Path | None:
    """``explicit``, else the first of ``resque-pool.yml`` and ``config/resque-pool.yml``."""
    if explicit:
        return Path(explicit)
    return next((Path(p) for p in DEFAULT_CONFIGS if Path(p).is_file()), None)


def environment_name() -> str | None:
    return next((os.environ[v] for v in ENVIRONMENT_VARIABLES if os.environ.get(v)), None)


def multiply(config: Config, count: int) -> Config:
    """``COUNT``: every entry's number of workers times ``count``."""
    return {queues: n * count for queues, n in config.items()}


# --- the supervisor -------------------------------------------------------------------------


@dataclass
class Slot:
    """One configured worker: the process running it now, and its restart history."""

    queues: str
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    crashes: int = 0  # deaths in a row, each within ``min_uptime`` of its start
    next_start: float = 0.0


@dataclass
class Backoff:
    """Restart delays: a worker that lived ``min_uptime`` seconds restarts at once; one that
    died younger waits ``base * 2**(crashes-1)`` seconds, at most ``limit``."""

    base: float = 1.0
    limit: float = 60.0
    min_uptime: float = 5.0

    def delay(self, crashes: int) -> float:
        return 0.0 if crashes == 0 else min(self.limit, self.base * 2 ** (crashes - 1))


@dataclass
class Pool:
    """Keeps one worker process per configured slot; ``run()`` returns when all have exited.

    ``load`` re-reads the config (called at start and on every HUP); ``worker_args`` follow
    ``resque work -q <queues>`` on each worker's command line.
    """

    load: Callable[[], Config]
    worker_args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # extra environment for workers
    backoff: Backoff = field(default_factory=Backoff)
    python: str = sys.executable
    slots: list[Slot] = field(default_factory=list)
    retiring: list[subprocess.Popen[bytes]] = field(default_factory=list)
    stopping: int | None = None  # the signal that is stopping the pool
    paused: bool = False
    _pending: list[int] = field(default_factory=list)
    _wakeup: tuple[int, int] | None = None
    _title: str = ""

    def run(self, config: Config | None = None) -> int:
        """Start the workers (for ``config``, else ``load()``), supervise them until
        TERM/INT/QUIT, wait for every one to exit, return 0."""
        self._install_signals()
        try:
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
            return 0
        finally:
            self._abandon()
            self._restore_signals()

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
            slot.next_start = time.monotonic() + self.backoff.delay(slot.crashes)
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
            slot.crashes = slot.crashes + 1 if lived < self.backoff.min_uptime else 0
            delay = self.backoff.delay(slot.crashes)
            slot.next_start = now + delay
            if self.stopping is None:
                log.warning("worker %d on %s %s after %.1fs; restarting%s", process.pid,
                            slot.queues, _exit_reason(process.returncode), lived,
                            f" in {delay:.0f}s" if delay else "")
        for process in [p for p in self.retiring if p.poll() is not None]:
            self.retiring.remove(process)
            log.info("old worker %d %s", process.pid, _exit_reason(process.returncode))
        self._set_title()

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
        try:
            import setproctitle

            from resque import __version__
        except ImportError:
            return
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


# --- the command ----------------------------------------------------------------------------


@click.command()
@click.option("-c", "--config", "config_path", envvar="RESQUE_POOL_CONFIG",
              help="YAML (or JSON) file of queue lists and counts (default: resque-pool.yml, "
              "then config/resque-pool.yml).")
@click.option("-w", "--workers", "inline", multiple=True, metavar="QUEUES[:COUNT]",
              help='Instead of a file: -w "high,low:2" -w mail, or a JSON object.')
@click.option("--count", type=click.IntRange(min=1), envvar="COUNT", default=1,
              show_default=True, help="Multiply every entry's number of workers (COUNT).")
@click.option("-E", "--environment", help="Config section to merge over the top level "
              "(default: RESQUE_ENV, RACK_ENV or RAILS_ENV).")
@click.option("--app", "apps", multiple=True, help="Passed to each worker: module(s) that "
              "register your jobs.")
@click.option("--allow", "allowed", multiple=True, help="Passed to each worker.")
@click.option("--fork/--no-fork", default=None, help="Passed to each worker.")
@click.option("--interval", type=float, help="Passed to each worker.")
@click.option("--pidfile", help="Write the pool's pid here.")
@click.option("-v", "--verbose", count=True, help="-v info, -vv debug; passed to each worker.")
@redis_option
@namespace_option
def pool(
    config_path: str | None,
    inline: tuple[str, ...],
    count: int,
    environment: str | None,
    apps: tuple[str, ...],
    allowed: tuple[str, ...],
    fork: bool | None,
    interval: float | None,
    pidfile: str | None,
    verbose: int,
    redis_url: str | None,
    namespace: str | None,
) -> None:
    """Run and supervise worker processes per a config (like resque-pool).

    Restarts workers that die; TERM/INT/QUIT are passed on, then the pool waits for every
    worker and exits; USR1/USR2/CONT are passed on; HUP reloads the config, starting new
    workers while the old ones finish their current job (QUIT).
    """
    setup_logging(verbose)
    environment = environment or environment_name()
    load = _loader(config_path, inline, count, environment)
    try:
        config = load()
    except PoolConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    args = [f"--app={app}" for app in apps] + [f"--allow={allow}" for allow in allowed]
    if fork is not None:
        args.append("--fork" if fork else "--no-fork")
    if interval is not None:
        args.append(f"--interval={interval}")
    if namespace:
        args.append(f"--namespace={namespace}")
    args += ["-v"] * verbose
    # The URL may hold a password: workers get it in their environment, not on `ps`.
    env = {"RESQUE_REDIS": redis_url} if redis_url else {}
    if pidfile:
        Path(pidfile).write_text(str(os.getpid()))
    try:
        sys.exit(Pool(load, args, env).run(config))
    finally:
        if pidfile and Path(pidfile).exists():
            Path(pidfile).unlink()


def _loader(
    config_path: str | None, inline: Sequence[str], count: int, environment: str | None
) -> Callable[[], Config]:
    """How to (re)read the config at start and on HUP."""
    if inline:
        if config_path:
            raise click.UsageError("give either --config or -w, not both")
        return lambda: multiply(parse_inline(inline), count)
    path = find_config(config_path)
    if path is None:
        queues = os.environ.get("QUEUES") or os.environ.get("QUEUE")
        if queues:
            return lambda: multiply(parse_config({queues: 1}, source="QUEUES"), count)
        raise click.UsageError(
            f"no pool config: none of {', '.join(DEFAULT_CONFIGS)} here; give --config FILE "
            "or -w 'high,low:2'"
        )
    return lambda: multiply(load_config(path, environment), count)
