"""Mistakes caught where they are made (issue 11): at enqueue, before anything is written,
with the fix in the message; and, on the worker's side, a near miss named in the failure.
"""

from __future__ import annotations

import datetime
import decimal
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import taskapp
from click.testing import CliRunner

import resque
from resque import Resque, layout
from resque.cli import main


@pytest.fixture
def client(r: redis.Redis) -> Resque:
    return Resque(r)


# --- jobs a worker could not import -------------------------------------------------------------


def test_a_lambda_is_refused_with_the_fix(client: Resque, r: redis.Redis) -> None:
    job = resque.job(queue="q", registry=resque.Registry())(lambda x: x)
    with pytest.raises(TypeError, match=r"is a lambda.*@resque\.job\(name=\.\.\.\)"):
        client.enqueue(job, 1)
    assert r.keys("*") == []


def test_a_nested_function_is_refused_with_the_fix(client: Resque, r: redis.Redis) -> None:
    @resque.job(queue="q", registry=resque.Registry())
    def inner(x: int) -> None:
        pass

    with pytest.raises(TypeError, match=r"inner is defined inside a function, so a worker "
                                        r"cannot import it: define it at the top level"):
        client.enqueue(inner, 1)
    assert r.keys("*") == []


def test_a_nested_class_passed_directly_is_refused(client: Resque) -> None:
    class Local:
        queue = "q"

        @staticmethod
        def perform() -> None:
            pass

    with pytest.raises(TypeError, match="Local is defined inside a function"):
        client.enqueue(Local)


def test_a_nested_function_registered_under_a_name_is_allowed(client: Resque,
                                                               r: redis.Redis) -> None:
    @resque.job(queue="q", name="Named::Inner", registry=resque.Registry())
    def inner(x: int) -> None:
        pass

    assert client.enqueue(inner, 1) is not None
    assert layout.decode(r.lindex("resque:queue:q", 0) or b"")["class"] == "Named::Inner"


MAIN_SCRIPT = """
import resque

@resque.job(queue="q")
def send(x: int) -> None:
    pass

@resque.job(queue="q", name="Main::Named")
def named(x: int) -> None:
    pass

client = resque.Resque()
client.enqueue(named, 1)
send.enqueue(2)
"""


def test_a_function_from_main_is_refused_but_a_named_one_is_queued(
    r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "script.py"
    script.write_text(MAIN_SCRIPT)
    env = {**os.environ, "RESQUE_REDIS": redis_url}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "TypeError: __main__.send is defined in __main__ (the script being run), which a "
        "worker does not import under that name: define it at the top level of a module the "
        "worker imports (resque work --app myapp.jobs), or register it under an explicit name "
        "with @resque.job(name=...) in code the worker also loads")
    assert [layout.decode(raw)["class"] for raw in r.lrange("resque:queue:q", 0, -1)] == [
        "Main::Named"]


# --- arguments JSON cannot carry ---------------------------------------------------------------


@pytest.mark.parametrize(("value", "kind", "problem", "hint"), [
    (datetime.datetime(2026, 1, 2, 3, 4), TypeError, "a datetime.datetime",
     "pass a.isoformat() and parse it in the job"),
    ({"x", "y"}, TypeError, "a set", "pass sorted(a) (a list)"),
    (b"raw", TypeError, "a bytes", "pass text: a.decode() or base64"),
    (float("nan"), ValueError, "nan is not a JSON number", "pass None or a finite number: "
     "JSON has no NaN or infinity"),
    (float("-inf"), ValueError, "-inf is not a JSON number", "pass None or a finite number: "
     "JSON has no NaN or infinity"),
    (decimal.Decimal("1.5"), TypeError, "a decimal.Decimal", "pass str(a)"),
])
def test_an_argument_json_cannot_carry_is_named_before_anything_is_written(
    client: Resque, r: redis.Redis, value: Any, kind: type, problem: str, hint: str
) -> None:
    with pytest.raises(kind) as raised:
        client.enqueue(taskapp.Add, value, 2)
    message = str(raised.value)
    assert message.startswith(f"argument 0 (a) of taskapp.Add cannot travel as JSON: {problem} (")
    assert message.endswith(f"); {hint}")
    assert r.keys("*") == []


def test_an_argument_of_star_args_is_named_by_it(client: Resque) -> None:
    with pytest.raises(TypeError, match=r"^argument 2 \(\*numbers\) of taskapp\.echo cannot "
                                        r"travel as JSON: a set \(\{3\}\); pass sorted\(it\)"):
        client.enqueue(taskapp.echo, "tag", 1, {3})  # type: ignore[call-overload]


def test_a_keyword_json_cannot_carry_is_named(client: Resque, r: redis.Redis) -> None:
    with pytest.raises(TypeError, match=r"^keyword argument locale of taskapp\.echo cannot "
                                        r"travel as JSON: a set"):
        client.enqueue(taskapp.echo, "tag", locale={"sv"})  # type: ignore[arg-type]
    assert r.keys("*") == []


def test_a_value_deep_inside_an_argument_is_found(client: Resque) -> None:
    with pytest.raises(TypeError, match=r"^argument 0 \(tag\) of taskapp\.echo cannot travel "
                                        r"as JSON: a datetime\.date "):
        client.enqueue(taskapp.echo,  # type: ignore[call-overload]
                       {"when": [1, {"at": datetime.date(2026, 1, 1)}]})


def test_a_lone_surrogate_is_named(client: Resque) -> None:
    with pytest.raises(ValueError, match=r"^argument 0 \(tag\) of taskapp\.echo cannot travel "
                                         r"as JSON: a string with a lone surrogate"):
        client.enqueue(taskapp.echo, "bad \udc80")


# --- a worker that cannot find the job ----------------------------------------------------------


def run_worker(client: Resque, queue: str) -> list[dict[str, Any]]:
    resque.Worker([queue], resque=client, fork=False, burst=True).work()
    return [json.loads(raw) for raw in client.redis.lrange("resque:failed", 0, -1)]


def test_an_unknown_job_name_suggests_the_registered_one_it_resembles(
    client: Resque, quiet_title: None
) -> None:
    client.enqueue_to("tasks", "taskapp.ecko", "x")
    (failure,) = run_worker(client, "tasks")
    assert failure["exception"] == "Resque::JobForbidden"
    assert failure["error"].startswith(
        "job class 'taskapp.ecko' is not registered (did you mean taskapp.echo?) and its "
        "module is not under an allowed prefix")


def test_a_ruby_style_name_that_is_a_near_miss_is_suggested(r: redis.Redis,
                                                          quiet_title: None) -> None:
    registry = resque.Registry()
    registry.register(taskapp.Add, name="Mailer::Welcome")
    client = Resque(r, registry=registry)
    client.enqueue_to("mail", "Mailer::Welcom", 1)
    (failure,) = run_worker(client, "mail")
    assert (failure["exception"], failure["error"]) == (
        "Resque::JobNotFound",
        "no job is registered as 'Mailer::Welcom' (did you mean Mailer::Welcome?); register it "
        "with @resque.job(name='Mailer::Welcom') in the module the worker loads with --app")


def test_a_job_whose_module_moved_is_suggested_by_its_own_name(r: redis.Redis,
                                                              quiet_title: None) -> None:
    client = Resque(r, allowed_modules=["taskapp"])
    client.enqueue_to("tasks", "taskapp.old.echo", 1)
    (failure,) = run_worker(client, "tasks")
    assert failure["exception"] == "Resque::JobNotFound"
    assert failure["error"] == (
        "cannot find 'taskapp.old.echo': no such attribute in a module that is imported (did "
        "you mean taskapp.echo?); a payload never causes an import: import the module with "
        "--app, or name it in allowed_modules / RESQUE_JOB_MODULES")


def test_a_name_like_nothing_registered_gets_no_suggestion(client: Resque,
                                                           quiet_title: None) -> None:
    client.enqueue_to("mail", "Zzz::Qqq", 1)
    (failure,) = run_worker(client, "mail")
    assert "did you mean" not in failure["error"]


# --- resque enqueue with nobody listening --------------------------------------------------------


def enqueue_cli(redis_url: str, queue: str) -> Any:
    return CliRunner().invoke(main, ["enqueue", queue, "Mailer", "[1]", "--redis", redis_url])


def register(r: redis.Redis, worker: str, beat_age: float | None) -> None:
    r.sadd("resque:workers", worker)
    if beat_age is not None:
        seen = datetime.datetime.fromtimestamp(time.time() - beat_age).astimezone()
        r.hset("resque:workers:heartbeat", worker, seen.isoformat(timespec="seconds"))


def test_resque_enqueue_warns_when_no_worker_serves_the_queue(r: redis.Redis,
                                                              redis_url: str) -> None:
    register(r, "elsewhere:1:other", beat_age=0)
    result = enqueue_cli(redis_url, "mail")
    assert result.exit_code == 0
    assert result.stdout == "enqueued Mailer to mail\n"
    assert result.stderr.startswith("warning: no live worker takes jobs from 'mail', so the "
                                    "job waits there until one starts")
    assert r.llen("resque:queue:mail") == 1


@pytest.mark.parametrize("worker", ["host:2:mail", "host:3:high,mail", "host:4:*",
                                    "host:5:ma*"])
def test_resque_enqueue_is_quiet_when_a_live_worker_serves_the_queue(
    r: redis.Redis, redis_url: str, worker: str
) -> None:
    register(r, worker, beat_age=5)
    result = enqueue_cli(redis_url, "mail")
    assert (result.exit_code, result.stderr) == (0, "")


def test_a_worker_with_a_stale_heartbeat_does_not_count(r: redis.Redis, redis_url: str) -> None:
    register(r, "host:6:mail", beat_age=3600)
    assert enqueue_cli(redis_url, "mail").stderr.startswith("warning: no live worker")


def test_a_worker_that_never_wrote_a_heartbeat_counts_as_live(r: redis.Redis,
                                                              redis_url: str) -> None:
    register(r, "old-ruby:7:mail", beat_age=None)  # an older Ruby, or Perl: no heartbeats
    assert enqueue_cli(redis_url, "mail").stderr == ""
