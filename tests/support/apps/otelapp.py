"""A worker app whose jobs are traced (tests/test_contrib_otel.py): the SDK with a batch
processor, whose spans a small exporter appends as JSON lines to ``$OTELAPP_SPANS`` (a forked
child's memory is gone when it exits, so the test reads them from the file). Each job marks
the span current where it runs with its thread's name (``resque-loop`` for an ``async def``
job a ``-c N`` worker awaits on its loop, ``resque-job-N`` on its threads)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import resque
from resque.contrib import otel


class FileExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(os.environ["OTELAPP_SPANS"], "a") as sink:
            for span in spans:
                sink.write(json.dumps({
                    "name": span.name, "kind": span.kind.name, "pid": os.getpid(),
                    "trace_id": span.context.trace_id if span.context else None,
                    "span_id": span.context.span_id if span.context else None,
                    "parent_id": span.parent.span_id if span.parent else None,
                    "status": span.status.status_code.name,
                    "attributes": dict(span.attributes or {}),
                }) + "\n")
        return SpanExportResult.SUCCESS


# A long schedule delay: only the child's flush before it exits can send the job's span.
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(FileExporter(), schedule_delay_millis=60_000))
otel.instrument(provider)


def mark() -> None:
    """The job's consumer span is current in its code, wherever it runs."""
    trace.get_current_span().set_attribute("test.thread", threading.current_thread().name)


@resque.job(queue="traced", name="otelapp.hello")
def hello(name: str) -> str:
    mark()
    return f"hello {name}"


@resque.job(queue="traced", name="otelapp.ahello")
async def ahello(name: str) -> str:
    await asyncio.sleep(0.01)
    mark()
    return f"hello {name}"


@resque.job(queue="traced", name="otelapp.fail")
def fail() -> None:
    raise ValueError("traced failure")
