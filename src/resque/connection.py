"""Turning what a user gives us into a redis-py client and a namespace, and living with
Redis going away.

Accepted forms, as in Ruby's ``Resque.redis=`` plus URLs:

* a ``redis.Redis`` client (used as is),
* ``redis://[user:password@]host:port/db``, ``rediss://...`` (TLS: ``?ssl_ca_certs=ca.pem``,
  ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``), ``unix:///path?db=N``;
  a ``namespace`` query parameter sets the namespace,
* ``redis+sentinel://[user:password@]host1:26379,host2:26379/service[/db]`` (Redis Sentinel;
  the credentials are the master's, ``?sentinel_password=`` the sentinels'),
* Resque's own ``host:port``, ``host:port:db`` and ``host:port[:db]/namespace``,
* nothing: ``RESQUE_REDIS``, then ``REDIS_URL``, then ``localhost:6379``.

Clients we build never retry a command by themselves: a command whose reply was lost may
have run, and running a worker's step or an enqueue twice is not safe. Who retries, and how,
is decided by the caller: the worker (``Backoff`` + ``Outage``, forever), the admin verbs
(``wait_until_reachable``, bounded), the dashboard (the next request).
"""

from __future__ import annotations

import functools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from resque.errors import BadRedisURL, RedisUnavailable

DEFAULT_NAMESPACE = "resque"
DEFAULT_SERVER = "localhost:6379"
ENV_VARS = ("RESQUE_REDIS", "REDIS_URL")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel", "sentinel")
URL_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_SENTINEL_PORT = 26379

# Socket settings of the clients we build (a URL's query parameters override them). Without
# a read timeout, a Redis that is frozen or behind a network partition would hang a worker
# forever; without keepalive, a dead peer is noticed only when we next write.
CLIENT_DEFAULTS: dict[str, Any] = {
    "socket_connect_timeout": 5.0,
    "socket_timeout": 30.0,
    "socket_keepalive": True,
}

# Errors that mean "Redis is not answering now": worth waiting for. (AuthenticationError is
# a ConnectionError in redis-py: at startup, waiting does not fix a wrong password.)
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)
# Replies that mean "not now, and nothing was done": a replica after a failover (READONLY),
# a master short of replicas (NOREPLICAS), or out of memory (OOM). Redis refuses these at a
# script's first write, so a refused step wrote nothing and may simply be sent again.
_NOT_NOW = (redis.ReadOnlyError, redis.exceptions.OutOfMemoryError,
            redis.exceptions.TryAgainError, redis.exceptions.ClusterDownError)
_NOT_NOW_CODES = ("NOREPLICAS", "MASTERDOWN", "LOADING")

log = logging.getLogger("resque.connection")


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


def server_from_env() -> str | None:
    for name in ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def connect(spec: redis.Redis | str | None = None, namespace: str | None = None) -> tuple[
    redis.Redis, str
]:
    """Return ``(client, namespace)`` for any accepted form; the client is not contacted yet.

    A string that cannot be read raises ``BadRedisURL`` (a ``ValueError``) saying why,
    without the password.
    """
    if isinstance(spec, redis.Redis):
        return spec, DEFAULT_NAMESPACE if namespace is None else namespace
    if spec is not None and not isinstance(spec, str):
        raise TypeError(f"redis must be a redis.Redis client or a string, not {type(spec)!r}")
    server = (spec or server_from_env() or DEFAULT_SERVER).strip()
    try:
        if server.split("://", 1)[0].lower() in SENTINEL_SCHEMES and "://" in server:
            client, found_namespace = _sentinel_from_url(server)
        elif "://" in server:
            client, found_namespace = _from_url(server)
        else:
            client, found_namespace = _from_address(server)
    except BadRedisURL:
        raise
    except ValueError as exc:  # redis-py refusing a query value, a sentinel setting...
        raise BadRedisURL(f"cannot read Redis URL {_safe(server)!r}: {exc}") from None
    if namespace is None:
        namespace = found_namespace if found_namespace is not None else DEFAULT_NAMESPACE
    return client, namespace


def _from_url(server: str) -> tuple[redis.Redis, str | None]:
    """``redis://``, ``rediss://`` and ``unix://`` URLs, checked before redis-py reads them
    (it falls back to db 0 for a path that is no number)."""
    parts = urlsplit(server)
    if parts.scheme.lower() not in URL_SCHEMES:
        raise BadRedisURL(f"cannot read Redis URL {_safe(server)!r}: it must start with "
                          "redis://, rediss://, unix:// or redis+sentinel://")
    if parts.scheme.lower() != "unix":
        try:
            parts.port  # noqa: B018 - urllib checks the port when asked for it
        except ValueError:
            raise BadRedisURL(f"cannot read Redis URL {_safe(server)!r}: its port is not a "
                              "number (redis://host:6379/0)") from None
        database = parts.path.strip("/")
        if database and not (database.isascii() and database.isdigit()):
            raise BadRedisURL(
                f"cannot read Redis URL {_safe(server)!r}: the database {database!r} is not a "
                f"number (redis://host:6379/0); a namespace goes in ?namespace={database}"
            )
    query = parse_qsl(parts.query)
    found_namespace = next((v for k, v in query if k == "namespace"), None)
    rest = urlencode([(k, v) for k, v in query if k != "namespace"])
    # Rebuilt by hand: urlunsplit turns "unix:///path" into "unix:/path", which redis-py
    # refuses.
    base = server.split("?", 1)[0]
    given = {k for k, _ in query}
    defaults = {k: v for k, v in CLIENT_DEFAULTS.items() if k not in given}
    if parts.scheme == "unix":
        defaults.pop("socket_keepalive", None)
    client = redis.Redis.from_url(
        f"{base}?{rest}" if rest else base, retry=_no_retry(), **defaults
    )
    return client, found_namespace


def _from_address(server: str) -> tuple[redis.Redis, str | None]:
    """Resque's own ``host:port``, ``host:port:db`` and ``host:port[:db]/namespace``."""
    address, _, found_namespace_text = server.partition("/")
    host, _, port_db = address.partition(":")
    port_text, _, db_text = port_db.partition(":")
    try:
        port = int(port_text) if port_text else 6379
        db = int(db_text) if db_text else 0
    except ValueError:
        raise BadRedisURL(
            f"cannot read Redis address {_safe(server)!r}: expected host:port, host:port:db, "
            "host:port/namespace or a redis:// URL"
        ) from None
    client = redis.Redis(
        host=host or "localhost", port=port, db=db, retry=_no_retry(), **CLIENT_DEFAULTS
    )
    return client, found_namespace_text or None


# --- Redis Sentinel ---------------------------------------------------------------------------


def sentinel_client(
    sentinels: Sequence[tuple[str, int] | str],
    service: str,
    *,
    db: int = 0,
    username: str | None = None,
    password: str | None = None,
    sentinel_username: str | None = None,
    sentinel_password: str | None = None,
    ssl: bool = False,
    **connection_kwargs: Any,
) -> redis.Redis:
    """A client of the master that the sentinels name for ``service``; after a failover it
    asks them again (redis-py's ``Sentinel.master_for``). Pass it as ``Resque(redis=...)``.

    ``sentinels`` are ``(host, port)`` pairs or ``"host:port"`` strings. ``username`` and
    ``password`` are the master's; ``sentinel_*`` those of the sentinels, if they need any.
    Other keyword arguments go to every master connection (``ssl_ca_certs=...``).
    """
    addresses = [_sentinel_address(s) for s in sentinels]
    if not addresses:
        raise ValueError("name at least one sentinel, as host:port")
    if not service:
        raise ValueError("name the Sentinel service (the master's name, e.g. mymaster)")
    sentinel_kwargs: dict[str, Any] = {
        "socket_connect_timeout": CLIENT_DEFAULTS["socket_connect_timeout"],
        "socket_timeout": CLIENT_DEFAULTS["socket_connect_timeout"],
        "retry": _no_retry(),
    }
    if sentinel_username:
        sentinel_kwargs["username"] = sentinel_username
    if sentinel_password:
        sentinel_kwargs["password"] = sentinel_password
    settings = {**CLIENT_DEFAULTS, **connection_kwargs}
    if ssl:
        settings["ssl"] = True
    manager = Sentinel(
        addresses, sentinel_kwargs=sentinel_kwargs, retry=_no_retry(), **settings
    )
    client: redis.Redis = manager.master_for(
        service, db=db, username=username, password=password
    )
    return client


def _sentinel_address(value: tuple[str, int] | str) -> tuple[str, int]:
    if isinstance(value, tuple):
        return value[0], int(value[1])
    host, _, port = value.strip().rpartition(":")
    if not host:  # no port given
        return value.strip(), DEFAULT_SENTINEL_PORT
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise ValueError(f"cannot read sentinel address {value!r}: expected host:port") from None


def _sentinel_from_url(url: str) -> tuple[redis.Redis, str | None]:
    """``redis+sentinel://[user:password@]h1:26379,h2:26379/service[/db][?namespace=..]``."""
    scheme, _, rest = url.partition("://")
    rest, _, query_text = rest.partition("?")
    netloc, _, path = rest.partition("/")
    credentials, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user_text, colon, password_text = credentials.partition(":")
        username = unquote(user_text) or None
        password = unquote(password_text) if colon else None
    parts = [p for p in path.split("/") if p]
    if not hosts or not parts:
        raise ValueError(
            f"cannot read Sentinel URL {_safe(url)!r}: expected "
            "redis+sentinel://[user:password@]host1:26379,host2:26379/service[/db]"
        )
    try:
        db = int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise ValueError(
            f"the database in a Sentinel URL must be a number, not {parts[1]!r}"
        ) from None
    query = dict(parse_qsl(query_text))
    namespace = query.pop("namespace", None)
    db = int(query.pop("db", db))
    options: dict[str, Any] = {}
    for key in ("sentinel_username", "sentinel_password"):
        if key in query:
            options[key] = query.pop(key)
    for key in ("socket_timeout", "socket_connect_timeout"):
        if key in query:
            options[key] = float(query.pop(key))
    options.update(query)  # ssl_ca_certs and other connection settings, as strings
    client = sentinel_client(
        hosts.split(","), unquote(parts[0]), db=db, username=username, password=password,
        ssl=scheme.lower().startswith("rediss"), **options,
    )
    return client, namespace


def _without_credentials(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    return f"{scheme}{sep}{netloc.rpartition('@')[2]}{slash}{path}"


def _safe(server: str) -> str:
    """A URL or address as the user wrote it, for an error message: no credentials, and no
    value of a query parameter that names a password."""
    base, mark, query = _without_credentials(server).partition("?")
    if not mark:
        return base
    shown = [f"{key}=***" if "password" in key.lower() else f"{key}={value}"
             for key, value in parse_qsl(query, keep_blank_values=True)]
    return f"{base}?{'&'.join(shown)}"


# --- naming a server safely -------------------------------------------------------------------


def describe(client: redis.Redis) -> str:
    """Where a client points, as a URL without credentials (safe for logs and errors)."""
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    db = kwargs.get("db", 0)
    if isinstance(pool, SentinelConnectionPool):
        manager = pool.sentinel_manager
        hosts = ",".join(
            "{host}:{port}".format(**s.connection_pool.connection_kwargs)
            for s in manager.sentinels
        )
        tls = "s" if pool.connection_class.__name__.endswith("SSLConnection") else ""
        return f"redis{tls}+sentinel://{hosts}/{pool.service_name}/{db}"
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={db}"
    scheme = "rediss" if issubclass(pool.connection_class, redis.SSLConnection) else "redis"
    return f"{scheme}://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{db}"


F = TypeVar("F", bound=Callable[..., Any])


def unavailable_error(client: redis.Redis, exc: BaseException) -> RedisUnavailable:
    """``RedisUnavailable`` saying, in one line, where and what to check (never a password)."""
    where = describe(client)
    if isinstance(exc, (redis.AuthenticationError, redis.exceptions.AuthorizationError)):
        if not client.connection_pool.connection_kwargs.get("password"):
            return RedisUnavailable(
                f"cannot reach Redis at {where}: it needs a password and none was given; put "
                "it in the URL (redis://:PASSWORD@host:6379/0 or redis://USER:PASSWORD@...) "
                "of --redis, RESQUE_REDIS or REDIS_URL")
        return RedisUnavailable(
            f"cannot reach Redis at {where}: it refused the user name and password given "
            f"({_short(exc)}); check them in --redis, RESQUE_REDIS or REDIS_URL (they are "
            "never shown here)")
    if "certificate" in str(exc).lower() or "ssl" in str(exc).lower():
        hint = ("Check the TLS settings: ssl_ca_certs for the server's CA, and ssl_certfile "
                "and ssl_keyfile if it asks for a client certificate.")
    else:
        hint = ("Check that redis-server is running there and that the redis= argument, "
                "RESQUE_REDIS or REDIS_URL points at it.")
    return RedisUnavailable(f"cannot reach Redis at {where}: {_sentence(exc)} {hint}")


def _sentence(exc: BaseException) -> str:
    text = _short(exc)
    return text if text.endswith((".", "!", "?")) else text + "."


def check_credentials(client: redis.Redis) -> None:
    """One PING: ``RedisUnavailable`` at once if Redis refuses the credentials (waiting
    would not fix them); a Redis that is merely away is left to the caller's retries."""
    try:
        client.ping()
    except (redis.AuthenticationError, redis.exceptions.AuthorizationError) as exc:
        raise unavailable_error(client, exc) from exc
    except TRANSIENT_ERRORS:
        pass


def translate_errors(method: F) -> F:
    """Re-raise redis-py connection failures as ``RedisUnavailable`` naming the address."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise unavailable_error(self.redis, exc) from exc

    return cast(F, wrapper)


# --- living with outages ----------------------------------------------------------------------


class Backoff:
    """Exponential delays with full jitter: each wait is drawn from [first/2, 1.5 * current],
    current doubling up to ``cap``. So a farm of workers that lost Redis together does not
    knock on it in lockstep when it returns."""

    def __init__(self, first: float = 0.05, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self.current = first

    def next(self) -> float:
        delay = self.current * random.uniform(0.5, 1.5)
        self.current = min(self.current * 2, self.cap)
        return delay

    def reset(self) -> None:
        self.current = self.first

    def __iter__(self) -> Iterator[float]:
        while True:
            yield self.next()


class Outage:
    """One log line when Redis stops answering, one when it answers again: however many
    attempts, threads (the worker loop, its heartbeat) or connections see it in between."""

    def __init__(self, where: str, logger: logging.Logger = log) -> None:
        self.where = where
        self.log = logger
        self._lock = threading.Lock()
        self.since: float | None = None
        self.count = 0  # outages seen, for tests and stats

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self.since is not None:
                return
            self.since = time.monotonic()
            self.count += 1
        self.log.error("Redis is unreachable at %s (%s); retrying with backoff until it "
                       "returns", self.where, _short(exc))

    def recovered(self) -> None:
        with self._lock:
            if self.since is None:
                return
            seconds, self.since = time.monotonic() - self.since, None
        self.log.warning("Redis is back at %s after %.1fs", self.where, seconds)

    @property
    def down(self) -> bool:
        return self.since is not None


def is_transient(exc: BaseException) -> bool:
    """Redis is away, or cannot take this write for now: wait and send it again."""
    if isinstance(exc, TRANSIENT_ERRORS + _NOT_NOW):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(_NOT_NOW_CODES)


def after_refusal(client: redis.Redis, exc: BaseException) -> None:
    """After a "not now" reply, drop pooled connections: the next ones go to wherever the
    master is now (Sentinel asks again; a DNS name or a virtual IP may have moved)."""
    if not isinstance(exc, TRANSIENT_ERRORS):
        client.connection_pool.disconnect()


def refresh_master(client: redis.Redis) -> None:
    """Sentinel only: ask where the master is now; idle connections to a former master are
    closed (the worker does this with each heartbeat, so a failover that leaves the old
    master up for a while does not keep it on the old one)."""
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        pool.get_master_address()


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def wait_until_reachable(
    client: redis.Redis,
    timeout: float,
    logger: logging.Logger = log,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """PING until Redis answers, with backoff and jitter, for at most ``timeout`` seconds;
    then ``RedisUnavailable`` naming the address. One log line if it has to wait at all.

    Only PING is retried: it is safe to repeat, unlike the command a caller runs next.
    """
    deadline = time.monotonic() + max(0.0, timeout)
    backoff = Backoff()
    waited = False
    while True:
        try:
            client.ping()
        except redis.AuthenticationError as exc:
            raise unavailable_error(client, exc) from exc
        except TRANSIENT_ERRORS as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise unavailable_error(client, exc) from exc
            if not waited:
                waited = True
                logger.warning("Redis is unreachable at %s (%s); retrying for up to %.0fs",
                               describe(client), _short(exc), timeout)
            sleep(min(backoff.next(), left))
            continue
        if waited:
            logger.warning("Redis is back at %s", describe(client))
        return
