"""A concurrent worker (``-c N``) awaits plain ``async def`` jobs on its event loop, the
batch's in one hand-off (``execution/aio.py``); jobs with hooks, plain jobs and payloads it
cannot read go to the job threads, from the same reservation, with the same acknowledgements."""

from __future__ import annotations

import gc
import re

import redis
from support.workerkit import Workers, failures, notes, push

from resque import Resque, Worker
from resque.durations import read_durations
from resque.status import JobStatus


def test_hookless_async_jobs_all_run_on_the_loop_and_none_on_a_job_thread(
    r: redis.Redis, workers: Workers
) -> None:
    Resque(r).enqueue_many("AioPool", [[f"p{i}"] for i in range(4)], queue="low")
    workers.run("low", "-c", "4", "--app", "aioapp")
    assert sorted(notes(r)) == [f"pool:p{i}:resque-loop" for i in range(4)]


def test_hookless_async_jobs_are_awaited_on_the_loop_and_the_rest_on_job_threads(
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


# --- where main's typed tasks, job ids, statuses and job timing meet the loop's jobs ---------


def test_an_awaited_job_reads_its_id_and_keywords_and_a_tracked_one_gets_its_status(
    r: redis.Redis, workers: Workers
) -> None:
    """``current_job()`` on the loop as on a thread; a tracked job (``status=True``) goes
    to a job thread, where its start, progress and result are recorded."""
    client = Resque(r)
    plain = [client.enqueue_to("low", "AioCurrent", f"c{i}", locale="fi") for i in range(3)]
    tracked = client.enqueue_call("AioTracked", ["t0"], {}, queue="low", status=True)
    workers.run("low", "-c", "4", "--app", "aioapp")
    assert tracked is not None and all(plain)
    assert sorted(notes(r)) == sorted(
        [f"current:c{i}:fi:{handle.id}:True:False:resque-loop"
         for i, handle in enumerate(plain) if handle]
        + [f"tracked:t0:{tracked.id}:True:resque-loop"])
    record = tracked.info()
    assert record is not None
    assert (tracked.result(timeout=5), record.status, record.num, record.total,
            record.message, record.started_at is not None) == (
        "done t0", JobStatus.FINISHED, 1, 2, "halfway", True)


def test_awaited_jobs_are_timed_into_the_duration_histograms(
    r: redis.Redis, resque: Resque, workers: Workers
) -> None:
    """``--job-metrics``: a job awaited on the loop is counted as one on a thread is, a
    failure as a failure."""
    for i in range(3):
        resque.enqueue_to("low", "AioPool", f"p{i}")
    resque.enqueue_to("low", "AioFail", "f0")
    workers.run("low", "-c", "4", "--app", "aioapp", "--job-metrics")
    series = {s.class_name: (s.count, s.failed) for s in read_durations(r, resque.keys)}
    assert (sorted(notes(r)), series) == (
        [f"pool:p{i}:resque-loop" for i in range(3)], {"AioPool": (3, 0), "AioFail": (1, 1)})


def test_an_awaited_job_given_keywords_it_does_not_take_fails_and_names_them(
    r: redis.Redis, workers: Workers
) -> None:
    Resque(r).enqueue_to("low", "AioCurrent", "k0", region="eu")
    workers.run("low", "-c", "2", "--app", "aioapp")
    (failure,) = failures(r)
    assert (failure["exception"], "region" in failure["error"], notes(r)) == (
        "TypeError", True, [])


def test_an_awaited_job_gets_its_line_named_by_its_id_as_a_job_on_a_thread_does(
    r: redis.Redis, workers: Workers
) -> None:
    client = Resque(r)
    ok, bad = client.enqueue_to("low", "AioTag", "a"), client.enqueue_to("low", "AioFail", "b")
    assert ok is not None and bad is not None and ok.id and bad.id
    text = workers.run("low", "-c", "2", "--app", "aioapp").output()
    assert (re.search(rf"INFO: job AioTag \(id {re.escape(ok.id)}\) from low: ok in ", text)
            is not None,
            re.search(rf"WARNING: job AioFail \(id {re.escape(bad.id)}\) from low: failed in "
                      r"[\d.]+ ms: ValueError: aio failed: b", text) is not None) == (True, True)


def test_four_awaited_jobs_on_four_places_wait_together(r: redis.Redis, workers: Workers) -> None:
    Resque(r).enqueue_many("AioTogether", [[f"t{i}"] for i in range(4)], queue="low")
    workers.run("low", "-c", "4", "--app", "aioapp")
    assert sorted(notes(r)) == [f"together:t{i}:4:resque-loop" for i in range(4)]


def test_an_in_process_threaded_worker_closes_its_loop(
    r: redis.Redis, in_process: None
) -> None:
    """A ``Worker(concurrency=N)`` run inside a process (a test, an app) closes the loop it
    awaited jobs on when it ends: left open, its selector and self-pipe are collected with a
    ResourceWarning (an error here)."""
    import aioapp  # registers the Aio* jobs in this process

    assert aioapp.aio_pool is not None
    Resque(r).enqueue_many("AioPool", [["p0"], ["p1"]], queue="low")
    worker = Worker(["low"], resque=Resque(r), fork=False, burst=True, concurrency=2)
    worker.work()
    gc.collect()  # an unclosed loop would warn now, inside this test
    assert sorted(notes(r)) == ["pool:p0:resque-loop", "pool:p1:resque-loop"]
