"""The embedded redis-server (resque/embedded.py) used by the demo and these tests."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from resque import Resque
from resque.embedded import EmbeddedRedis, find_redis_server, free_port
from resque.errors import ResqueError


def process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_starts_a_server_and_stop_kills_it_and_removes_its_temp_dir() -> None:
    server = EmbeddedRedis().start()
    assert server.process is not None
    pid = server.process.pid
    data_dir = server.data_dir
    client = server.client()
    assert client.ping()
    assert data_dir.is_dir()
    client.close()

    server.stop()
    assert server.process is None
    assert process_is_gone(pid)
    assert not data_dir.exists()


def test_context_manager_stops_the_server_even_on_error() -> None:
    with pytest.raises(RuntimeError, match="inside"):
        with EmbeddedRedis() as server:
            assert server.process is not None
            pid = server.process.pid
            raise RuntimeError("inside")
    assert process_is_gone(pid)


def test_stop_twice_is_harmless() -> None:
    server = EmbeddedRedis().start()
    server.stop()
    server.stop()


def test_the_url_points_at_loopback_on_the_chosen_port() -> None:
    with EmbeddedRedis() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        with socket.create_connection(("127.0.0.1", server.port), timeout=2):
            pass


def test_persistent_data_dir_keeps_queued_jobs_across_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with EmbeddedRedis(data_dir, persistent=True) as server:
        queue = Resque(server.url, job_ids=False)
        queue.enqueue_to("high", "Hello", "a", 1)
        queue.enqueue_many("Bulk", [[n] for n in range(100)], queue="bulk")
    assert data_dir.is_dir(), "a given data_dir is never removed"

    with EmbeddedRedis(data_dir, persistent=True) as server:
        queue = Resque(server.url)
        assert queue.peek("high") == {"class": "Hello", "args": ["a", 1]}
        assert queue.size("bulk") == 100
        assert queue.queues() == ["bulk", "high"]


def test_without_persistence_a_restart_starts_empty(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:
        Resque(server.url).enqueue_to("high", "Hello")
    with EmbeddedRedis(tmp_path) as server:
        assert Resque(server.url).size("high") == 0


def test_unix_socket_mode_listens_on_a_socket_only() -> None:
    with EmbeddedRedis(unix_socket=True) as server:
        assert server.socket_path is not None
        assert server.url == f"unix://{server.socket_path}"
        assert Path(server.socket_path).is_socket()
        assert server.port == 0
        queue = Resque(server.url)
        handle = queue.enqueue_to("high", "Hello", 1)
        assert handle is not None
        assert queue.pop("high") == {"class": "Hello", "args": [1], "id": handle.id}
        socket_path = server.socket_path
    assert not Path(socket_path).exists()


def test_a_server_that_cannot_start_raises_resque_error_and_cleans_up() -> None:
    server = EmbeddedRedis(extra_args=["--no-such-option", "x"])
    data_dir = server.data_dir
    with pytest.raises(ResqueError, match="did not start"):
        server.start(timeout=5)
    assert server.process is None
    assert not data_dir.exists()


def test_find_redis_server_honours_redis_server_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = find_redis_server()
    link = tmp_path / "my-redis-server"
    link.symlink_to(real)
    monkeypatch.setenv("REDIS_SERVER", str(link))
    assert find_redis_server() == str(link)
    with EmbeddedRedis() as server:
        assert server.binary == str(link)
        assert server.client().ping()


def test_find_redis_server_without_env_finds_an_executable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REDIS_SERVER", raising=False)
    found = find_redis_server()
    assert os.path.isfile(found) and os.access(found, os.X_OK)


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_new_session_puts_the_server_out_of_reach_of_its_terminals_signals() -> None:
    with EmbeddedRedis(new_session=True) as server:
        assert server.process is not None
        assert os.getsid(server.process.pid) == server.process.pid


def test_a_redis_server_path_that_does_not_run_is_a_resque_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REDIS_SERVER", str(tmp_path / "no-such-redis-server"))
    with pytest.raises(ResqueError, match="cannot run redis-server .*no-such-redis-server"):
        EmbeddedRedis().start()
