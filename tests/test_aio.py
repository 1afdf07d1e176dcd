"""A concurrent worker (``-c N``) awaits plain ``async def`` jobs on its event loop, the
batch's in one hand-off (``execution/aio.py``); jobs with hooks, plain jobs and payloads it
cannot read go through the thread pool, in the same batch, with the same acknowledgements."""

from __future__ import annotations

import redis
from support.workerkit import Workers, failures, notes, push

from resque import Resque


def test_a_batch_of_hookless_async_jobs_never_uses_a_pool_thread(
    r: redis.Redis, workers: Workers
) -> None:
    Resque(r).enqueue_many("AioPool", [[f"p{i}"] for i in range(4)], queue="low")
    workers.run("low", "-c", "4", "--app", "aioapp")
    assert sorted(notes(r)) == [f"pool:p{i}:0:resque-loop" for i in range(4)]


def test_hookless_async_jobs_are_awaited_on_the_loop_and_the_rest_on_the_pool(
    r: redis.Redis, workers: Workers
) -> None:
    client = Resque(r)
    for i in range(3):
        client.enqueue_to("low", "AioTag", f"a{i}")
    client.enqueue_to("low", "SyncTag", "s0")
    client.enqueue_to("low", "AioHooked", "h0")
    workers.run("low", "-c", "5", "--app", "aioapp")
    assert (sorted(notes(r)), r.get("resque:stat:processed"), failures(r)) == (
        ["aio:a0:resque-loop", "aio:a1:resque-loop", "aio:a2:resque-loop",
         "before:h0:resque-job", "hooked:h0:resque-loop", "sync:s0:resque-job"], b"5", [])


def test_an_async_job_that_raises_or_gets_wrong_args_is_recorded_as_failed(
    r: redis.Redis, workers: Workers
) -> None:
    client = Resque(r)
    client.enqueue_to("low", "AioFail", "f0")
    client.enqueue_to("low", "AioTag", "one", "too many")
    push(r, "low", "NoSuchJob", "x")
    client.enqueue_to("low", "AioTag", "ok")
    workers.run("low", "-c", "4", "--app", "aioapp")
    found = [(f["exception"], f["payload"]["class"]) for f in failures(r)]
    assert (sorted(found), notes(r), r.get("resque:stat:processed"),
            r.get("resque:stat:failed")) == (
        [("Resque::JobNotFound", "NoSuchJob"), ("TypeError", "AioTag"), ("ValueError", "AioFail")],
        ["aio:ok:resque-loop"], b"4", b"3")

