"""Connection strings (resque/connection.py): every accepted form, env vars and safe errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

import resque
from resque import Resque
from resque.connection import connect, describe
from resque.embedded import EmbeddedRedis, free_port
from resque.errors import BadRedisURL


@pytest.fixture
def port(redis_server: EmbeddedRedis) -> int:
    return redis_server.port


@pytest.fixture
def unix_server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(unix_socket=True) as server:
        yield server


def kwargs(client: redis.Redis) -> dict[str, object]:
    return dict(client.connection_pool.connection_kwargs)


def test_a_client_is_used_as_is_with_the_default_namespace(r: redis.Redis) -> None:
    client, namespace = connect(r)
    assert client is r
    assert namespace == "resque"


def test_a_client_takes_an_explicit_namespace(r: redis.Redis) -> None:
    assert connect(r, namespace="app") == (r, "app")
    assert connect(r, namespace="") == (r, "")


def test_a_redis_url_selects_host_port_and_db(r: redis.Redis, port: int) -> None:
    client, namespace = connect(f"redis://127.0.0.1:{port}/3")
    assert namespace == "resque"
    assert kwargs(client)["db"] == 3
    client.set("marker", "x")
    db3 = redis.Redis(host="127.0.0.1", port=port, db=3)
    assert db3.get("marker") == b"x"
    assert r.get("marker") is None  # db 0
    db3.close()
    client.close()


def test_a_unix_url_connects_through_the_socket(unix_server: EmbeddedRedis) -> None:
    assert unix_server.socket_path
    client, namespace = connect(f"unix://{unix_server.socket_path}?db=2&namespace=app")
    assert namespace == "app"
    assert kwargs(client)["path"] == unix_server.socket_path
    assert kwargs(client)["db"] == 2
    assert client.ping()
    assert describe(client) == f"unix://{unix_server.socket_path}?db=2"
    client.close()


def test_resque_enqueues_over_a_unix_socket(unix_server: EmbeddedRedis) -> None:
    queue = Resque(unix_server.url, job_ids=False)  # Ruby's exact bytes, compared below
    queue.enqueue_to("high", "Hello", 1)
    raw = unix_server.client()
    assert raw.lrange("resque:queue:high", 0, -1) == [b'{"class":"Hello","args":[1]}']
    raw.close()


@pytest.mark.parametrize(
    ("template", "db", "namespace"),
    [
        ("127.0.0.1:{port}", 0, "resque"),
        ("127.0.0.1:{port}:4", 4, "resque"),
        ("127.0.0.1:{port}/app", 0, "app"),
        ("127.0.0.1:{port}:5/app:v2", 5, "app:v2"),
        ("redis://127.0.0.1:{port}/6?namespace=app", 6, "app"),
        ("redis://127.0.0.1:{port}/0?namespace=app&socket_timeout=5", 0, "app"),
        ("  127.0.0.1:{port}:1  ", 1, "resque"),
    ],
)
def test_resque_style_strings_and_urls_give_db_and_namespace(
    port: int, template: str, db: int, namespace: str
) -> None:
    client, found = connect(template.format(port=port))
    assert found == namespace
    assert kwargs(client)["host"] == "127.0.0.1"
    assert kwargs(client)["port"] == port
    assert kwargs(client)["db"] == db
    assert client.ping()  # the namespace query parameter is not passed on to redis-py
    client.close()


def test_a_namespace_argument_overrides_the_one_in_the_string(port: int) -> None:
    _, namespace = connect(f"127.0.0.1:{port}/fromstring", namespace="fromarg")
    assert namespace == "fromarg"


def test_the_namespace_prefixes_every_key(r: redis.Redis, port: int) -> None:
    Resque(f"127.0.0.1:{port}/app").enqueue_to("q", "Hello")
    assert sorted(r.keys("*")) == [b"app:queue:q", b"app:queues"]


def test_an_empty_namespace_writes_bare_keys(r: redis.Redis) -> None:
    Resque(r, namespace="").enqueue_to("q", "Hello")
    assert sorted(r.keys("*")) == [b"queue:q", b"queues"]


def test_host_alone_defaults_to_port_6379(port: int) -> None:
    client, _ = connect("example.invalid")
    assert (kwargs(client)["host"], kwargs(client)["port"]) == ("example.invalid", 6379)


def test_nothing_given_means_localhost_6379_namespace_resque() -> None:
    client, namespace = connect()
    assert (kwargs(client)["host"], kwargs(client)["port"], kwargs(client)["db"]) == (
        "localhost",
        6379,
        0,
    )
    assert namespace == "resque"


def test_redis_url_env_is_read_when_nothing_is_given(
    monkeypatch: pytest.MonkeyPatch, port: int
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/7")
    client, namespace = connect()
    assert (kwargs(client)["port"], kwargs(client)["db"], namespace) == (port, 7, "resque")


def test_resque_redis_env_wins_over_redis_url(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/1")
    monkeypatch.setenv("RESQUE_REDIS", f"127.0.0.1:{port}:2/fromenv")
    client, namespace = connect()
    assert (kwargs(client)["port"], kwargs(client)["db"], namespace) == (port, 2, "fromenv")


def test_an_empty_resque_redis_env_falls_back_to_redis_url(
    monkeypatch: pytest.MonkeyPatch, port: int
) -> None:
    monkeypatch.setenv("RESQUE_REDIS", "  ")
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/3")
    client, _ = connect()
    assert kwargs(client)["db"] == 3


def test_an_explicit_string_wins_over_the_env(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    monkeypatch.setenv("RESQUE_REDIS", "127.0.0.1:1")
    client, _ = connect(f"127.0.0.1:{port}:1")
    assert kwargs(client)["port"] == port


def test_resque_reads_the_env_too(
    monkeypatch: pytest.MonkeyPatch, r: redis.Redis, port: int
) -> None:
    monkeypatch.setenv("RESQUE_REDIS", f"127.0.0.1:{port}/envns")
    Resque().enqueue_to("q", "Hello")
    assert r.exists("envns:queue:q")


@pytest.mark.parametrize(
    "bad",
    [
        "localhost:notaport",
        "localhost:6379:notadb",
        "localhost:6379:1:2",
        "localhost:6379:1.5/ns",
        "redis://localhost:notaport/0",
        "http://localhost:6379/0",
    ],
)
def test_unreadable_strings_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        connect(bad)


def test_a_value_that_is_neither_client_nor_string_raises_type_error() -> None:
    with pytest.raises(TypeError):
        connect(6379)  # type: ignore[arg-type]


def test_the_error_for_a_bad_string_says_what_forms_are_accepted() -> None:
    with pytest.raises(ValueError, match="host:port"):
        connect("localhost:six")


def test_a_refused_connection_raises_redis_unavailable_naming_the_address() -> None:
    port = free_port()  # nothing listens there
    queue = Resque(f"redis://:s3cret@127.0.0.1:{port}/0")
    with pytest.raises(resque.RedisUnavailable) as caught:
        queue.size("high")
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "s3cret" not in message
    assert isinstance(caught.value, ConnectionError)


def test_enqueue_to_an_unreachable_redis_raises_redis_unavailable() -> None:
    port = free_port()
    queue = Resque(f"redis://user:s3cret@127.0.0.1:{port}/0")
    with pytest.raises(resque.RedisUnavailable) as caught:
        queue.enqueue_to("high", "Hello", 1)
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@127.0.0.1:6390/2", "redis://127.0.0.1:6390/2"),
        ("redis://admin:s3cret@db.example:6390/0", "redis://db.example:6390/0"),
        ("rediss://:s3cret@db.example:6380/1", "rediss://db.example:6380/1"),
        ("unix://:s3cret@/tmp/redis.sock?db=3", "unix:///tmp/redis.sock?db=3"),
    ],
)
def test_describe_never_shows_passwords(url: str, shown: str) -> None:
    client, _ = connect(url)
    assert describe(client) == shown
    assert "s3cret" not in repr(Resque(client))


def test_a_password_given_to_the_client_is_not_in_describe() -> None:
    client = redis.Redis(host="127.0.0.1", port=6390, password="s3cret")
    assert "s3cret" not in describe(client)


def test_rediss_builds_a_tls_client_without_contacting_it() -> None:
    client, namespace = connect("rediss://:pw@db.example:6380/1?namespace=tls")
    assert client.connection_pool.connection_class is redis.SSLConnection
    assert namespace == "tls"
    assert kwargs(client)["db"] == 1
    assert describe(client).startswith("rediss://")


def test_a_url_database_that_is_not_a_number_is_refused_not_read_as_db_0() -> None:
    with pytest.raises(BadRedisURL) as caught:
        connect("redis://127.0.0.1:6379/abc")
    assert str(caught.value) == (
        "cannot read Redis URL 'redis://127.0.0.1:6379/abc': the database 'abc' is not a "
        "number (redis://host:6379/0); a namespace goes in ?namespace=abc")


@pytest.mark.parametrize(
    "url",
    ["foo://user:s3cret@bar", "redis://:s3cret@h:notaport/0", "redis://:s3cret@h:1/x",
     "redis://h:1/0?password=s3cret&socket_timeout=abc",
     "redis+sentinel://:s3cret@h1:26379/mymaster/x",
     "redis+sentinel://h1:26379/mymaster?sentinel_password=s3cret&db=x"],
)
def test_an_unreadable_url_is_a_bad_redis_url_that_never_shows_a_password(url: str) -> None:
    with pytest.raises(BadRedisURL) as caught:
        Resque(url)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, resque.ResqueError)
    assert "s3cret" not in str(caught.value)
