"""OpenTelemetry traces: a producer span per enqueue, a consumer span per job, one trace.

``resque.contrib.otel.instrument()`` (needs ``opentelemetry-api``; an SDK and an exporter to
send spans anywhere) installs the tracer in this process: call it where the app starts, and
in the module your workers load with ``--app`` (the fork server loads it too). Without it
nothing here is imported and the per-job path is one global lookup (``resque.tracing``).

Each enqueue (``enqueue``, ``enqueue_at``, a task's ``.enqueue()``, ``resque.aio``) opens a
PRODUCER span ``send <queue>`` and writes its W3C trace context into the payload
(``"trace": {"traceparent": ...}``, after our other keys; Ruby and Perl workers ignore it).
Each job performed opens a CONSUMER span ``process <queue>``, a child of that context, so the
job continues the trace of the request that enqueued it, whichever process or host runs it.
A job that raises ends its span with an error status and the exception recorded. Attributes
follow OpenTelemetry's messaging conventions (``messaging.system`` is ``resque``).

A forked child flushes the tracer provider before it exits (``os._exit`` would drop what a
batch processor still holds).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from resque import __version__, layout, tracing

if TYPE_CHECKING:
    from resque.client import Prepared

__all__ = ["ResqueTracer", "instrument", "uninstrument"]

log = logging.getLogger("resque.otel")

SYSTEM = "resque"
FLUSH_MILLIS = 5000  # how long a forked child waits for its spans to be sent


class ResqueTracer:
    """The tracer ``instrument`` installs (``resque.tracing.Tracer``)."""

    def __init__(self, tracer_provider: Any = None) -> None:
        self.provider = tracer_provider
        self.tracer = trace.get_tracer("resque", __version__, tracer_provider=tracer_provider)
        # The enqueue being traced: a delayed job due at once is pushed by the client's own
        # submit, inside the delayed enqueue, and must not get a second span and context.
        self._sending: contextvars.ContextVar[Prepared | None] = contextvars.ContextVar(
            "resque_otel_sending", default=None)

    @contextlib.contextmanager
    def sending(self, prepared: Prepared, client: Any) -> Iterator[None]:
        if self._sending.get() is prepared:
            yield
            return
        attributes = _message_attributes("send", "enqueue", prepared.queue, prepared.job_id,
                                         prepared.name)
        attributes.update(_server(client))
        with self.tracer.start_as_current_span(f"send {prepared.queue}", kind=SpanKind.PRODUCER,
                                               attributes=attributes) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            if carrier:
                prepared.payload = layout.with_trace(prepared.payload, carrier)
            span.set_attribute("messaging.message.body.size",
                               len(prepared.payload.encode("utf-8")))
            token = self._sending.set(prepared)
            try:
                yield
            finally:
                self._sending.reset(token)

    @contextlib.contextmanager
    def performing(self, payload: dict[str, Any], queue: str, worker: object) -> Iterator[None]:
        carrier = payload.get(layout.JOB_TRACE)
        parent = propagate.extract(carrier) if isinstance(carrier, dict) else None
        job_id = payload.get(layout.JOB_ID)
        attributes = _message_attributes("process", "perform", queue,
                                         job_id if isinstance(job_id, str) else None,
                                         payload.get("class"))
        attributes["messaging.client.id"] = str(worker)
        with self.tracer.start_as_current_span(f"process {queue}", context=parent,
                                               kind=SpanKind.CONSUMER, attributes=attributes):
            yield

    def flush(self) -> None:
        provider = self.provider or trace.get_tracer_provider()
        force_flush = getattr(provider, "force_flush", None)
        if force_flush is not None:
            try:
                force_flush(FLUSH_MILLIS)
            except Exception as exc:  # noqa: BLE001 - a child's exit must not fail on it
                log.warning("could not flush the job's spans: %s", exc)


def instrument(tracer_provider: Any = None) -> ResqueTracer:
    """Trace every enqueue and job of this process (``tracer_provider``: default the global
    one, ``opentelemetry.trace.set_tracer_provider``)."""
    installed = ResqueTracer(tracer_provider)
    tracing.tracer = installed
    return installed


def uninstrument() -> None:
    """Stop tracing in this process."""
    tracing.tracer = None


def _message_attributes(operation: str, name: str, queue: str, job_id: str | None,
                        class_name: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": operation,
        "messaging.operation.name": name,
        "messaging.destination.name": queue,
    }
    if job_id is not None:
        attributes["messaging.message.id"] = job_id
    if isinstance(class_name, str):
        attributes["resque.job.class"] = class_name
    return attributes


def _server(client: Any) -> dict[str, Any]:
    """``server.address`` and ``server.port`` of a client's Redis, when it has them."""
    try:
        kwargs = client.redis.connection_pool.connection_kwargs
    except AttributeError:
        return {}
    found = {"server.address": kwargs.get("host") or kwargs.get("path"),
             "server.port": kwargs.get("port")}
    return {key: value for key, value in found.items() if value is not None}
