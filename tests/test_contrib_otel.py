"""resque.contrib.otel: the job's consumer span is a child of its enqueue's producer span, in
this process and across a fork (the SDK's in-memory exporter here, a file from the worker's
children), with messaging attributes; the trace context rides in the payload, and the real
Ruby and Perl workers still perform such a job."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode
from support.peers import perl, ran, require_perl_resque, require_ruby_resque, ruby
from support.workerkit import Workers

import resque
from resque import layout, tracing
from resque.aio import AsyncResque
from resque.contrib import otel


@resque.job(queue="otel", name="test_contrib_otel.add")
def add(a: int, b: int) -> int:
    return a + b


@resque.job(queue="otel", name="test_contrib_otel.explode")
def explode() -> None:
    raise ValueError("kaboom")


def mark() -> None:
    """The job's consumer span is current in its code: it gets the thread's name."""
    trace.get_current_span().set_attribute("test.thread", threading.current_thread().name)


@resque.job(queue="otel", name="test_contrib_otel.marked")
def marked(n: int) -> int:
    mark()
    return n


@resque.job(queue="otel", name="test_contrib_otel.amarked")
async def amarked(n: int) -> int:
    await asyncio.sleep(0.01)
    mark()
    return n


@resque.job(queue="otel", name="test_contrib_otel.aexplode")
async def aexplode() -> None:
    await asyncio.sleep(0)
    raise ValueError("async kaboom")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel.instrument(provider)
    yield exporter
    otel.uninstrument()


def work(client: resque.Resque, queue: str = "otel") -> None:
    resque.Worker([queue], resque=client, fork=False, burst=True).work()


def one(exporter: InMemorySpanExporter, kind: SpanKind) -> ReadableSpan:
    (span,) = [s for s in exporter.get_finished_spans() if s.kind is kind]
    return span


def ids(span: ReadableSpan) -> tuple[int, int]:
    assert span.context is not None
    return span.context.trace_id, span.context.span_id


def test_the_perform_span_is_a_child_of_the_enqueue_span_in_process(
    r: redis.Redis, spans: InMemorySpanExporter
) -> None:
    client = resque.Resque(r)
    handle = client.enqueue(add, 1, 2)
    assert handle is not None
    work(client)

    producer, consumer = one(spans, SpanKind.PRODUCER), one(spans, SpanKind.CONSUMER)
    trace_id, span_id = ids(producer)
    assert (producer.name, consumer.name) == ("send otel", "process otel")
    assert consumer.parent is not None
    assert (ids(consumer)[0], consumer.parent.span_id) == (trace_id, span_id)
    assert dict(producer.attributes or {}) == {
        "messaging.system": "resque", "messaging.operation.type": "send",
        "messaging.operation.name": "enqueue", "messaging.destination.name": "otel",
        "messaging.message.id": handle.id, "resque.job.class": "test_contrib_otel.add",
        "server.address": "127.0.0.1", "server.port": r.connection_pool.connection_kwargs["port"],
        "messaging.message.body.size": len(handle.payload.encode())}
    attributes = dict(consumer.attributes or {})
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["messaging.message.id"] == handle.id
    assert str(attributes["messaging.client.id"]).endswith(":otel")
    assert consumer.status.status_code is StatusCode.UNSET


def test_the_trace_context_is_the_payloads_last_key(r: redis.Redis,
                                                     spans: InMemorySpanExporter) -> None:
    handle = resque.Resque(r).enqueue(add, 1, 2)
    assert handle is not None
    (item,) = r.lrange("resque:queue:otel", 0, -1)
    raw = item if isinstance(item, bytes) else item.encode()
    assert raw.decode() == handle.payload
    producer = one(spans, SpanKind.PRODUCER)
    trace_id, span_id = ids(producer)
    assert producer.context is not None
    flags = int(producer.context.trace_flags)
    assert raw.decode() == (
        f'{{"class":"test_contrib_otel.add","args":[1,2],"id":"{handle.id}",'
        f'"trace":{{"traceparent":"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"}}}}')


def test_a_failing_job_ends_its_span_with_the_error(r: redis.Redis,
                                                    spans: InMemorySpanExporter) -> None:
    client = resque.Resque(r)
    client.enqueue(explode)
    work(client)
    consumer = one(spans, SpanKind.CONSUMER)
    assert consumer.status.status_code is StatusCode.ERROR
    assert [(e.name, (e.attributes or {}).get("exception.message")) for e in consumer.events] == [
        ("exception", "kaboom")]
    assert r.llen("resque:failed") == 1


def test_a_delayed_job_keeps_its_trace_through_the_schedule(
    r: redis.Redis, spans: InMemorySpanExporter
) -> None:
    client = resque.Resque(r)
    when = int(time.time()) + 3600
    client.enqueue_at(when, add, 3, 4)
    client.delayed.move_due(now=when)
    work(client)
    producer, consumer = one(spans, SpanKind.PRODUCER), one(spans, SpanKind.CONSUMER)
    assert producer.name == "send otel"
    assert consumer.parent is not None and consumer.parent.span_id == ids(producer)[1]


def test_a_delayed_job_due_at_once_has_one_producer_span(
    r: redis.Redis, spans: InMemorySpanExporter
) -> None:
    handle = resque.Resque(r).enqueue_at(int(time.time()) - 5, add, 1, 1)
    assert handle is not None
    one(spans, SpanKind.PRODUCER)
    assert handle.payload.count('"trace":') == 1


def test_the_asyncio_client_traces_its_enqueue(r: redis.Redis, redis_url: str,
                                               spans: InMemorySpanExporter) -> None:
    async def enqueue() -> None:
        client = AsyncResque(redis_url)
        await client.enqueue(add, 2, 2)
        await client.aclose()

    asyncio.run(enqueue())
    work(resque.Resque(r))
    producer, consumer = one(spans, SpanKind.PRODUCER), one(spans, SpanKind.CONSUMER)
    assert consumer.parent is not None and consumer.parent.span_id == ids(producer)[1]


def test_untraced_enqueues_carry_no_trace(r: redis.Redis) -> None:
    assert tracing.tracer is None
    resque.Resque(r).enqueue(add, 1, 2)
    (raw,) = r.lrange("resque:queue:otel", 0, -1)
    assert layout.JOB_TRACE not in json.loads(raw)


# --- a -c N worker: jobs on its threads, and async def jobs awaited on its loop ----------------


def by_message(exporter: InMemorySpanExporter, kind: SpanKind) -> dict[str, ReadableSpan]:
    spans = [s for s in exporter.get_finished_spans() if s.kind is kind]
    found = {str((s.attributes or {})["messaging.message.id"]): s for s in spans}
    assert len(found) == len(spans)
    return found


def thread_kind(span: ReadableSpan) -> str:
    """``resque-loop``, or ``resque-job`` for any of the job threads."""
    name = str((span.attributes or {}).get("test.thread"))
    return name if name == "resque-loop" else name.rstrip("0123456789-")


def test_a_threaded_worker_traces_each_job_on_its_threads_and_its_loop(
    r: redis.Redis, spans: InMemorySpanExporter, quiet_title: None
) -> None:
    """With ``concurrency=3`` plain jobs run on job threads and ``async def`` jobs are awaited
    on the worker's loop, several at once: each consumer span is the child of its own job's
    producer span, current in the job's code, and a failure on the loop ends it in error."""
    client = resque.Resque(r)
    handles = [client.enqueue(marked, i) for i in range(3)]
    handles += [client.enqueue(amarked, i) for i in range(4)]
    failing = client.enqueue(aexplode)
    job_ids = [h.id for h in [*handles, failing] if h is not None and h.id is not None]
    assert len(job_ids) == 8
    resque.Worker(["otel"], resque=client, fork=False, burst=True, concurrency=3).work()

    producers, consumers = by_message(spans, SpanKind.PRODUCER), by_message(spans,
                                                                            SpanKind.CONSUMER)
    assert set(consumers) == set(producers) == set(job_ids)
    for job_id, consumer in consumers.items():
        assert consumer.parent is not None
        assert (ids(consumer)[0], consumer.parent.span_id) == ids(producers[job_id])
    *worked, failed = [consumers[job_id] for job_id in job_ids]
    assert [thread_kind(span) for span in worked] == ["resque-job"] * 3 + ["resque-loop"] * 4
    assert failed.status.status_code is StatusCode.ERROR
    assert [(e.attributes or {}).get("exception.message") for e in failed.events] == [
        "async kaboom"]
    assert (r.llen("resque:failed"), r.get("resque:stat:processed")) == (1, b"8")


def test_a_threaded_worker_process_traces_its_jobs(
    r: redis.Redis, spans: InMemorySpanExporter, workers: Workers, tmp_path: Path
) -> None:
    """``resque work -c 3`` with the app's tracer: no child, so the spans leave with the
    worker's exit (the provider's shutdown flushes the batch processor)."""
    client = resque.Resque(r)
    plain = client.enqueue_to("traced", "otelapp.hello", "ann")
    awaited = client.enqueue_to("traced", "otelapp.ahello", "bob")
    assert plain is not None and awaited is not None
    file = tmp_path / "spans.jsonl"
    worker = workers.run("traced", "-c", "3", "--app", "otelapp",
                         env={"OTELAPP_SPANS": str(file)})
    producers = by_message(spans, SpanKind.PRODUCER)
    consumers = {c["attributes"]["messaging.message.id"]: c
                 for c in map(json.loads, file.read_text().splitlines())}
    assert set(consumers) == {plain.id, awaited.id}
    for job_id, consumer in consumers.items():
        assert (consumer["name"], consumer["kind"], consumer["status"]) == (
            "process traced", "CONSUMER", "UNSET")
        assert (consumer["trace_id"], consumer["parent_id"]) == ids(producers[job_id])
        assert consumer["pid"] == worker.pid  # performed in the worker itself
    assert consumers[plain.id]["attributes"]["test.thread"].startswith("resque-job-")
    assert consumers[awaited.id]["attributes"]["test.thread"] == "resque-loop"


# --- across a fork ----------------------------------------------------------------------------


@pytest.mark.parametrize("fork_server", ["1", "0"], ids=["fork-server", "direct-fork"])
def test_the_perform_span_is_a_child_of_the_enqueue_span_across_a_fork(
    r: redis.Redis, spans: InMemorySpanExporter, workers: Workers, tmp_path: Path,
    fork_server: str
) -> None:
    handle = resque.Resque(r).enqueue_to("traced", "otelapp.hello", "ann")
    assert handle is not None
    file = tmp_path / "spans.jsonl"
    worker = workers.run("traced", "--app", "otelapp",
                         env={"OTELAPP_SPANS": str(file), "RESQUE_FORK_SERVER": fork_server})
    trace_id, span_id = ids(one(spans, SpanKind.PRODUCER))
    (consumer,) = [json.loads(line) for line in file.read_text().splitlines()]
    assert (consumer["name"], consumer["kind"], consumer["status"]) == (
        "process traced", "CONSUMER", "UNSET")
    assert (consumer["trace_id"], consumer["parent_id"]) == (trace_id, span_id)
    assert consumer["pid"] not in (worker.pid, None)  # recorded in the job's child
    assert consumer["attributes"]["messaging.message.id"] == handle.id


# --- the real peers ignore the trace context --------------------------------------------------


@pytest.mark.ruby
def test_a_ruby_worker_performs_a_traced_job(r: redis.Redis, redis_url: str,
                                             spans: InMemorySpanExporter) -> None:
    require_ruby_resque()
    handle = resque.Resque(r).enqueue_to("peers", "Echo", "a", 1)
    assert handle is not None and '"trace":{"traceparent":' in handle.payload
    ruby(redis_url, "work", "peers")
    assert ran(r, "ruby") == [["a", 1]]
    assert r.llen("resque:failed") == 0


@pytest.mark.perl
@pytest.mark.parametrize("fork", [True, False], ids=["fork", "nofork"])
def test_a_perl_worker_performs_a_traced_job(r: redis.Redis, redis_url: str,
                                             spans: InMemorySpanExporter, fork: bool) -> None:
    require_perl_resque()
    handle = resque.Resque(r).enqueue_to("peers", "Echo", "a", 1)
    assert handle is not None and '"trace":{"traceparent":' in handle.payload
    perl(redis_url, "work", "peers", *([] if fork else ["nofork"]))
    assert ran(r, "perl") == [["a", 1]]
    assert r.llen("resque:failed") == 0


