"""The wire contract: every Redis key, JSON shape and time format that Ruby resque 3.0 uses.

This package is the only place that spells a key name, a payload shape or a timestamp
format. Everything is written exactly as Ruby writes it (see ``shared/compat`` in the
steering repository) and read tolerantly, so that Perl's key order and older time formats
still parse. Use it as one namespace (``from resque import layout``; ``layout.Keys``); the
modules say where each part lives:

- ``codec``: JSON as Ruby's json gem spells it; names and raw items read back as text.
- ``payloads``: the queued job ``{"class","args"}``, our ``id``/``track``, keyword arguments.
- ``keys``: every key name under the namespace, and which queue names a worker can select.
- ``times``: the time format of each field Ruby and resque-scheduler write.
- ``workers``: worker ids, process titles, the working-on record.
- ``failures``: the failure record, Ruby's synthetic failures, the failure lists.
- ``statuses``: resque-status's record of a tracked job.
- ``scheduler``: resque-scheduler 5.0's delayed item and master lock value.
- ``metrics``: our own dashboard samples and duration histograms (no Ruby equivalent).
- ``policies``: our job policies' keys and payload fields: resque-retry's keys, our index of
  pending retries, one call's policy keys; unique jobs' locks (resque-loner's) and limits.

Below the package are only ``resque.rubyjson``, ``resque.rubytime`` and ``resque.errors``;
inside it, imports go down from ``metrics`` and ``scheduler`` to ``codec``.
"""

from __future__ import annotations

from resque.layout.codec import canonical, decode, encode, raw_text, text
from resque.layout.failures import (
    DIRTY_EXIT,
    FAILED_LIST,
    FAILED_QUEUE_SUFFIX,
    PRUNE_DIRTY_EXIT,
    STILL_PROCESSING,
    TERM_EXCEPTION,
    child_signal_message,
    failure_list_of_queue,
    failure_record,
    prune_message,
    queue_of_failure_list,
    repeat_offender_message,
    retried_at_for,
    stopped_too_often_message,
    unreadable_payload,
    with_retried_at,
)
from resque.layout.keys import (
    DELAYED_MEMBER_PREFIX,
    Keys,
    check_queue_name,
    delayed_member,
    delayed_member_timestamp,
    scan_pattern,
)
from resque.layout.metrics import (
    DURATION_FAILED,
    DURATION_SLOT_PREFIX,
    DURATION_SUM,
    METRICS_SAMPLE_TEMPLATE,
    decode_metrics_sample,
    duration_field,
    job_durations_key,
    metrics_key,
    parse_duration_field,
    queue_marks_key,
)
from resque.layout.payloads import (
    JOB_ID,
    JOB_TRACE,
    JOB_TRACK,
    KWARGS_MARKER,
    carries_kwargs_marker,
    decode_job,
    encode_job,
    kwargs_argument,
    split_kwargs,
    with_job_id,
    with_trace,
)
from resque.layout.policies import (
    JOB_RETRY,
    JOB_TIMEOUT,
    JOB_UNIQUE,
    RETRY_FAILURE_PREFIX,
    RETRY_KEY_GRACE,
    RETRY_KEY_PREFIX,
    limit_running,
    limit_starts,
    retries_due_key,
    retry_class_of,
    retry_failure_key,
    retry_identifier,
    retry_key,
    ruby_join,
    timeout_message,
    unique_lock,
    with_attempt,
    with_policies,
    with_unique,
)
from resque.layout.scheduler import (
    BAD_DELAYED_ITEM,
    DelayedItem,
    decode_delayed_item,
    delayed_item,
    delayed_item_of,
    job_params,
    scheduler_lock_value,
)
from resque.layout.statuses import (
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_FIELDS,
    STATUS_KILLED,
    STATUS_QUEUED,
    STATUS_RETRYING,
    STATUS_WORKING,
    decode_status,
    status_fields,
)
from resque.layout.times import (
    failed_at,
    heartbeat_at,
    is_time,
    last_enqueued_at,
    parse_time,
    retried_at_multi_queue,
    run_at,
    started_at,
)
from resque.layout.workers import (
    PAUSE_VALUE,
    STARTING_TITLE,
    TITLE_PAUSED,
    UNREADABLE_PAYLOAD,
    WORKING_ON_TEMPLATE,
    parse_worker_id,
    process_title,
    title_forked,
    title_processing,
    title_waiting,
    worker_id,
    working_on,
)

__all__ = [
    # codec
    "canonical", "decode", "encode", "raw_text", "text",
    # payloads
    "JOB_ID", "JOB_TRACE", "JOB_TRACK", "KWARGS_MARKER", "carries_kwargs_marker", "decode_job",
    "encode_job", "kwargs_argument", "split_kwargs", "with_job_id", "with_trace",
    # keys
    "DELAYED_MEMBER_PREFIX", "Keys", "check_queue_name", "delayed_member",
    "delayed_member_timestamp", "scan_pattern",
    # times
    "failed_at", "heartbeat_at", "is_time", "last_enqueued_at", "parse_time",
    "retried_at_multi_queue", "run_at", "started_at",
    # workers
    "PAUSE_VALUE", "STARTING_TITLE", "TITLE_PAUSED", "UNREADABLE_PAYLOAD", "WORKING_ON_TEMPLATE",
    "parse_worker_id", "process_title", "title_forked", "title_processing", "title_waiting",
    "worker_id", "working_on",
    # failures
    "DIRTY_EXIT", "FAILED_LIST", "FAILED_QUEUE_SUFFIX", "PRUNE_DIRTY_EXIT", "STILL_PROCESSING",
    "TERM_EXCEPTION", "child_signal_message", "failure_list_of_queue", "failure_record",
    "prune_message", "queue_of_failure_list", "repeat_offender_message", "retried_at_for",
    "stopped_too_often_message", "unreadable_payload", "with_retried_at",
    # statuses
    "STATUS_COMPLETED", "STATUS_FAILED", "STATUS_FIELDS", "STATUS_KILLED", "STATUS_QUEUED",
    "STATUS_RETRYING", "STATUS_WORKING", "decode_status", "status_fields",
    # scheduler
    "BAD_DELAYED_ITEM", "DelayedItem", "decode_delayed_item", "delayed_item", "delayed_item_of",
    "job_params", "scheduler_lock_value",
    # policies
    "JOB_RETRY", "JOB_TIMEOUT", "RETRY_FAILURE_PREFIX", "RETRY_KEY_GRACE", "RETRY_KEY_PREFIX",
    "retries_due_key", "retry_class_of", "retry_failure_key", "retry_identifier", "retry_key",
    "ruby_join", "timeout_message", "with_attempt", "with_policies",
    "JOB_UNIQUE", "limit_running", "limit_starts", "unique_lock", "with_unique",
    # metrics
    "DURATION_FAILED", "DURATION_SLOT_PREFIX", "DURATION_SUM", "METRICS_SAMPLE_TEMPLATE",
    "decode_metrics_sample", "duration_field", "job_durations_key", "metrics_key",
    "parse_duration_field", "queue_marks_key",
]
