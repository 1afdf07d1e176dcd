"""resque.contrib.sentry: a real worker process reports a failed job to Sentry's real SDK
(through a transport that records events to a file) and still records it in ``failed``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from support.workerkit import Workers, failures, push

from resque import Resque

BACKEND = "redis,resque.contrib.sentry:SentryFailure"


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("mode", ["--fork", "--no-fork"])
def test_a_failed_job_reaches_sentry_and_the_failed_list(
    r: redis.Redis, workers: Workers, tmp_path: Path, mode: str
) -> None:
    sink = tmp_path / "events.jsonl"
    push(r, "errors", "sentryapp.fine", 1)
    push(r, "errors", "sentryapp.explode", 7)
    workers.run("errors", mode, "--app", "sentryapp",
                env={"FAILURE_BACKEND": BACKEND, "SENTRYAPP_EVENTS": str(sink)})
    (event,) = events(sink)
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("ValueError", "boom 7")
    assert event["tags"] == {"resque.queue": "errors", "resque.class": "sentryapp.explode"}
    assert event["contexts"]["resque job"]["args"] == [7]
    assert event["contexts"]["resque job"]["worker"].endswith(":errors")
    (record,) = failures(r)
    assert (record["exception"], record["error"]) == ("ValueError", "boom 7")


def test_the_event_names_the_job_id_and_its_keywords_apart(
    r: redis.Redis, workers: Workers, tmp_path: Path
) -> None:
    sink = tmp_path / "events.jsonl"
    job = Resque(r).enqueue_to("errors", "sentryapp.explode_politely", 7, reason="testing")
    assert job is not None and job.id is not None
    workers.run("errors", "--app", "sentryapp",
                env={"FAILURE_BACKEND": BACKEND, "SENTRYAPP_EVENTS": str(sink)})
    (event,) = events(sink)
    context = event["contexts"]["resque job"]
    assert (context["id"], context["args"], context["kwargs"]) == (job.id, [7],
                                                                   {"reason": "testing"})
    assert event["tags"] == {"resque.queue": "errors",
                             "resque.class": "sentryapp.explode_politely"}


def test_without_a_dsn_the_backend_sends_nothing_and_the_worker_goes_on(
    r: redis.Redis, workers: Workers, tmp_path: Path
) -> None:
    push(r, "errors", "Unknown::Job")
    workers.run("errors", env={"FAILURE_BACKEND": BACKEND})  # workerapp never inits Sentry
    assert [f["exception"] for f in failures(r)] == ["Resque::JobNotFound"]
