"""Bad input, fuzzed: whatever another tool (or a bug) leaves in Redis, we keep working.

Hypothesis writes arbitrary bytes, deep JSON, odd unicode (lone surrogates, NULs, right-to-left
marks) and JSON of the wrong shape into queues, failure lists, the worker registry and the
heartbeat hash, and keys of the wrong type where lists, sets and hashes belong. Then workers
(in this process, for speed), the admin verbs (``CliRunner``) and the dashboard (Starlette's
test client) run over it. Every bad item is reported and kept for inspection (a failure record
holding its bytes, an entry the listing flags), and nothing else is touched.

Example counts are kept modest (``FUZZ_EXAMPLES``, default 60 per property) so the module
runs in well under a minute; a longer hunt only needs that raised.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
import redis
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.replies import as_bytes, bytes_list

import resque
from resque import Resque, Worker, layout
from resque.admin import Admin
from resque.cli import main

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
KEYS = layout.Keys()
HOST = socket.gethostname()
performed: list[Any] = []


@resque.job(name="FuzzGood")
def fuzz_good(tag: Any) -> None:
    performed.append(tag)


# --- what a bad item can look like --------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
    | st.text(st.characters(codec=None, categories=None, exclude_categories=())),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
odd_text = st.text(st.characters(categories=["Cs", "Cc", "Cf", "Co", "Zs", "Mn", "So"]),
                   max_size=20)


@st.composite
def deep_json(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(min_value=900, max_value=200_000))
    inner = b"[" * depth + b"]" * depth
    return draw(st.sampled_from([inner, b'{"class":"FuzzGood","args":[' + inner + b"]}"]))


@st.composite
def wrong_shapes(draw: st.DrawFn) -> bytes:
    """JSON payloads with a class and args of the wrong types, or classes that must not be
    run, or odd unicode in them (lone surrogates escaped as \\udXXX)."""
    cls = draw(st.one_of(json_values, odd_text, st.sampled_from(
        ["os.system", "subprocess.Popen", "builtins.eval", "FuzzGood.__init__", "", "myapp..x",
         "__import__", "FuzzGood\x00"])))
    args = draw(st.one_of(json_values, st.lists(odd_text, max_size=3)))
    body = {"class": cls, "args": args} if draw(st.booleans()) else {"args": args, "class": cls}
    return json.dumps(body, ensure_ascii=draw(st.booleans()),
                      allow_nan=True).encode("utf-8", "surrogatepass")


bad_items = st.one_of(st.binary(max_size=300), deep_json(), wrong_shapes(),
                      json_values.map(lambda v: json.dumps(v).encode()))


def kept(record: dict[str, Any], raw: bytes) -> bool:
    """The failure record holds the bad item: its bytes as text, or the object it decoded to."""
    payload = record["payload"]
    if payload.get("class") == "Resque::BadPayload" and payload.get("args") == [
            layout.raw_text(raw)]:
        return True
    try:
        decoded = layout.decode(raw)
        if layout.canonical(payload) == layout.canonical(decoded):
            return True
        if isinstance(decoded, dict) and decoded.get("args") is None:
            decoded["args"] = []  # a job whose args are missing or null reads them as []
        return layout.canonical(payload) == layout.canonical(decoded)
    except (ValueError, UnicodeError):
        return False


def burst(client: redis.Redis, *queues: str) -> Worker:
    worker = Worker(list(queues) or ["fuzz"], redis=client, fork=False, interval=0,
                    prune_interval=3600, heartbeat_interval=3600)
    worker.work()
    return worker


# --- queues -------------------------------------------------------------------------------


@FUZZ
@given(raw=bad_items)
@example(raw=b'{"class":"FuzzGood","args":["' + b"x" * 10_000_000 + b'"]}')  # 10 MB, runs
@example(raw=b'{"class":"Nope","args":["' + b"\xff" * 10_000_000 + b'"]}')  # 10 MB, fails
@example(raw=b'{"class":"FuzzGood","args":["\\ud800"]}')
@example(raw=b'{"class":"FuzzGood","args":[1e400, NaN]}')
@example(raw=b"\xc3\x28 not utf-8")
def test_a_bad_queued_item_becomes_a_failure_holding_it_and_the_worker_goes_on(
    r: redis.Redis, quiet_title: None, raw: bytes
) -> None:
    r.flushall()
    performed.clear()
    client = Resque(r, job_ids=False)  # Ruby's exact payloads: the bytes are compared below
    client.enqueue_to("fuzz", "FuzzGood", "before")
    r.rpush(KEYS.queue("fuzz"), raw)
    client.enqueue_to("fuzz", "FuzzGood", "after")
    client.enqueue_to("other", "FuzzGood", "untouched")
    burst(r)
    assert performed[0] == "before" and performed[-1] == "after"
    records = [json.loads(item) for item in r.lrange(KEYS.failed, 0, -1)]
    ran_fine = len(performed) == 3
    assert len(records) == (0 if ran_fine else 1)
    for record in records:
        assert record["queue"] == "fuzz" and record["error"]
        assert kept(record, raw), (record["payload"], raw[:200])
    assert r.get(KEYS.stat("processed")) == b"3"
    assert r.lrange(KEYS.queue("other"), 0, -1) == [
        layout.encode_job("FuzzGood", ["untouched"]).encode()]
    assert r.llen(KEYS.queue("fuzz")) == 0
    assert not r.keys("resque:inflight:*") and not r.smembers(KEYS.workers)


@pytest.mark.parametrize("kind", ["hash", "string", "set", "zset"])
def test_a_queue_key_of_another_type_is_skipped_reported_and_left_alone(
    r: redis.Redis, quiet_title: None, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    r.flushall()
    performed.clear()
    bad = KEYS.queue("broken")
    writes: dict[str, Callable[[], object]] = {
        "hash": lambda: r.hset(bad, "f", "v"), "string": lambda: r.set(bad, "v"),
        "set": lambda: r.sadd(bad, "v"), "zset": lambda: r.zadd(bad, {"v": 1})}
    writes[kind]()
    dump = r.dump(bad)
    r.sadd(KEYS.queues, "broken")
    Resque(r).enqueue_to("fine", "FuzzGood", "ran")
    burst(r, "broken", "fine")
    burst(r, "*")  # a wildcard worker too
    assert performed == ["ran"]
    assert r.dump(bad) == dump  # untouched
    assert caplog.text.count(f"{bad} holds a value that is not a list") == 2  # once per worker
    result = CliRunner().invoke(main, ["queues", "--json", "--redis", _url(r)])
    assert result.exit_code in (0, 1) and "Traceback" not in result.output


def test_a_queue_name_that_is_not_utf8_is_skipped_by_wildcard_workers(
    r: redis.Redis, quiet_title: None, caplog: pytest.LogCaptureFixture
) -> None:
    r.flushall()
    performed.clear()
    r.sadd(KEYS.queues, b"caf\xe9")
    r.rpush(b"resque:queue:caf\xe9", layout.encode_job("FuzzGood", ["latin-1 queue"]))
    Resque(r).enqueue_to("fine", "FuzzGood", "ran")
    burst(r, "*")
    assert performed == ["ran"]
    assert r.llen(b"resque:queue:caf\xe9") == 1
    assert "is not valid UTF-8" in caplog.text


def test_a_failure_list_of_another_type_keeps_the_job_in_flight_until_it_is_fixed(
    r: redis.Redis, quiet_title: None, caplog: pytest.LogCaptureFixture
) -> None:
    r.flushall()
    r.set(KEYS.failed, "someone else's string")
    Resque(r).enqueue_to("fuzz", "Nope", 1)  # an unknown class: a failure to record
    worker = Worker(["fuzz"], redis=r, fork=False, interval=0)
    worker.startup()
    import threading
    fixer = threading.Timer(0.5, lambda: r.delete(KEYS.failed))
    fixer.start()
    try:
        worker.loop()
    finally:
        fixer.cancel()
        worker.unregister()
    assert "holds a string, not a list" in caplog.text
    assert [json.loads(f)["payload"]["class"] for f in r.lrange(KEYS.failed, 0, -1)] == ["Nope"]
    assert r.get(KEYS.stat("processed")) == b"1"


# --- failure lists, the registry and the heartbeat, read by admin verbs and the dashboard ---


def _url(r: redis.Redis) -> str:
    kwargs = r.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/0"


def _cli(r: redis.Redis, *args: str) -> Any:
    result = CliRunner().invoke(main, [*args, "--redis", _url(r)],
                                env={"RESQUE_REDIS_WAIT": "0"})
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def web(r: redis.Redis) -> Iterator[Any]:
    """One dashboard for all the examples of a test (an app per example is slow)."""
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from resque.web import create_app

    with TestClient(create_app(Resque(r)), base_url="http://127.0.0.1",
                    follow_redirects=False) as client:
        yield client


def _pages(web: Any, *paths: str) -> None:
    """Each page answers 200: every one of them lists, or is linked from, what is stored."""
    for path in paths:
        response = web.get(path)
        assert response.status_code == 200, (path, response.text[:500])


def _snapshot(r: redis.Redis) -> dict[bytes, bytes]:
    """Every key but the dashboard's own chart samples."""
    return {key: as_bytes(r.dump(key)) for key in bytes_list(r.keys("*"))
            if not key.startswith(b"resque:metrics")}


good_record = layout.failure_record(
    payload={"class": "FuzzGood", "args": [1]}, exception="RuntimeError", error="boom",
    backtrace=[], worker=f"{HOST}:1:fuzz", queue="fuzz", now=0)


@FUZZ
@given(entries=st.lists(bad_items, min_size=1, max_size=4))
@example(entries=[b'{"failed_at":"x","payload":{"class":"A","args":["' + b"y" * 10_000_000
                  + b'"]},"queue":"q"}'])
def test_failure_lists_with_anything_in_them_list_show_and_refuse_retry_clearly(
    r: redis.Redis, web: Any, entries: list[bytes]
) -> None:
    r.flushall()
    r.rpush(KEYS.failed, good_record, *entries)
    r.rpush(KEYS.queue("bystander"), layout.encode_job("FuzzGood", ["x"]))
    before = _snapshot(r)
    admin = Admin(Resque(r))
    listed = admin.failures.page(0, 50)
    assert listed.total == len(entries) + 1
    for entry in admin.failures.scan():
        shown = admin.failures.get(entry.id)
        assert shown.raw == entry.raw
        json.dumps(entry.to_json(), default=str)
    _cli(r, "failed", "list", "--json")
    _cli(r, "failed", "count")
    _cli(r, "stats")
    _pages(web, "/", "/failed", *(f"/failures/{e.id}" for e in admin.failures.scan()))
    assert _snapshot(r) == before  # reading touched nothing
    # Retrying every entry requeues what can be requeued and says why the rest cannot.
    malformed = [e for e in admin.failures.scan() if e.requeue_problem()]
    result = admin.failures.requeue_where()
    assert result.to_json()
    assert r.llen(KEYS.failed) == len(entries) + 1  # retried entries stay, marked
    for entry in malformed:
        assert admin.failures.get(entry.id).raw == entry.raw  # kept as they were


worker_ids = st.one_of(
    st.text(max_size=40),
    st.builds(lambda h, p, q: f"{h}:{p}:{q}", st.text(max_size=10).filter(lambda h: h != HOST),
              st.one_of(st.integers(), st.text(max_size=5)), st.text(max_size=10)),
)


@FUZZ
@given(
    members=st.lists(st.one_of(worker_ids.map(lambda s: s.encode("utf-8", "surrogatepass")),
                               st.binary(max_size=30)), min_size=1, max_size=4, unique=True),
    records=st.lists(st.one_of(bad_items, st.binary(max_size=50)), max_size=4),
    beats=st.lists(st.one_of(st.binary(max_size=40), st.text(max_size=30).map(str.encode)),
                   max_size=4),
)
@example(members=[b"elsewhere:1:q"], records=[b"{" * 10_000_000], beats=[b"\xff" * 1000])
def test_a_registry_and_heartbeats_full_of_junk_are_shown_and_left_alone(
    r: redis.Redis, web: Any, quiet_title: None, members: list[bytes], records: list[bytes],
    beats: list[bytes],
) -> None:
    r.flushall()
    performed.clear()
    r.sadd(KEYS.workers, *members)
    for member, record in zip(members, records, strict=False):
        r.set(b"resque:worker:" + member, record)
        r.set(b"resque:worker:" + member + b":started", record[:40])
    for member, beat in zip(members, beats, strict=False):
        r.hset(KEYS.heartbeat, member, beat)
    foreign = _snapshot(r)
    admin = Admin(Resque(r))
    found = admin.workers()
    assert len(found) == len(members)
    json.dumps([w.to_json() for w in found], default=str)
    _cli(r, "workers", "--json")
    _cli(r, "stats")
    _pages(web, "/", "/workers", "/working",
           *(f"/workers/{quote(w.id.encode('utf-8', 'surrogateescape'), safe='')}"
             for w in found))
    # A worker starts (pruning on the way) and works. Junk stays unless it is provably dead:
    # a heartbeat that reads as a time older than the expiry (say "0", epoch seconds).
    beat_of = dict(zip(members, beats, strict=False))
    expired = {m for m in members if _expired(beat_of.get(m))}
    Resque(r).enqueue_to("fuzz", "FuzzGood", "ran")
    burst(r)
    assert performed == ["ran"]
    for key, dump in foreign.items():
        if key in (KEYS.heartbeat.encode(), KEYS.workers.encode()) or any(
                key.startswith(b"resque:worker:" + m) for m in expired):
            continue
        assert r.dump(key) == dump, key
    assert set(members) - expired <= r.smembers(KEYS.workers)


def _expired(beat: bytes | None) -> bool:
    seen = layout.parse_time(layout.text(beat)) if beat is not None else None
    return seen is not None and time.time() - seen.timestamp() > 300


def test_the_dashboard_lists_workers_whose_host_is_not_utf8(r: redis.Redis, web: Any) -> None:
    r.flushall()
    r.sadd(KEYS.workers, b"caf\xe9:1:q", b"other:2:q")
    page = web.get("/workers").text
    assert 'href="/workers/caf%E9%3A1%3Aq"' in page
    _pages(web, "/workers", "/workers/caf%E9%3A1%3Aq", "/workers/other%3A2%3Aq")
    shown = web.get("/workers/caf%E9%3A1%3Aq").text  # the odd byte shown as "?"
    assert '<h1>Worker <span class="hl mono">caf?:1:q</span></h1>' in shown


@pytest.mark.parametrize(("key", "make"), [
    (KEYS.workers, lambda r, k: r.hset(k, "a", "b")),
    (KEYS.heartbeat, lambda r, k: r.set(k, "not a hash")),
    (KEYS.inflight_workers, lambda r, k: r.rpush(k, "x")),
    (KEYS.pause, lambda r, k: r.rpush(k, "true")),
    (KEYS.stat("processed"), lambda r, k: r.set(k, "not a number")),
])
def test_registry_keys_of_the_wrong_type_are_reported_and_the_worker_still_works(
    r: redis.Redis, quiet_title: None, caplog: pytest.LogCaptureFixture, key: str, make: Any
) -> None:
    r.flushall()
    performed.clear()
    make(r, key)
    dump = r.dump(key)
    Resque(r).enqueue_to("fuzz", "FuzzGood", "ran")
    burst(r)
    assert performed == ["ran"]
    assert r.dump(key) == dump
    assert r.llen(KEYS.queue("fuzz")) == 0 and not r.keys("resque:inflight:*")
    assert "Traceback" not in caplog.text
