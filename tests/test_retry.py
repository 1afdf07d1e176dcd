"""Retries (resque.policies.retry): the policy's decisions, resque-retry's keys, and real
workers retrying in every execution mode, with exact counts and records.

Jobs come from tests/support/apps/retryapp.py; each attempt leaves ``name:tag:attempt`` in
``retryapp:log``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

import pytest
import redis
import retryapp
from click.testing import CliRunner
from support import webkit
from support.peers import require_ruby_resque
from support.replies import bytes_list, texts
from support.workerkit import Workers, failures, wait_for

from resque import Resque, Retry, layout
from resque.cli import main
from resque.policies.retry import Delays, Exponential, Fixed, delays, exponential

MODES = {"fork": [], "in-process": ["--no-fork"], "threads": ["-c", "2"]}
KEYS = layout.Keys()


def attempts(r: redis.Redis) -> list[str]:
    return texts(r.lrange(retryapp.LOG, 0, -1))


def stat(r: redis.Redis, name: str) -> int:
    return int(r.get(f"resque:stat:{name}") or 0)


def retry_key(job: str, *args: Any) -> str:
    return layout.retry_key(KEYS, job, list(args))


def leftovers(r: redis.Redis) -> list[bytes]:
    """Retry state still in Redis: keys, failure copies, the index, in-flight lists."""
    return sorted(bytes_list([*r.keys("resque:resque-retry:*"),
                              *r.keys("resque:failure-resque-retry:*"),
                              *r.keys("resque:retries:*"), *r.keys("resque:inflight:*")]))


def run(workers: Workers, mode: str, *extra: str) -> None:
    workers.run("retry", *MODES[mode], *extra, app="retryapp")


# --- the policy -------------------------------------------------------------------------------


def test_backoffs_give_the_documented_waits() -> None:
    assert [Fixed(5)(n) for n in (1, 2, 9)] == [5, 5, 5]
    assert [exponential(first=2, factor=3, cap=50)(n) for n in (1, 2, 3, 4)] == [2, 6, 18, 50]
    assert [delays(1, 10, 60)(n) for n in (1, 2, 3, 4, 5)] == [1, 10, 60, 60, 60]


def test_jitter_spreads_within_its_fraction() -> None:
    backoff = Exponential(first=100, factor=1, cap=100, jitter=0.1)
    waits = [backoff(1) for _ in range(200)]
    assert min(waits) >= 90 and max(waits) <= 110 and len(set(waits)) > 100


def test_retry_takes_seconds_lists_or_backoffs() -> None:
    assert Retry(backoff=3).delay(7) == 3.0
    assert Retry(backoff=[1, 2]).delay(5) == 2.0
    assert Retry(backoff=Delays((4.0,))).delay(1) == 4.0


@pytest.mark.parametrize("bad", [{"max_attempts": 0}, {"max_attempts": True},
                                 {"backoff": -1}, {"backoff": []}])
def test_retry_refuses_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Retry(**bad)


def test_retry_refuses_what_is_not_an_exception_class() -> None:
    with pytest.raises(TypeError, match="exception classes"):
        Retry(on=(ValueError, "KeyError"))  # type: ignore[arg-type]


def test_give_up_on_wins_over_on() -> None:
    policy = Retry(on=Exception, give_up_on=KeyError)
    assert (policy.retries(ValueError()), policy.retries(KeyError()),
            policy.retries(SystemExit())) == (True, False, False)


# --- resque-retry's keys ----------------------------------------------------------------------


def test_retry_key_is_resque_retry_s() -> None:
    assert layout.retry_key(KEYS, "Mailer::Welcome", []) == "resque:resque-retry:Mailer::Welcome"
    assert layout.retry_key(layout.Keys(""), "A B", [1]) == (
        "resque-retry:AB:356a192b7913b04c54574d18c28d46e6395428ab")  # sha1("1")


ARGS_FOR_DIGEST: list[list[Any]] = [
    ["plain", 1, -2, 2**70, 1.5, 1e20, 1e-7, True, False, None],
    [["nested", [1, [2]], []], "x"],
    [{"a": 1, "b": [1, "two", None, 2.5], "q": 'say "hi"\n#{x}', "e": {}}],
    ["ünïcödé ✓", "tab\there"],
]


@pytest.mark.parametrize("args", ARGS_FOR_DIGEST)
def test_retry_key_digest_matches_ruby_join(args: list[Any]) -> None:
    """The digest Ruby computes (``Digest::SHA1.hexdigest(args.join('-'))``) of the same JSON
    args, so resque-retry's tab and ours name the same key."""
    require_ruby_resque()
    script = ('require "json"; require "digest/sha1"; '
              'puts Digest::SHA1.hexdigest(JSON.parse(STDIN.read).join("-"))')
    done = subprocess.run(["ruby", "-e", script], input=json.dumps(args), capture_output=True,
                          text=True, timeout=60, check=True)
    assert layout.retry_identifier(args) == done.stdout.strip()


# --- the scripts, directly: their refusal paths ----------------------------------------------


def begin(r: redis.Redis, key: str) -> int:
    script = r.register_script(layout_source("retry_begin"))
    return int(script(keys=[key, "resque:retries:due"], args=[100]))


def layout_source(name: str) -> str:
    from resque import scripts

    return scripts.source(name)


def test_begin_writes_nothing_for_a_first_attempt(r: redis.Redis) -> None:
    assert begin(r, "resque:resque-retry:X") == 0
    assert r.keys("*") == []


def test_begin_counts_a_retry_and_takes_it_off_the_index(r: redis.Redis) -> None:
    r.set("resque:resque-retry:X", 0)
    r.zadd("resque:retries:due", {"resque:resque-retry:X": 123})
    assert begin(r, "resque:resque-retry:X") == 1
    assert (r.get("resque:resque-retry:X"), r.exists("resque:retries:due")) == (b"1", 0)
    assert 0 < r.ttl("resque:resque-retry:X") <= 100


@pytest.mark.parametrize("junk", ["string", "list"])
def test_begin_refuses_a_key_that_is_no_count(r: redis.Redis, junk: str) -> None:
    if junk == "string":
        r.set("resque:resque-retry:X", "not a number")
    else:
        r.rpush("resque:resque-retry:X", "a")
    assert begin(r, "resque:resque-retry:X") == -1
    assert r.ttl("resque:resque-retry:X") == -1


def schedule(r: redis.Redis, *, token: str = "7:1", now: bool = False,
             record: str = "") -> Any:
    """retry.lua with the worker ``w``'s keys, as RetryStore.schedule calls it."""
    from resque.policies.retry_store import RETRY_SCRIPT

    item = "" if now else '{"class":"X","args":[1],"queue":"q"}'
    keys = ["resque:inflight:w", "resque:worker:w", "resque:stat:processed",
            "resque:stat:processed:w", "resque:stat:failed", "resque:stat:failed:w",
            "resque:resque-retry:X", "resque:failure-resque-retry:X", "resque:retries:due",
            "resque:delayed_queue_schedule", "resque:delayed:2000000000",
            f"resque:timestamps:{item}", "resque:queues", "resque:queue:q",
            "resque:wake:q", "resque:failed", "resque:failed_queues"]
    args: list[str | int] = [token, 0, 100, "", 60, 2000000000, item, "delayed:2000000000", "q",
            '{"class":"X","args":[1]}', "1", record, ""]
    return r.register_script(RETRY_SCRIPT)(keys=keys, args=args)


def in_flight(r: redis.Redis) -> None:
    r.rpush("resque:inflight:w", '["q","{\\"class\\":\\"X\\",\\"args\\":[1]}","7:1"]')
    r.set("resque:worker:w", "working")


def test_retry_script_queues_the_delayed_retry_and_settles_the_entry(r: redis.Redis) -> None:
    in_flight(r)
    assert schedule(r) == 1
    item = '{"class":"X","args":[1],"queue":"q"}'
    assert r.lrange("resque:delayed:2000000000", 0, -1) == [item.encode()]
    assert r.smembers(f"resque:timestamps:{item}") == {b"delayed:2000000000"}
    assert r.zrange("resque:delayed_queue_schedule", 0, -1, withscores=True) == [
        (b"2000000000", 2000000000.0)]
    assert (r.exists("resque:inflight:w"), r.exists("resque:worker:w")) == (0, 0)
    assert (stat(r, "processed"), stat(r, "failed"), r.get("resque:resque-retry:X")) == (
        1, 1, b"0")
    assert r.zscore("resque:retries:due", "resque:resque-retry:X") == 2000000000


def test_retry_script_due_now_goes_to_the_queue_tail(r: redis.Redis) -> None:
    in_flight(r)
    r.rpush("resque:queue:q", "first")
    assert schedule(r, now=True) == 1
    assert r.lrange("resque:queue:q", 0, -1) == [b"first", b'{"class":"X","args":[1]}']
    assert r.smembers("resque:queues") == {b"q"} and r.keys("resque:delayed*") == []


def test_retry_script_writes_nothing_for_an_entry_no_longer_in_flight(r: redis.Redis) -> None:
    in_flight(r)
    assert schedule(r, token="8:1") == 0
    assert sorted(r.keys("*")) == [b"resque:inflight:w", b"resque:worker:w"]


@pytest.mark.parametrize("bad", ["resque:delayed:2000000000", "resque:delayed_queue_schedule",
                                 "resque:failed"])
def test_retry_script_refuses_a_key_of_another_type(r: redis.Redis, bad: str) -> None:
    in_flight(r)
    r.hset(bad, "x", "y")
    with pytest.raises(redis.ResponseError, match="REFUSED"):
        schedule(r, record='{"failed_at":"x"}')
    assert r.llen("resque:inflight:w") == 1 and stat(r, "processed") == 0
    assert r.exists("resque:resque-retry:X") == 0


def test_retry_script_refuses_a_queue_of_another_type_when_due_now(r: redis.Redis) -> None:
    in_flight(r)
    r.set("resque:queue:q", "junk")
    with pytest.raises(redis.ResponseError, match="REFUSED"):
        schedule(r, now=True)
    assert r.llen("resque:inflight:w") == 1 and r.exists("resque:resque-retry:X") == 0


# --- real workers -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_job_that_fails_twice_succeeds_on_its_third_attempt(
    mode: str, r: redis.Redis, workers: Workers
) -> None:
    Resque(r).enqueue_to("retry", "Flaky", "a", 2)
    run(workers, mode)
    assert attempts(r) == ["flaky:a:1", "flaky:a:2", "flaky:a:3"]
    assert (stat(r, "processed"), stat(r, "failed"), failures(r)) == (3, 2, [])
    assert leftovers(r) == []


@pytest.mark.parametrize("mode", MODES)
def test_the_last_failure_is_recorded_once_with_its_attempt(
    mode: str, r: redis.Redis, workers: Workers
) -> None:
    Resque(r).enqueue_to("retry", "Flaky", "b", 9)
    run(workers, mode)
    assert attempts(r) == ["flaky:b:1", "flaky:b:2", "flaky:b:3", "gave_up:b:Transient:3"]
    [record] = failures(r)
    assert (record["exception"], record["attempt"], record["max_attempts"]) == (
        "retryapp.Transient", 3, 3)
    assert (stat(r, "processed"), stat(r, "failed")) == (3, 3)
    assert leftovers(r) == []


def test_a_give_up_exception_ends_the_job_at_once(r: redis.Redis, workers: Workers) -> None:
    Resque(r).enqueue_to("retry", "Fatal", "c")
    run(workers, "fork")
    assert attempts(r) == ["fatal:c:1", "gave_up:c:Final:1"]
    assert [(f["exception"], f["attempt"]) for f in failures(r)] == [("retryapp.Final", 1)]


def test_record_attempts_writes_a_record_per_attempt(r: redis.Redis, workers: Workers) -> None:
    Resque(r).enqueue_to("retry", "Everyone", "d")
    run(workers, "in-process")
    assert [(f["error"], f["attempt"]) for f in failures(r)] == [("attempt 1", 1),
                                                                 ("attempt 2", 2)]
    assert leftovers(r) == []


def test_a_job_without_a_policy_fails_once(r: redis.Redis, workers: Workers) -> None:
    Resque(r).enqueue_to("retry", "Plain", "e")
    run(workers, "fork")
    assert attempts(r) == ["plain:e:1"]
    assert "attempt" not in failures(r)[0]


def test_a_child_that_dies_is_retried(r: redis.Redis, workers: Workers) -> None:
    Resque(r).enqueue_to("retry", "Dies", "f")
    run(workers, "fork")
    assert attempts(r) == ["dies:f:1", "dies:f:2"]
    assert (failures(r), stat(r, "processed")) == ([], 2)
    assert leftovers(r) == []


@pytest.mark.parametrize("mode", MODES)
def test_async_jobs_retry(mode: str, r: redis.Redis, workers: Workers) -> None:
    Resque(r).enqueue_to("retry", "AsyncFlaky", "g", 1)
    run(workers, mode)
    assert attempts(r) == ["async:g:1", "async:g:2"]
    assert (failures(r), leftovers(r)) == ([], [])


def test_a_class_job_retries_by_its_dunder_policy(r: redis.Redis, workers: Workers) -> None:
    Resque(r).enqueue_to("retry", "ClassJob", "h")
    run(workers, "in-process")
    assert attempts(r) == ["class:h:1", "class:h:2"]
    assert failures(r) == []


def test_a_delayed_retry_waits_in_resque_scheduler_s_layout(
    r: redis.Redis, workers: Workers
) -> None:
    """The retry of a tracked job, a minute away: delayed with its id, its status retrying
    with the time it is due, its cause kept under resque-retry's failure key."""
    handle = Resque(r).enqueue(retryapp.tracked, "i")
    assert handle is not None
    before = int(time.time())
    run(workers, "fork")
    [due] = [int(ts) for ts in texts(r.zrange("resque:delayed_queue_schedule", 0, -1))]
    assert before + 60 <= due <= int(time.time()) + 61
    [item] = r.lrange(f"resque:delayed:{due}", 0, -1)
    assert json.loads(item)["id"] == handle.id and json.loads(item)["queue"] == "retry"
    key = retry_key("Tracked", "i")
    assert (r.get(key), r.zscore("resque:retries:due", key)) == (b"0", due)
    assert json.loads(r.get(f"resque:failure-{key[len('resque:'):]}") or "")["attempt"] == 1
    assert handle.id is not None
    record = Resque(r).statuses.get(handle.id)
    assert record is not None and (record.status, record.due) == ("retrying", due)
    assert "Transient: first attempt" in (record.error or "")
    shown = CliRunner().invoke(main, ["retries", "--json", "--redis", workers.redis_url])
    assert json.loads(shown.output) == {"total": 1, "retries": [{
        "key": key, "class": "Tracked", "next_attempt": 2, "due": due, "queue": "retry",
        "args": ["i"], "error": "retryapp.Transient: first attempt"}]}
    page = webkit.client(Resque(r)).get("/retries").text
    assert "<code class=\"cls\">Tracked</code>" in page
    assert "retryapp.Transient: first attempt" in page and "No retries pending" not in page


def test_the_retries_verb_and_tab_say_when_none_is_pending(r: redis.Redis,
                                                           redis_url: str) -> None:
    shown = CliRunner().invoke(main, ["retries", "--redis", redis_url])
    assert (shown.exit_code, shown.output) == (0, "no retries pending\n")
    assert "No retries pending" in webkit.client(Resque(r)).get("/retries").text


def test_a_retry_moved_by_our_scheduler_runs(r: redis.Redis, workers: Workers,
                                             tmp_path: Any) -> None:
    from support.schedulerkit import SchedulerProcess

    Resque(r).enqueue_to("retry", "Later", "j")
    run(workers, "fork")
    scheduler = SchedulerProcess(workers.redis_url, tmp_path / "scheduler.log", "-i", "0.2")
    try:
        wait_for(lambda: r.llen("resque:queue:retry") == 1, timeout=10, what="the retry")
    finally:
        scheduler.stop()
    run(workers, "fork")
    assert attempts(r) == ["later:j:1", "later:j:2"]
    assert (failures(r), leftovers(r)) == ([], [])


@pytest.mark.parametrize("mode", MODES)
def test_a_killed_worker_mid_retry_loses_nothing(
    mode: str, r: redis.Redis, workers: Workers
) -> None:
    """SIGKILL the worker while a retry's attempt runs: its recovery requeues the job, whose
    next attempt runs and succeeds; the killed attempt counts, nothing is left behind."""
    Resque(r).enqueue_to("retry", "Flaky", "k", 1)
    doomed = workers.start("retry", *MODES[mode], app="retryapp",
                           env={"RETRYAPP_HANG": "k:2"})
    wait_for(lambda: "flaky:k:2" in attempts(r), what="the second attempt")
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    r.delete("resque:pruning_dead_workers_in_progress")  # the dead worker's, taken at start
    run(workers, "fork")
    assert attempts(r) == ["flaky:k:1", "flaky:k:2", "flaky:k:3"]
    assert (failures(r), leftovers(r)) == ([], [])


def test_the_retries_tab_escapes_what_redis_holds(r: redis.Redis) -> None:
    hostile = "<script>alert(1)</script>"
    key = retry_key(hostile, hostile)
    r.set(key, 0)
    r.zadd("resque:retries:due", {key: 2000000000})
    r.set(layout.retry_failure_key(KEYS, key), json.dumps(
        {"exception": hostile, "error": hostile, "queue": hostile,
         "payload": {"class": hostile, "args": [hostile]}}))
    page = webkit.client(Resque(r)).get("/retries")
    assert page.status_code == 200 and hostile not in page.text
    assert page.text.count("&lt;script&gt;") >= 3


# --- per call ---------------------------------------------------------------------------------


def test_a_policy_travels_as_json_and_matches_exceptions_by_name() -> None:
    policy = Retry(max_attempts=4, backoff=exponential(first=2, cap=60), on=OSError,
                   give_up_on=FileNotFoundError, record_attempts=True)
    spec = policy.spec()
    assert spec == {"max_attempts": 4, "backoff": {"exponential": [2.0, 2.0, 60.0, 0.0]},
                    "on": ["OSError"], "give_up_on": ["FileNotFoundError"],
                    "record_attempts": True}
    read = Retry.from_spec(json.loads(json.dumps(spec)), None)
    assert (read.max_attempts, read.delay(3), read.record_attempts) == (4, 8.0, True)
    assert (read.retries(ConnectionError()), read.retries(FileNotFoundError()),
            read.retries(ValueError())) == (True, False, False)


def test_a_policy_that_cannot_travel_is_refused_at_once() -> None:
    with pytest.raises(TypeError, match="on_give_up"):
        retryapp.plain.options(retry=Retry(on_give_up=print))
    with pytest.raises(TypeError, match="cannot travel"):
        retryapp.plain.options(retry=Retry(backoff=lambda n: n))
    with pytest.raises(ValueError, match="positive number of seconds"):
        retryapp.plain.options(timeout=0)


@pytest.mark.parametrize("spec", [[1], {"max_attempts": 0}, {"on": "Exception"},
                                  {"backoff": {"exponential": [1]}}])
def test_a_payload_policy_that_cannot_be_read_leaves_the_job_s_own(spec: Any) -> None:
    from resque.policies.retry import policy_of

    assert policy_of(retryapp.flaky, {"class": "Flaky", "retry": spec}) is retryapp.flaky.retry


def test_a_call_s_policies_ride_in_its_payload(r: redis.Redis) -> None:
    handle = retryapp.plain.options(retry=Retry(max_attempts=2, backoff=[5]), timeout=2,
                                    client=Resque(r)).enqueue("p")
    assert handle is not None
    [raw] = texts(r.lrange("resque:queue:retry", 0, -1))
    assert raw == (
        '{"class":"Plain","args":["p"],"id":"' + str(handle.id) + '","retry":{"max_attempts":2,'
        '"backoff":[5.0],"on":["Exception"],"give_up_on":[],"record_attempts":false},'
        '"timeout":2.0}')


@pytest.mark.parametrize("mode", ["fork", "threads"])
def test_a_call_s_retry_policy_replaces_the_job_s(
    mode: str, r: redis.Redis, workers: Workers
) -> None:
    client = Resque(r)
    retryapp.plain.options(retry=Retry(max_attempts=2, on=retryapp.Transient),
                           client=client).enqueue("q")
    retryapp.flaky.options(retry=Retry(max_attempts=1), client=client).enqueue("s", 1)
    run(workers, mode)
    assert sorted(attempts(r)) == ["flaky:s:1", "gave_up:s:Transient:1", "plain:q:1",
                                   "plain:q:2"]
    assert sorted((f["payload"]["class"], f["attempt"], f["max_attempts"])
                  for f in failures(r)) == [("Flaky", 1, 1), ("Plain", 2, 2)]
    assert leftovers(r) == []
