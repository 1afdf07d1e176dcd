"""The queued job payload of Ruby resque 3.0 (``{"class":..,"args":[..]}``) and our additions.

``encode_job`` writes exactly Ruby's bytes, then the keys only we read (``id``, ``track``);
``decode_job`` reads any key order (Perl's) and refuses what a worker could not run.
Keyword arguments travel as a marked trailing ``args`` element.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from resque import rubyjson
from resque.errors import BadPayload
from resque.layout.codec import encode


def encode_job(
    class_name: str, args: Sequence[Any], job_id: str | None = None, track: int | None = None
) -> str:
    """The queued job payload: ``{"class":"X","args":[...]}``, key order class then args, as
    Ruby writes it; then our additions, which Ruby and Perl workers ignore: ``"id"`` (the
    job's id) and ``"track"`` (seconds its status and result are kept after it ends; only
    jobs that asked for a status have it). Without them the bytes are exactly Ruby's."""
    if not isinstance(args, (list, tuple)):
        raise TypeError(f"job args must be a list, not {type(args).__name__}")
    job: dict[str, Any] = {"class": class_name, "args": args}
    if job_id is not None:
        job[JOB_ID] = job_id
        if track is not None:
            job[JOB_TRACK] = track
    payload = encode(job)  # one C-encoder pass (floats spelled as Ruby's, resque.rubyjson)
    # Lone surrogates would only fail inside redis-py; refuse them here, before Redis.
    payload.encode("utf-8")
    return payload


def decode_job(raw: str | bytes | None, queue: str) -> dict[str, Any]:
    """Read a queued payload: any key order, a missing ``args`` means ``[]``; every value
    strict (no NaN, infinity, invalid UTF-8 or lone surrogate reaches a job).

    Raises ``BadPayload`` (naming the queue) when the item is not such a JSON object with a
    string ``class`` and an array ``args``; the raw item is kept on the exception.
    """
    if raw is None:
        raise BadPayload(queue, raw, "empty item")
    try:
        job = rubyjson.decode_strict(raw)
    except ValueError as exc:
        raise BadPayload(queue, raw, f"not valid JSON ({exc})") from None
    if not isinstance(job, dict):
        raise BadPayload(queue, raw, f"a JSON {type(job).__name__}, not an object")
    if not isinstance(job.get("class"), str) or not job["class"]:
        raise BadPayload(queue, raw, 'no "class" string')
    args = job.get("args")
    if args is None:
        job["args"] = []
    elif not isinstance(args, list):
        raise BadPayload(queue, raw, f'"args" is a JSON {type(args).__name__}, not an array')
    return job


# --- Our additions to the payload -------------------------------------------------------------
# Ruby and Perl workers read ``class`` and ``args`` and ignore any other key. Three places drop
# our keys: resque-web's retry (it pushes ``{"class","args"}``), Ruby's resque-scheduler moving a
# delayed job (``Job.create(queue, klass, *args)``), and Perl, which re-encodes in its own order.

JOB_ID = "id"  # the job's id, unique across processes and hosts (resque.ids)
JOB_TRACK = "track"  # seconds to keep the status and result: the worker tracks this job
KWARGS_MARKER = "__kwargs__"
"""Keyword arguments travel as the last element of ``args``: a JSON object whose first key is
``"__kwargs__": true``, then the keywords in call order. Ruby and Perl jobs see it as a trailing
options hash (``{"__kwargs__"=>true, "locale"=>"sv"}``)."""


JOB_TRACE = "trace"
"""W3C trace context of the enqueue (``{"traceparent": ..., "tracestate": ...}``), added last
by ``resque.contrib.otel`` so that the job's span continues the enqueue's trace."""


def with_trace(payload: str, carrier: dict[str, str]) -> str:
    """A payload of ``encode_job`` with the trace context added after our other keys."""
    return f'{payload[:-1]},"{JOB_TRACE}":{encode(carrier)}}}'


def with_job_id(payload: str, job_id: str) -> str:
    """A payload of ``encode_job`` without an id, given one (a recurring tick's fixed bytes)."""
    return f'{payload[:-1]},"{JOB_ID}":{encode(job_id)}}}'


def kwargs_argument(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``args`` element that carries keyword arguments: the marker, then the keywords."""
    return {KWARGS_MARKER: True, **kwargs}


def split_kwargs(args: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """``(positional, keywords)`` of a payload's args: the last element is the keywords when
    it is an object carrying the marker set to ``true``. Costs one type check per job."""
    if args:
        last = args[-1]
        if type(last) is dict and last.get(KWARGS_MARKER) is True:
            keywords = dict(last)
            del keywords[KWARGS_MARKER]
            return args[:-1], keywords
    return args, {}


def carries_kwargs_marker(value: Any) -> bool:
    """Is this a positional argument that a worker would take for the keywords?"""
    return type(value) is dict and KWARGS_MARKER in value
