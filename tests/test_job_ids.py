"""Job ids and keyword arguments: the payload they make, and their round trip through every way
a worker performs a job (a forked child, the fork server's child, in process, threads, an
``async def`` job on the shared loop) and through an inline client.

Each job reads its own id with ``resque.current_job()`` and reports what it received
(tests/support/apps/taskapp.py), so the tests compare what was enqueued with what the job saw.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import redis
import taskapp
from support.workerkit import Workers

import resque
from resque import Resque, ids, layout
from resque.testing import TestResque

ID = re.compile(r"^[0-9a-f]{16}-[0-9a-f]+$")


@pytest.fixture
def client(r: redis.Redis) -> Resque:
    return Resque(r)


def queued(r: redis.Redis, queue: str = "tasks") -> list[bytes]:
    found: list[bytes] = r.lrange(f"resque:queue:{queue}", 0, -1)  # type: ignore[assignment]
    return found


# --- the payload ----------------------------------------------------------------------------------


def test_an_enqueued_job_carries_its_id_after_class_and_args(
    client: Resque, r: redis.Redis
) -> None:
    handle = client.enqueue(taskapp.echo, "a", 1)
    assert handle is not None and handle.id is not None
    assert ID.match(handle.id)
    assert queued(r) == [f'{{"class":"taskapp.echo","args":["a",1],"id":"{handle.id}"}}'.encode()]
    assert handle.payload.encode() == queued(r)[0]


def test_ids_are_unique_within_a_process(client: Resque) -> None:
    handles = [client.enqueue(taskapp.echo, "a") for _ in range(1000)]
    assert len({handle.id for handle in handles if handle}) == 1000


def test_a_forked_child_draws_a_new_id_prefix(tmp_path: Path) -> None:
    import os

    parent = ids.new_id().split("-")[0]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its first id and leave
        os.write(write, ids.new_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert child.split("-")[0] != parent
    assert child.endswith("-1")


def test_job_ids_off_writes_rubys_exact_payload(r: redis.Redis) -> None:
    handle = Resque(r, job_ids=False).enqueue(taskapp.echo, "a", 1)
    assert handle is not None and handle.id is None
    assert queued(r) == [b'{"class":"taskapp.echo","args":["a",1]}']


def test_the_environment_turns_job_ids_off(r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESQUE_JOB_IDS", "0")
    Resque(r).enqueue(taskapp.echo, "a")
    assert queued(r) == [b'{"class":"taskapp.echo","args":["a"]}']


def test_enqueue_many_gives_each_job_an_id(client: Resque, r: redis.Redis) -> None:
    assert client.enqueue_many(taskapp.echo, [["a"], ["b"]]) == 2
    found = [json.loads(raw)["id"] for raw in queued(r)]
    assert len(set(found)) == 2 and all(ID.match(job_id) for job_id in found)


def test_keywords_are_the_last_element_of_args_with_the_marker_first(
    client: Resque, r: redis.Redis
) -> None:
    handle = client.enqueue(taskapp.echo, "a", 1, 2, locale="sv", size=3)
    assert handle is not None
    assert queued(r) == [(
        '{"class":"taskapp.echo","args":["a",1,2,{"__kwargs__":true,"locale":"sv","size":3}],'
        f'"id":"{handle.id}"}}').encode()]
    assert handle.args == ["a", 1, 2]
    assert handle.kwargs == {"locale": "sv", "size": 3}


def test_a_positional_dict_carrying_the_marker_is_refused(client: Resque, r: redis.Redis) -> None:
    with pytest.raises(ValueError, match="marks keyword arguments"):
        client.enqueue(taskapp.echo, "a",  # type: ignore[call-overload]
                       {"__kwargs__": True, "locale": "sv"})
    assert r.keys("*") == []


def test_a_positional_dict_without_the_marker_stays_positional(
    client: Resque, r: redis.Redis
) -> None:
    client.enqueue_to("tasks", "Ruby::Job", {"locale": "sv"})
    payload = layout.decode_job(queued(r)[0], "tasks")
    assert layout.split_kwargs(payload["args"]) == ([{"locale": "sv"}], {})


def test_a_marker_that_is_not_true_leaves_the_dict_positional() -> None:
    assert layout.split_kwargs([1, {"__kwargs__": 1, "a": 2}]) == ([1, {"__kwargs__": 1, "a": 2}],
                                                                   {})


# --- the round trip -----------------------------------------------------------------------------

CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    (("plain",), {}),
    (("numbers", 1, 2, 3), {}),
    (("keywords",), {"locale": "sv", "size": 3, "nested": {"a": [1.5, None]}}),
    (("both", 7), {"locale": "de"}),
]


def expected(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    extra = {k: v for k, v in kwargs.items() if k != "locale"}
    return {"tag": args[0], "numbers": list(args[1:]), "locale": kwargs.get("locale", "en"),
            "extra": extra}


def enqueue_all(client: Resque) -> list[str]:
    handles = [taskapp.echo.options(client=client).enqueue(*args, **kwargs)
               for args, kwargs in CALLS]
    return [handle.id for handle in handles if handle and handle.id]


def seen(r: redis.Redis) -> list[dict[str, Any]]:
    keep = ("tag", "numbers", "locale", "extra")
    return [{k: entry[k] for k in keep} for entry in taskapp.log(r)]


@pytest.mark.parametrize("mode", [
    pytest.param([], id="fork-server"),
    pytest.param(["--no-fork"], id="in-process"),
    pytest.param(["-c", "3"], id="threads"),
])
def test_ids_and_keywords_reach_the_job_in_every_mode(
    client: Resque, r: redis.Redis, workers: Workers, mode: list[str]
) -> None:
    job_ids = enqueue_all(client)
    workers.run("tasks", "--app", "taskapp", *mode, env={"TASKAPP_REDIS": workers.redis_url})
    log = taskapp.log(r)
    assert sorted(entry["id"] for entry in log) == sorted(job_ids)
    by_id = {entry["id"]: entry for entry in log}
    for job_id, (args, kwargs) in zip(job_ids, CALLS, strict=True):
        entry = by_id[job_id]
        assert {k: entry[k] for k in ("tag", "numbers", "locale", "extra")} == expected(
            args, kwargs)


def test_ids_and_keywords_reach_a_directly_forked_child(
    client: Resque, r: redis.Redis, workers: Workers
) -> None:
    job_ids = enqueue_all(client)
    workers.run("tasks", "--app", "taskapp",
                env={"TASKAPP_REDIS": workers.redis_url, "RESQUE_FORK_SERVER": "0"})
    assert [entry["id"] for entry in taskapp.log(r)] == job_ids
    assert seen(r) == [expected(args, kwargs) for args, kwargs in CALLS]


def test_an_async_job_reads_its_id_on_the_threads_shared_loop(
    client: Resque, r: redis.Redis, workers: Workers
) -> None:
    handles = [client.enqueue(taskapp.aecho, f"t{n}", locale="fi") for n in range(6)]
    workers.run("tasks", "--app", "taskapp", "-c", "3", env={"TASKAPP_REDIS": workers.redis_url})
    log = taskapp.log(r)
    assert sorted((entry["id"], entry["tag"], entry["locale"]) for entry in log) == sorted(
        (handle.id, f"t{n}", "fi") for n, handle in enumerate(handles) if handle)


def test_an_async_job_reads_its_id_in_a_forked_child(
    client: Resque, r: redis.Redis, workers: Workers
) -> None:
    handle = client.enqueue(taskapp.aecho, "forked", locale="fi")
    workers.run("tasks", "--app", "taskapp", env={"TASKAPP_REDIS": workers.redis_url})
    assert [(e["id"], e["mode"], e["locale"]) for e in taskapp.log(r)] == [
        (handle.id if handle else None, "async", "fi")]


def test_an_in_process_worker_performs_keywords_and_ids(
    client: Resque, r: redis.Redis, taskapp_redis: str
) -> None:
    job_ids = enqueue_all(client)
    resque.Worker(["tasks"], resque=client, fork=False, burst=True).work()
    assert [entry["id"] for entry in taskapp.log(r)] == job_ids
    assert seen(r) == [expected(args, kwargs) for args, kwargs in CALLS]


def test_an_inline_client_performs_keywords_and_reads_the_id(
    r: redis.Redis, taskapp_redis: str
) -> None:
    inline = Resque(r, inline=True)
    handle = taskapp.echo.options(client=inline).enqueue("now", 5, locale="sv")
    assert handle is not None
    assert [(e["id"], e["numbers"], e["locale"]) for e in taskapp.log(r)] == [
        (handle.id, [5], "sv")]
    assert r.keys("resque:*") == []


def test_a_class_job_takes_keywords(resque_client: TestResque, r: redis.Redis,
                                    taskapp_redis: str) -> None:
    handle = resque_client.enqueue(taskapp.Add, 2, 3, times=4)
    assert resque_client.drain().processed == 1
    assert [(e["id"], e["a"], e["b"], e["times"]) for e in taskapp.log(r)] == [
        (handle.id if handle else None, 2, 3, 4)]


def test_hooks_receive_the_keywords_as_keywords(r: redis.Redis, taskapp_redis: str) -> None:
    registry = resque.Registry()
    calls: list[Any] = []

    @resque.job(queue="q", name="kw.hooked", registry=registry)
    def hooked(a: int, *, b: int = 0) -> None:
        calls.append(("perform", a, b))

    for kind in ("before_enqueue", "after_enqueue", "before_perform", "after_perform"):
        hooked.hook(kind)(lambda a, *, b=0, kind=kind: calls.append((kind, a, b)))
    client = Resque(r, registry=registry)
    client.enqueue(hooked, 1, b=2)
    resque.Worker(["q"], resque=client, fork=False, burst=True).work()
    assert calls == [("before_enqueue", 1, 2), ("after_enqueue", 1, 2),
                     ("before_perform", 1, 2), ("perform", 1, 2), ("after_perform", 1, 2)]


def test_current_job_outside_a_job_raises() -> None:
    with pytest.raises(RuntimeError, match="only available while a job is performed"):
        resque.current_job()
