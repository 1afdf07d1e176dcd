"""Job policies on the wire, in keys and payload fields Ruby and Perl ignore: retries
(resque-retry's keys) and timeouts, one call's policy keys, unique jobs and limits.

resque-retry's keys, so that a Ruby shop running resque-retry (and its resque-web tab) sees the
same state: ``resque-retry:<class>:<sha1 of the args joined by '-'>`` holds the 0-based number
of the attempt last started (absent before a first failure), and ``failure-<that key>`` the
failure record of the attempt that failed last, while a retry is pending. Our own index of
pending retries, ``retries:due``, scores each retry key by the time its next attempt is due.

A unique job's lock is resque-loner's key, ``loners:queue:<q>:job:<digest>``, the digest being
loner's (MD5 of Ruby's JSON of ``{"class","args"}`` with hash arguments sorted into pairs), or
a key the job computes. Its value is the payload of the job holding it (loner writes ``"1"``:
ours treat any value as held; loner reads only its own ``"1"``). The payload of a unique job
enqueued from Python carries ``"unique":[until, digest or key, lease s, ttl s]`` so that a
worker finds the lock without recomputing it; a job rebuilt without it (Ruby's scheduler)
falls back on its class's declaration.
A limit has two sorted sets per name: ``limits:<name>:running`` (a member per running job,
scored by the millisecond its lease ends: a dead worker's slot expires) and
``limits:<name>:starts`` (a member per start, scored by its millisecond, for the window).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from resque import rubyjson
from resque.layout.codec import encode
from resque.layout.keys import Keys

RETRY_KEY_PREFIX = "resque-retry"
RETRY_FAILURE_PREFIX = "failure-"
RETRY_KEY_GRACE = 7 * 24 * 3600  # a retry key outlives its next attempt's due time by this
_RUBY_SPACE = re.compile(r"[ \t\r\n\f\v]")  # Ruby's /\s/: ASCII whitespace only
_INSPECT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r",
                    "\f": "\\f", "\v": "\\v", "\b": "\\b", "\a": "\\a", "\x1b": "\\e"}


def ruby_join(values: Sequence[Any], separator: str) -> str:
    """Ruby's ``Array#join`` of JSON values: nested arrays joined in place, ``nil`` as '',
    a float as ``Float#to_s``, an object as Ruby 3.1's ``Hash#inspect``."""
    return separator.join(_join_part(value, separator) for value in values)


def _join_part(value: Any, separator: str) -> str:
    if isinstance(value, list):
        return ruby_join(value, separator)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _ruby_inspect(value)


def _ruby_inspect(value: Any) -> str:
    if value is None:
        return "nil"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        return rubyjson.ruby_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + "".join(_inspect_char(value, i) for i in range(len(value))) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_ruby_inspect(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_ruby_inspect(k)}=>{_ruby_inspect(v)}"
                               for k, v in value.items()) + "}"
    return str(value)


def _inspect_char(text_value: str, i: int) -> str:
    char = text_value[i]
    if char in _INSPECT_ESCAPES:
        return _INSPECT_ESCAPES[char]
    if char == "#" and text_value[i + 1 : i + 2] in ("{", "$", "@"):
        return "\\#"
    if char < " " or char == "\x7f":
        return f"\\x{ord(char):02X}"
    return char


def retry_identifier(args: Sequence[Any]) -> str | None:
    """resque-retry's ``retry_identifier``: SHA1 of the args joined by ``-``; None for none."""
    import hashlib

    joined = ruby_join(args, "-")
    return hashlib.sha1(joined.encode("utf-8", "surrogatepass")).hexdigest() if joined else None


def retry_key(keys: Keys, class_name: str, args: Sequence[Any]) -> str:
    """resque-retry's ``redis_retry_key``, namespaced: ``resque:resque-retry:<class>:<sha1>``
    (whitespace removed, as Ruby's ``gsub(/\\s/, '')``)."""
    parts = [RETRY_KEY_PREFIX, class_name, retry_identifier(args)]
    return keys.prefix + _RUBY_SPACE.sub("", ":".join(p for p in parts if p is not None))


def retry_failure_key(keys: Keys, key: str) -> str:
    """``failure-<retry key>`` (MultipleWithRetrySuppression's), namespaced like it."""
    return keys.prefix + RETRY_FAILURE_PREFIX + key[len(keys.prefix) :]


def retry_class_of(keys: Keys, key: str) -> str:
    """The job class named in a retry key (its digest, when there is one, is 40 hex digits)."""
    body = key[len(keys.prefix) + len(RETRY_KEY_PREFIX) + 1 :]
    head, _, tail = body.rpartition(":")
    return head if head and len(tail) == 40 else body


def retries_due_key(keys: Keys) -> str:
    """Ours: the sorted set of pending retries, retry key scored by its due time."""
    return f"{keys.prefix}retries:due"


def with_attempt(record: str, attempt: int, attempts: int) -> str:
    """A failure record that says which attempt failed, ``"attempt":2,"max_attempts":5``
    added last (Ruby, Perl and resque-web ignore keys they do not know)."""
    return f'{record[:-1]},"attempt":{int(attempt)},"max_attempts":{int(attempts)}}}'


def timeout_message(seconds: float) -> str:
    """The error of a job that ran past its timeout (``Resque::JobTimeout``)."""
    return f"the job ran past its timeout of {seconds:g} s"


JOB_RETRY = "retry"  # payload key: one call's retry policy (task.options(retry=...)), as JSON
JOB_TIMEOUT = "timeout"  # payload key: one call's timeout in seconds (task.options(timeout=))


def with_policies(payload: str, policies: dict[str, Any]) -> str:
    """A payload with one call's policies added last (after ``id`` and ``track``), where Ruby
    and Perl workers ignore them; resque-scheduler's mover drops them, as it drops ``id``."""
    if not policies:
        return payload
    return f"{payload[:-1]},{encode(policies)[1:]}"


# --- unique jobs and limits ---------------------------------------------------------------

JOB_UNIQUE = "unique"  # payload key: [until, digest or key, lease seconds, ttl seconds]


def unique_lock(keys: Keys, queue: str, name: str) -> str:
    """A unique job's lock: resque-loner's ``loners:queue:<q>:job:<digest>``."""
    return f"{keys.prefix}loners:queue:{queue}:job:{name}"


def with_unique(payload: str, spec: list[Any]) -> str:
    """A payload of ``encode_job`` with its unique lock's spec appended (``Unique.spec``)."""
    return f'{payload[:-1]},"{JOB_UNIQUE}":{encode(spec)}}}'


def limit_running(keys: Keys, name: str) -> str:
    """The running jobs of a limit: member per job, scored by its lease's end (ms)."""
    return f"{keys.prefix}limits:{name}:running"


def limit_starts(keys: Keys, name: str) -> str:
    """The starts of a limit within its period: member per start, scored by its ms."""
    return f"{keys.prefix}limits:{name}:starts"
