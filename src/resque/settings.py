"""Every setting of a worker, written once: its default, its environment variable, Ruby's name
for it, and what it does.

``WorkerSettings.from_env()`` reads the environment (Ruby's variable names where Ruby has one);
keyword arguments, and the command line's options, override it. The docs' table of settings is
generated from these fields (``settings_table``), so it cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from resque.failure import FailureBackend

S = TypeVar("S")
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


# --- reading one environment variable ---------------------------------------------------------


def parse_flag(value: str) -> bool:
    """Set and not a false word (Ruby's ``if ENV['TERM_CHILD']``); ``0``, ``false``, ``no``
    and ``off`` are off."""
    return value.strip().lower() not in FALSE_WORDS | {""}


def parse_on_unless_false(value: str) -> bool:
    """On unless the value says otherwise (Ruby's ``ENV['FORK_PER_JOB'] != 'false'``)."""
    return value.strip().lower() not in FALSE_WORDS


def parse_names(value: str) -> tuple[str, ...]:
    """A comma-separated list: ``high,low`` -> ``("high", "low")``, blanks dropped."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def parse_optional_int(value: str) -> int | None:
    return int(value) if value.strip() else None


def parse_optional_float(value: str) -> float | None:
    return float(value) if value.strip() else None


def setting(
    default: Any = None,
    *,
    env: str | tuple[str, ...] | None = None,
    ruby: str | None = None,
    doc: str,
    parse: Callable[[str], Any] | None = None,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A settings field. ``env`` names the variable(s) read, first set wins; ``parse`` turns
    its text into the value (by default the field's own type: ``float("5")``)."""
    names = (env,) if isinstance(env, str) else tuple(env or ())
    metadata = {"env": names, "ruby": ruby, "doc": doc, "parse": parse}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _parser(spec: dataclasses.Field[Any], cls: type) -> Callable[[str], Any]:
    parse = spec.metadata.get("parse")
    if parse is not None:
        return parse  # type: ignore[no-any-return]
    default = spec.default
    kind = type(default) if default is not None and default is not dataclasses.MISSING else str
    if kind is bool:
        return parse_flag
    return kind


def read_env(cls: type[S], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The values the environment sets for the fields of a settings class (by field name).

    A value that does not parse raises ``ValueError`` naming the variable and what it wants.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for spec in fields(cls):  # type: ignore[arg-type]
        for name in spec.metadata.get("env", ()):
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[spec.name] = _parser(spec, cls)(raw)
            except ValueError:
                wanted = type(spec.default).__name__ if spec.default is not None else "a value"
                raise ValueError(f"{name}={raw!r} is not valid: {spec.name} wants {wanted}") \
                    from None
            break
    return values


def build(cls: type[S], environ: Mapping[str, str] | None = None, **overrides: Any) -> S:
    """Defaults, then the environment, then ``overrides`` that are not None."""
    values = read_env(cls, environ)
    values.update({name: value for name, value in overrides.items() if value is not None})
    return cls(**values)


def field_help(cls: type, name: str) -> str:
    """A command-line option's help, from the field: what it does, its variable, its default."""
    spec = next(spec for spec in fields(cls) if spec.name == name)
    notes = [", ".join(spec.metadata.get("env", ()))]
    if spec.default not in (None, (), "", dataclasses.MISSING):
        notes.append(f"default {spec.default}")
    shown = "; ".join(note for note in notes if note)
    return str(spec.metadata["doc"]) + (f" ({shown})" if shown else "")


def settings_table(cls: type) -> str:
    """A Markdown table of a settings class: field, default, variable, Ruby's name, meaning."""
    rows = ["| setting | default | environment | Ruby | what it does |",
            "|---|---|---|---|---|"]
    for spec in fields(cls):
        default = spec.default
        if default is dataclasses.MISSING and spec.default_factory is not dataclasses.MISSING:
            default = spec.default_factory()
        env = ", ".join(f"`{n}`" for n in spec.metadata.get("env", ())) or "-"
        ruby = spec.metadata.get("ruby") or "-"
        shown = "-" if default in (None, (), "") else f"`{default!r}`"
        rows.append(f"| `{spec.name}` | {shown} | {env} | {ruby} | {spec.metadata['doc']} |")
    return "\n".join(rows)


# --- the worker -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker can be told. ``Worker(queues, **fields)`` or ``Worker(settings=...)``."""

    queues: tuple[str, ...] = setting(
        (), env=("QUEUES", "QUEUE"), ruby="QUEUES, QUEUE", parse=parse_names,
        doc="Queues in priority order; `*` and globs expand against the `queues` set, "
            "`!name` excludes.")
    interval: float = setting(
        5.0, env="INTERVAL", ruby="INTERVAL",
        doc="Seconds between polls for jobs pushed by Ruby or Perl (ours wake the worker at "
            "once); 0 exits when the queues are empty.")
    burst: bool = setting(
        False, doc="Exit when the queues are empty (as `interval=0`).")
    fork: bool = setting(
        True, env="FORK_PER_JOB", ruby="FORK_PER_JOB", parse=parse_on_unless_false,
        doc="A child process per job; off (`FORK_PER_JOB=false`), jobs run in the worker "
            "process.")
    fork_server: bool = setting(
        True, env="RESQUE_FORK_SERVER", parse=parse_on_unless_false,
        doc="Fork job children from a small server process that loads only the job code "
            "(cheaper forks); off, or when the worker has its own `after_fork` hooks or a "
            "failure backend object, the worker forks them itself.")
    concurrency: int = setting(
        1, env="RESQUE_CONCURRENCY",
        doc="Perform up to N jobs at once on threads in one process (`async def` jobs share "
            "one event loop); more than 1 implies no fork.")
    max_jobs: int | None = setting(
        None, env="RESQUE_MAX_JOBS", parse=parse_optional_int,
        doc="Exit after this many jobs (a supervisor such as `resque pool` starts a new one).")
    max_memory: int | None = setting(
        None, env="RESQUE_MAX_MEMORY", parse=parse_optional_int,
        doc="Exit after the job that took the worker's resident memory past this many MB: "
            "no job starts after it, running ones finish, reserved ones go back to their "
            "queue (a supervisor such as `resque pool` starts a new worker).")
    max_batch: int = setting(
        64, env="RESQUE_MAX_BATCH",
        doc="Most jobs an in-process worker reserves in one round trip while jobs are quick.")
    term_timeout: float = setting(
        4.0, env="RESQUE_TERM_TIMEOUT", ruby="RESQUE_TERM_TIMEOUT",
        doc="Seconds a stopping worker gives the running job before it is killed.")
    term_child: bool = setting(
        False, env="TERM_CHILD", ruby="TERM_CHILD",
        doc="On TERM, stop the job at once with TERM (in process: `TermException`), then KILL "
            "a child still there after `term_timeout`; off, the job first gets "
            "`term_timeout` to finish.")
    graceful_term: bool = setting(
        False, env="GRACEFUL_TERM", ruby="GRACEFUL_TERM",
        doc="TERM acts as QUIT: finish the current job, then exit.")
    heartbeat_interval: float = setting(
        60.0, env="RESQUE_HEARTBEAT_INTERVAL", ruby="Resque.heartbeat_interval",
        doc="Seconds between heartbeats written to `workers:heartbeat`.")
    heartbeat_expiry: float = setting(
        300.0, env="RESQUE_HEARTBEAT_EXPIRY", ruby="Resque.prune_interval",
        doc="A worker whose heartbeat is older than this is dead, on any host.")
    prune_interval: float = setting(
        30.0, env="RESQUE_PRUNE_INTERVAL",
        doc="Seconds between looks for dead workers (Ruby prunes only at start-up).")
    requeue_limit: int = setting(
        2, env="RESQUE_REQUEUE_LIMIT",
        doc="A job whose workers died under it this many times is failed, not requeued.")
    stop_requeue_limit: int = setting(
        3, env="RESQUE_STOP_REQUEUE_LIMIT",
        doc="A job stopped by a shutdown (it outlived `term_timeout`) is requeued at the head "
            "of its queue this many times; the next stop fails it, with a record that says "
            "why, so that a job that hangs cannot block its queue at every restart.")
    failure_backend: str | FailureBackend | None = setting(
        None, env="FAILURE_BACKEND", ruby="FAILURE_BACKEND",
        doc="Where failures go: `redis`, `redis_multi_queue`, `log`, `none`, "
            "`multiple:a,b`, `module:Factory`, or (from code) a backend object.")
    procline_prefix: str = setting(
        "", env="RESQUE_PROCLINE_PREFIX", ruby="RESQUE_PROCLINE_PREFIX",
        doc="Text put before `resque-<version>: ...` in the process title.")
    hostname: str | None = setting(
        None, doc="The host part of the worker id (default: this machine's host name).")
    preload: tuple[str, ...] = setting(
        (), parse=parse_names,
        doc="Modules the fork server imports before forking, besides those of registered jobs.")
    job_timeout: float | None = setting(
        None, env="RESQUE_JOB_TIMEOUT", parse=parse_optional_float,
        doc="Seconds a job may run when it declares no `timeout` of its own; then it is "
            "ended and recorded as `Resque::JobTimeout` (guides/retries.md says how, per "
            "mode).")
    job_metrics: bool = setting(
        False, env="RESQUE_JOB_METRICS",
        doc="Time each job into the farm's duration histograms by queue and class (Redis "
            "hash `metrics:durations`, added to every 5 s), for `/metrics`.")

    def __post_init__(self) -> None:
        for name in ("queues", "preload"):  # a string or any sequence, kept as a tuple
            value = getattr(self, name)
            object.__setattr__(self, name, parse_names(value) if isinstance(value, str)
                               else tuple(value))
        if self.interval < 0:
            raise ValueError("interval must be >= 0")
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.max_jobs is not None and self.max_jobs < 1:
            raise ValueError("max_jobs must be >= 1")
        if self.max_memory is not None and self.max_memory < 1:
            raise ValueError("max_memory must be >= 1 (MB)")
        if self.job_timeout is not None and not self.job_timeout > 0:
            raise ValueError("job_timeout must be > 0 seconds")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 **overrides: Any) -> WorkerSettings:
        """Defaults, then the environment (Ruby's names), then ``overrides`` not None."""
        return build(cls, environ, **overrides)

    def replace(self, **changes: Any) -> WorkerSettings:
        return dataclasses.replace(self, **changes)


# --- the client ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientSettings:
    """What every client reads from the environment (``resque.client.Client``)."""

    job_modules: tuple[str, ...] = setting(
        (), env="RESQUE_JOB_MODULES", parse=parse_names,
        doc="Module prefixes whose dotted job paths workers may import, besides the "
            "`allowed_modules` given in code and the `--app`/`--allow` modules.")
    environment: str = setting(
        "development", env=("RAILS_ENV", "RACK_ENV"), ruby="RAILS_ENV, RACK_ENV",
        doc="The `environment` that `info()` (and the Stats tab) reports, as Ruby's "
            "`Resque.info`.")
    job_ids: bool = setting(
        True, env="RESQUE_JOB_IDS", parse=parse_on_unless_false,
        doc="Give every job enqueued from Python an id (key `id` after `args` in its "
            "payload). Off: Ruby's exact payload bytes, for Ruby code that removes jobs with "
            "`Resque.dequeue`; jobs with a status still carry their id.")
    result_ttl: int = setting(
        86400, env="RESQUE_RESULT_TTL",
        doc="Seconds a tracked job's status and result are kept after it ends (at most "
            "30 days).")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 **overrides: Any) -> ClientSettings:
        return build(cls, environ, **overrides)


# --- the scheduler ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchedulerSettings:
    """What a ``resque scheduler`` process can be told, with resque-scheduler's variable names.
    ``Scheduler(client, **fields)`` or ``Scheduler(client, settings=...)``."""

    MAX_BATCH_SIZE: ClassVar[int] = 5000  # keeps one script call short: Redis never blocks long

    schedule_file: str | None = setting(
        None, env="RESQUE_SCHEDULE",
        doc="A resque-scheduler YAML schedule file, re-read on USR2.")
    dynamic: bool = setting(
        False, env="DYNAMIC_SCHEDULE", ruby="DYNAMIC_SCHEDULE",
        doc="Follow the schedules stored in Redis (`persistent_schedules`) while running.")
    interval: float = setting(
        5.0, env="RESQUE_SCHEDULER_INTERVAL", ruby="RESQUE_SCHEDULER_INTERVAL",
        doc="Seconds between passes (sooner when a recurring tick is due).")
    lock_timeout: int = setting(
        180, env="LOCK_TIMEOUT", ruby="LOCK_TIMEOUT",
        doc="TTL in seconds of the master lock; a standby takes over within it.")
    lock_prefix: str = setting(
        "", env="RESQUE_SCHEDULER_MASTER_LOCK_PREFIX",
        ruby="RESQUE_SCHEDULER_MASTER_LOCK_PREFIX",
        doc="Prefix of the master lock's key, for several scheduler groups on one Redis.")
    batch_size: int = setting(
        100, env="DELAYED_REQUEUE_BATCH_SIZE", ruby="DELAYED_REQUEUE_BATCH_SIZE",
        doc="Delayed jobs moved per atomic batch (at most 5000).")
    env: str | None = setting(
        None, env="RAILS_ENV", ruby="RAILS_ENV",
        doc="The environment: a schedule with `rails_env`/`env` loads only if it lists it.")
    catch_up: float | None = setting(
        None, doc="Enqueue (once) a recurring tick missed up to this many seconds ago when "
                  "becoming master; default: lock timeout + 2 intervals; 0 never, as Ruby.")
    app_name: str | None = setting(
        None, env="APP_NAME", ruby="APP_NAME", doc="Shown in the process title.")
    pidfile: str | None = setting(
        None, env="PIDFILE", ruby="PIDFILE", doc="Where `resque scheduler` writes its pid.")

    def __post_init__(self) -> None:
        if not self.interval > 0:
            raise ValueError(f"the interval must be positive, not {self.interval}")
        if self.lock_timeout < 1:
            raise ValueError(f"the lock timeout must be at least 1 second, not "
                             f"{self.lock_timeout}")
        if not 1 <= self.batch_size <= self.MAX_BATCH_SIZE:
            raise ValueError(f"the batch size must be within 1..{self.MAX_BATCH_SIZE}, not "
                             f"{self.batch_size}")
        if self.catch_up is not None and self.catch_up < 0:
            raise ValueError(f"catch_up must be >= 0, not {self.catch_up}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 **overrides: Any) -> SchedulerSettings:
        """Defaults, then resque-scheduler's variables, then ``overrides`` not None."""
        return build(cls, environ, **overrides)


# --- the pool -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolSettings:
    """What ``resque pool`` can be told, with resque-pool's variable names where it has one."""

    config: str | None = setting(
        None, env="RESQUE_POOL_CONFIG", ruby="RESQUE_POOL_CONFIG",
        doc="The YAML (or JSON) file of queue lists and counts; default `resque-pool.yml`, "
            "then `config/resque-pool.yml`.")
    environment: str | None = setting(
        None, env=("RESQUE_ENV", "RACK_ENV", "RAILS_ENV"), ruby="RESQUE_ENV, RACK_ENV, RAILS_ENV",
        doc="The config section merged over the top level.")
    count: int = setting(
        1, env="COUNT", ruby="COUNT", doc="Multiplies every entry's number of workers.")
    queues: tuple[str, ...] = setting(
        (), env=("QUEUES", "QUEUE"), ruby="QUEUES, QUEUE", parse=parse_names,
        doc="Without a config file: one worker on these queues.")
    restart_delay: float = setting(
        1.0, doc="Seconds before restarting a worker that died young; doubles with each "
                 "death in a row.")
    restart_delay_limit: float = setting(
        60.0, doc="The longest wait before restarting a worker.")
    min_uptime: float = setting(
        5.0, doc="A worker that lived this many seconds is restarted at once.")
    give_up_after: int = setting(
        5, env="RESQUE_POOL_GIVE_UP_AFTER",
        doc="Stop the pool (exit status 1) when a worker has failed at start-up this many "
            "times in a row (each time exiting with an error within `min_uptime`), as when "
            "Redis refuses the password; 0 restarts it forever.")

    def __post_init__(self) -> None:
        if isinstance(self.queues, str):
            object.__setattr__(self, "queues", parse_names(self.queues))
        if self.count < 1:
            raise ValueError(f"the count must be at least 1, not {self.count}")
        if self.give_up_after < 0:
            raise ValueError(f"give_up_after must be 0 (never) or more, not {self.give_up_after}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 **overrides: Any) -> PoolSettings:
        """Defaults, then resque-pool's variables, then ``overrides`` not None."""
        return build(cls, environ, **overrides)
