"""Turning what a user gives us into a redis-py client and a namespace.

Accepted forms, as in Ruby's ``Resque.redis=`` plus URLs:

* a ``redis.Redis`` client (used as is),
* ``redis://[user:password@]host:port/db``, ``rediss://...`` (TLS), ``unix:///path?db=N``;
  a ``namespace`` query parameter sets the namespace,
* Resque's own ``host:port``, ``host:port:db`` and ``host:port[:db]/namespace``,
* nothing: ``RESQUE_REDIS``, then ``REDIS_URL``, then ``localhost:6379``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis

from resque.errors import RedisUnavailable

DEFAULT_NAMESPACE = "resque"
DEFAULT_SERVER = "localhost:6379"
ENV_VARS = ("RESQUE_REDIS", "REDIS_URL")



def server_from_env() -> str | None:
    for name in ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def connect(spec: redis.Redis | str | None = None, namespace: str | None = None) -> tuple[
    redis.Redis, str
]:
    """Return ``(client, namespace)`` for any accepted form; the client is not contacted yet."""
    if isinstance(spec, redis.Redis):
        return spec, DEFAULT_NAMESPACE if namespace is None else namespace
    if spec is not None and not isinstance(spec, str):
        raise TypeError(f"redis must be a redis.Redis client or a string, not {type(spec)!r}")
    server = (spec or server_from_env() or DEFAULT_SERVER).strip()
    found_namespace: str | None = None
    if "://" in server:
        parts = urlsplit(server)
        query = parse_qsl(parts.query)
        found_namespace = next((v for k, v in query if k == "namespace"), None)
        rest = urlencode([(k, v) for k, v in query if k != "namespace"])
        # Rebuilt by hand: urlunsplit turns "unix:///path" into "unix:/path", which redis-py
        # refuses.
        base = server.split("?", 1)[0]
        client = redis.Redis.from_url(f"{base}?{rest}" if rest else base)
    else:
        address, _, found_namespace_text = server.partition("/")
        found_namespace = found_namespace_text or None
        host, _, port_db = address.partition(":")
        port_text, _, db_text = port_db.partition(":")
        try:
            port = int(port_text) if port_text else 6379
            db = int(db_text) if db_text else 0
        except ValueError:
            raise ValueError(
                f"cannot read Redis address {server!r}: expected host:port, host:port:db, "
                "host:port/namespace or a redis:// URL"
            ) from None
        client = redis.Redis(host=host or "localhost", port=port, db=db)
    if namespace is None:
        namespace = found_namespace if found_namespace is not None else DEFAULT_NAMESPACE
    return client, namespace


def describe(client: redis.Redis) -> str:
    """Where a client points, as a URL without credentials (safe for logs and errors)."""
    kwargs = client.connection_pool.connection_kwargs
    db = kwargs.get("db", 0)
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={db}"
    scheme = "rediss" if client.connection_pool.connection_class is redis.SSLConnection else "redis"
    return f"{scheme}://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{db}"


F = TypeVar("F", bound=Callable[..., Any])


def unavailable_error(client: redis.Redis, exc: BaseException) -> RedisUnavailable:
    return RedisUnavailable(
        f"cannot reach Redis at {describe(client)}: {exc}. Check that redis-server is running "
        "there and that the redis= argument, RESQUE_REDIS or REDIS_URL points at it."
    )


def translate_errors(method: F) -> F:
    """Re-raise redis-py connection failures as ``RedisUnavailable`` naming the address."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise unavailable_error(self.redis, exc) from exc

    return cast(F, wrapper)
