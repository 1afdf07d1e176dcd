"""The `resque` command itself: verbs from optional extras explain themselves when missing,
and bad input anywhere is one clear line with the right exit status, never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import redis
from click.testing import CliRunner, Result
from support.workerkit import title_of

from resque.cli import LazyGroup, main
from resque.embedded import EmbeddedRedis, free_port


def test_a_verb_whose_extra_is_missing_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(LazyGroup.lazy, "web", "resque_not_installed_anywhere.cli:web")
    commands = {name: cmd for name, cmd in main.commands.items() if name != "web"}
    monkeypatch.setattr(main, "commands", commands)  # restored after the test
    result = CliRunner().invoke(main, ["web", "--port", "1"])
    assert result.exit_code == 1
    assert "pip install 'resque[web]'" in result.output
    assert "Traceback" not in result.output
    listing = CliRunner().invoke(main, ["--help"])
    assert listing.exit_code == 0
    assert "not installed" in listing.output


# --- bad input: one clear line, exit 2 for usage errors and 1 for runtime errors -------------

PASSWORD = "s3cret-Pa55"


@pytest.fixture(scope="module")
def password_server() -> Iterator[EmbeddedRedis]:
    """A Redis that needs PASSWORD (set after start: starting pings it without one)."""
    with EmbeddedRedis() as server:
        server.client().config_set("requirepass", PASSWORD)
        yield server


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env={"RESQUE_REDIS_WAIT": "0", **(env or {})})


def last_line(result: Result) -> str:
    assert isinstance(result.exception, SystemExit), result.exception  # never a traceback
    return result.output.strip().splitlines()[-1]


BAD_URLS = [
    ("foo://bar", "cannot read Redis URL 'foo://bar': it must start with redis://, rediss://, "
     "unix:// or redis+sentinel://"),
    ("redis://h:notaport", "cannot read Redis URL 'redis://h:notaport': its port is not a "
     "number (redis://host:6379/0)"),
    (":::", "cannot read Redis address ':::': expected host:port, host:port:db, "
     "host:port/namespace or a redis:// URL"),
    (f"redis://127.0.0.1:1/0?socket_timeout=abc&password={PASSWORD}",
     "cannot read Redis URL 'redis://127.0.0.1:1/0?socket_timeout=abc&password=***': "
     "Invalid value for 'socket_timeout' in connection URL."),
    (f"redis://user:{PASSWORD}@h:6379/abc", "cannot read Redis URL 'redis://h:6379/abc': "
     "the database 'abc' is not a number (redis://host:6379/0); a namespace goes in "
     "?namespace=abc"),
]


@pytest.mark.parametrize(("url", "error"), BAD_URLS)
@pytest.mark.parametrize(
    "verb", [["queues"], ["failed", "list"], ["delayed", "list"], ["schedule", "list"]],
    ids=lambda verb: verb[0])
def test_a_redis_url_that_cannot_be_read_is_a_usage_error_of_one_line(
    url: str, error: str, verb: list[str]
) -> None:
    result = invoke(*verb, "--redis", url)
    assert (result.exit_code, last_line(result)) == (2, f"Error: {error}")
    assert PASSWORD not in result.output


@pytest.mark.parametrize(("url", "error"), [BAD_URLS[0], BAD_URLS[-1]])
@pytest.mark.parametrize("verb", [["work", "-q", "a"], ["scheduler"], ["web", "--port", "0"],
                                  ["metrics", "--port", "0"]],
                         ids=lambda verb: verb[0])
def test_a_long_running_verb_given_an_unreadable_redis_url_stops_with_one_line(
    url: str, error: str, verb: list[str]
) -> None:
    done = subprocess.run([sys.executable, "-m", "resque", *verb, "--redis", url],
                          capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stderr.strip().splitlines()[-1]) == (2, f"Error: {error}")


def test_a_redis_url_from_the_environment_that_cannot_be_read_is_a_usage_error() -> None:
    result = invoke("queues", env={"REDIS_URL": "redis://127.0.0.1:6379/abc"})
    assert (result.exit_code, last_line(result)) == (2, "Error: cannot read Redis URL "
            "'redis://127.0.0.1:6379/abc': the database 'abc' is not a number "
            "(redis://host:6379/0); a namespace goes in ?namespace=abc")


def test_a_missing_password_says_so_at_once(password_server: EmbeddedRedis) -> None:
    result = invoke("queues", "--redis", password_server.url, env={"RESQUE_REDIS_WAIT": "30"})
    assert (result.exit_code, last_line(result)) == (1, (
        f"Error: cannot reach Redis at {password_server.url}: it needs a password and none "
        "was given; put it in the URL (redis://:PASSWORD@host:6379/0 or "
        "redis://USER:PASSWORD@...) of --redis, RESQUE_REDIS or REDIS_URL"))


def test_a_wrong_password_says_so_at_once_without_showing_it(
    password_server: EmbeddedRedis,
) -> None:
    url = f"redis://:not-{PASSWORD}@127.0.0.1:{password_server.port}/0"
    result = invoke("delayed", "list", "--redis", url, env={"RESQUE_REDIS_WAIT": "30"})
    assert (result.exit_code, last_line(result)) == (1, (
        f"Error: cannot reach Redis at {password_server.url}: it refused the user name and "
        "password given (invalid username-password pair or user is disabled.); check them "
        "in --redis, RESQUE_REDIS or REDIS_URL (they are never shown here)"))
    assert PASSWORD not in result.output


@pytest.mark.parametrize("verb", [["web", "--port", "0"], ["scheduler"],
                                  ["metrics", "--port", "0"]],
                         ids=["web", "scheduler", "metrics"])
def test_a_long_running_verb_with_a_refused_password_exits_at_once(
    password_server: EmbeddedRedis, verb: list[str]
) -> None:
    url = f"redis://:wrong@127.0.0.1:{password_server.port}/0"
    done = subprocess.run([sys.executable, "-m", "resque", *verb, "--redis", url],
                          capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stderr.strip().splitlines()[-1]) == (1, (
        f"Error: cannot reach Redis at {password_server.url}: it refused the user name and "
        "password given (invalid username-password pair or user is disabled.); check them "
        "in --redis, RESQUE_REDIS or REDIS_URL (they are never shown here)"))


def test_a_worker_refused_by_redis_says_only_why(password_server: EmbeddedRedis) -> None:
    """Nothing of the worker's is in Redis yet: no line about failing to unregister it."""
    url = f"redis://:wrong@127.0.0.1:{password_server.port}/0"
    done = subprocess.run([sys.executable, "-m", "resque", "work", "-q", "q", "--redis", url],
                          capture_output=True, text=True, timeout=30)
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line or "Error:" in line]
    assert (done.returncode, errors) == (1, [
        f"Error: cannot reach Redis at {password_server.url}: it refused the user name and "
        "password given (invalid username-password pair or user is disabled.); check them "
        "in --redis, RESQUE_REDIS or REDIS_URL (they are never shown here)"])


def test_an_app_that_raises_while_loading_is_one_line_naming_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "boom_app.py").write_text("import os\n\nLIMIT = 1 / 0\n")
    monkeypatch.chdir(tmp_path)
    result = invoke("delayed", "remove", "X", "--app", "boom_app", "--redis", "127.0.0.1:1")
    assert (result.exit_code, last_line(result)) == (1, (
        "Error: --app boom_app raised ZeroDivisionError while loading: division by zero "
        f"({tmp_path / 'boom_app.py'}, line 3)"))


@pytest.mark.parametrize(
    ("args_json", "error"),
    [
        ("[NaN]", "NaN is not a JSON number"),
        ("[1e999]", "number 1e999 is too large for a float"),
        ('["\\udc00"]', "a \\u escape names half a surrogate pair, not a character"),
        ("[" * 30_000 + "]" * 30_000, "JSON nested too deeply to decode"),
    ],
)
def test_enqueue_refuses_args_no_job_could_take(
    r: redis.Redis, redis_url: str, args_json: str, error: str
) -> None:
    result = invoke("enqueue", "q", "X", args_json, "--redis", redis_url)
    assert (result.exit_code, last_line(result)) == (
        2, f"Error: ARGS_JSON is not JSON a job can take: {error}")
    assert r.keys("*") == []


def test_enqueue_to_a_queue_no_worker_could_select_is_a_usage_error(
    r: redis.Redis, redis_url: str
) -> None:
    result = invoke("enqueue", "a,b", "X", "[]", "--redis", redis_url)
    assert (result.exit_code, last_line(result)) == (2, (
        "Error: queue name 'a,b' contains a comma, which separates queue names in a worker's "
        "-q"))
    assert r.keys("*") == []


# --- process titles: a password given in --redis never shows in ps --------------------------


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts (each in its own session); killed with their children after."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def settled_title(process: subprocess.Popen[bytes], timeout: float = 20.0) -> str:
    """The process's title once it no longer shows its command line."""
    deadline = time.monotonic() + timeout
    while True:
        title = title_of(process.pid)
        if title and "--redis" not in title:
            return title
        assert process.poll() is None, f"exited with {process.returncode} before retitling"
        assert time.monotonic() < deadline, f"still titled {title!r} after {timeout}s"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("verb", "title"),
    [(["queues"], "resque queues"), (["failed", "list"], "resque failed"),
     (["enqueue", "q", "X"], "resque enqueue"), (["delayed", "list"], "resque delayed"),
     (["schedule", "list"], "resque schedule"), (["prune"], "resque prune")],
    ids=lambda value: value if isinstance(value, str) else value[0],
)
def test_a_verb_waiting_for_redis_is_titled_without_its_command_line(
    started: list[subprocess.Popen[bytes]], verb: list[str], title: str
) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"  # nothing listens: the verb waits
    started.append(subprocess.Popen(
        [sys.executable, "-m", "resque", *verb, "--redis", url], start_new_session=True,
        env={**os.environ, "RESQUE_REDIS_WAIT": "60"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    assert settled_title(started[-1]) == title


@pytest.mark.parametrize("verb", [["scheduler"], ["web", "--port", "0"], ["pool", "-w", "a"],
                                  ["metrics", "--port", "0"]],
                         ids=lambda verb: verb[0])
def test_a_long_running_verb_never_shows_the_password_in_its_title(
    started: list[subprocess.Popen[bytes]], verb: list[str]
) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    started.append(subprocess.Popen(
        [sys.executable, "-m", "resque", *verb, "--redis", url], start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    assert PASSWORD not in settled_title(started[-1])


def test_an_error_no_verb_expected_is_still_one_line_with_exit_status_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> None:
        raise RuntimeError("kaput")

    monkeypatch.setitem(main.commands, "broken", click.Command("broken", callback=broken))
    result = invoke("broken")
    assert (result.exit_code, last_line(result)) == (
        1, "Error: RuntimeError: kaput (VVERBOSE=1 shows where)")


# --- RESQUE_LOG_FORMAT (the worker's JSON lines) read by every verb -------------------------

BAD_FORMAT = "Error: RESQUE_LOG_FORMAT is one of text, json, not 'xml'"


@pytest.mark.parametrize("verb", [["queues"], ["workers"], ["failed", "list"], ["recover", "x"],
                                  ["web", "--port", "0"], ["scheduler"],
                                  ["metrics", "--port", "0"]],
                         ids=lambda verb: verb[0])
def test_a_log_format_that_cannot_be_read_is_a_usage_error_of_one_line(verb: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "resque", *verb, "--redis", "redis://127.0.0.1:1/0"],
        env={**os.environ, "RESQUE_LOG_FORMAT": "xml", "RESQUE_REDIS_WAIT": "0"},
        capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stderr.strip().splitlines()[-1]) == (2, BAD_FORMAT)
    assert "Traceback" not in done.stderr


def test_resque_work_refuses_a_log_format_it_cannot_read_as_its_option() -> None:
    result = invoke("work", "-q", "a", env={"RESQUE_LOG_FORMAT": "xml"})
    assert (result.exit_code, last_line(result)) == (
        2, "Error: Invalid value for '--log-format': 'xml' is not one of 'text', 'json'.")


def test_another_error_is_still_its_own_line_when_the_log_format_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> None:
        raise RuntimeError("kaput")

    monkeypatch.setitem(main.commands, "broken", click.Command("broken", callback=broken))
    result = invoke("broken", env={"RESQUE_LOG_FORMAT": "xml"})
    assert (result.exit_code, last_line(result)) == (
        1, "Error: RuntimeError: kaput (VVERBOSE=1 shows where)")
