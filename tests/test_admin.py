"""The admin library (resque/admin): failures listed, retried and removed by id, safely while
others append and remove; queues, workers, stats, pausing and pruning.

Records come from the golden captures of Ruby resque 3.0 and Perl Resque, and from our own
``layout.failure_record``; every assertion reads the raw bytes Ruby and resque-web will read.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from support.failurekit import (
    MALFORMED,
    PERL_RETRIED,
    RUBY_SCRIPT,
    failed,
    our_record,
    perl_null_backtrace_record,
    perl_records,
    ruby_phase_keys,
    ruby_phase_list,
    ruby_record,
    ruby_resque_lib,
    ruby_retried_record,
    utc_epoch,
)
from support.replies import bytes_list

from resque import Resque, layout
from resque.admin import (
    Admin,
    FailureEntry,
    FailureId,
    FailureNotFound,
    Filter,
    NotAFailureList,
    NotRequeueable,
)
from resque.failure.operations import CHUNK


@pytest.fixture
def admin(resque: Resque) -> Admin:
    return Admin(resque)


def push(r: redis.Redis, *records: str | bytes, list_name: str = "failed") -> None:
    r.rpush(f"resque:{list_name}", *records)


def queued(r: redis.Redis, queue: str) -> list[bytes]:
    return bytes_list(r.lrange(f"resque:queue:{queue}", 0, -1))


def entry_at(admin: Admin, index: int, list_name: str = "failed") -> FailureEntry:
    raw = admin.redis.lindex(f"resque:{list_name}", index)
    assert isinstance(raw, bytes)
    return FailureEntry.from_raw(list_name, index, raw)


def numbered(n: int, start: int = 0, class_name: str = "Ours", queue: str = "py") -> list[str]:
    return [our_record(class_name, [i], queue) for i in range(start, start + n)]


# --- reading records of every origin ------------------------------------------------------------


def test_ruby_perl_and_our_records_list_alike(
    admin: Admin, r: redis.Redis, golden_dir: Path
) -> None:
    perl = perl_null_backtrace_record(golden_dir)
    push(r, ruby_record(golden_dir), perl, our_record())
    ruby_entry, perl_entry, ours = admin.failures.page(newest=False).entries

    assert (ruby_entry.class_name, ruby_entry.args, ruby_entry.queue) == ("Fail", [], "low")
    assert ruby_entry.exception == "RuntimeError"
    assert ruby_entry.backtrace == ["harness/ruby/jobs.rb:26:in `perform'"]
    assert ruby_entry.worker == "vm:1210:high,low"
    assert ruby_entry.failed_at is not None and ruby_entry.problems == ()

    assert perl_entry.exception == "Resque::Failure::Job"
    assert perl_entry.backtrace == []  # Perl's null
    assert (perl_entry.class_name, perl_entry.args, perl_entry.queue) == ("Sleep", [30], "dirty")
    assert perl_entry.problems == ()

    assert (ours.class_name, ours.args, ours.queue, ours.exception) == (
        "Ours", [1], "py", "ValueError")


def test_every_perl_record_in_the_captures_reads_without_problems(
    admin: Admin, r: redis.Redis, golden_dir: Path
) -> None:
    records = perl_records(golden_dir)
    assert len(records) >= 4
    push(r, *records)
    for entry in admin.failures.scan():
        assert entry.problems == ()
        assert entry.requeue_problem() is None


def test_retried_at_reads_in_ruby_and_perl_forms(
    admin: Admin, r: redis.Redis, golden_dir: Path
) -> None:
    push(r, ruby_retried_record(golden_dir), PERL_RETRIED)
    ruby_entry, perl_entry = admin.failures.page(newest=False).entries
    assert ruby_entry.retried and ruby_entry.retried_at_text == "2026/11/27 23:46:25 UTC"
    assert ruby_entry.retried_at is not None
    assert perl_entry.retried and perl_entry.retried_at is not None  # no zone: local time


def test_malformed_entries_are_shown_with_their_problem_and_never_hide_the_rest(
    admin: Admin, r: redis.Redis, golden_dir: Path
) -> None:
    push(r, ruby_record(golden_dir), *MALFORMED, our_record())
    entries = admin.failures.page(count=100, newest=False).entries
    assert len(entries) == len(MALFORMED) + 2
    assert entries[0].problems == () and entries[-1].problems == ()
    problems = {entry.raw: entry.problems for entry in entries[1:-1]}
    assert problems[b"not json at all"][0].startswith("not JSON")
    assert problems[b""][0].startswith("not JSON")
    assert problems[b"[1,2]"] == ("a JSON list, not an object",)
    assert "no payload object" in problems[b"{}"]
    assert "no readable failed_at" in problems[MALFORMED[-1]]
    assert entries[1].to_json()["raw"] == "not json at all"


def test_a_record_without_failed_at_is_flagged_but_can_be_retried(
    admin: Admin, r: redis.Redis
) -> None:
    push(r, MALFORMED[-1])
    entry = admin.failures.page().entries[0]
    assert entry.malformed and entry.requeue_problem() is None
    admin.failures.requeue(entry)
    assert queued(r, "low") == [b'{"class":"NoTime","args":[]}']


# --- paging -------------------------------------------------------------------------------------


def test_listing_is_newest_first_by_default_and_oldest_first_on_request(
    admin: Admin, r: redis.Redis
) -> None:
    push(r, *numbered(5))
    newest = admin.failures.page(0, 2)
    assert [e.args for e in newest.entries] == [[4], [3]]
    assert (newest.total, newest.more) == (5, True)
    oldest = admin.failures.page(4, 2, newest=False)
    assert [e.args for e in oldest.entries] == [[4]]
    assert oldest.more is False


def test_pages_run_through_failed_then_each_multi_queue_list(admin: Admin, r: redis.Redis) -> None:
    push(r, *numbered(2))
    push(r, *numbered(3, 10, queue="b"), list_name="b_failed")
    push(r, *numbered(2, 20, queue="a"), list_name="a_failed")
    r.sadd("resque:failed_queues", "a_failed", "b_failed")
    assert admin.failures.lists() == ["failed", "a_failed", "b_failed"]
    oldest = [e.args[0] for e in admin.failures.page(0, 100, newest=False).entries]  # type: ignore[index]
    assert oldest == [0, 1, 20, 21, 10, 11, 12]
    middle = admin.failures.page(3, 3, newest=False).entries
    assert [str(e.id).split("-")[0] for e in middle] == ["a_failed:1", "b_failed:0", "b_failed:1"]
    newest = [e.args[0] for e in admin.failures.page(1, 3).entries]  # type: ignore[index]
    assert newest == [11, 10, 21]


def test_filters_select_by_queue_class_and_list(admin: Admin, r: redis.Redis) -> None:
    push(r, *[our_record("A" if i % 2 else "B", [i], "q1" if i < 6 else "q2") for i in range(10)])
    push(r, our_record("A", [99], "q3"), list_name="q3_failed")
    r.sadd("resque:failed_queues", "q3_failed")
    page = admin.failures.page(0, 2, newest=False, where=Filter(class_name="A"))
    assert [e.args for e in page.entries] == [[1], [3]]
    assert page.total is None and page.more
    last = admin.failures.page(4, 10, newest=False, where=Filter(class_name="A"))
    assert [e.args for e in last.entries] == [[9], [99]] and not last.more
    assert admin.failures.count(Filter(queue="q1")) == 6
    assert admin.failures.count(Filter(queue="q2", class_name="A")) == 2
    assert admin.failures.count(Filter(list_name="q3_failed")) == 1
    assert admin.failures.count() == 11


def test_a_multi_queue_record_without_queue_takes_its_lists_queue(
    admin: Admin, r: redis.Redis
) -> None:
    record = json.loads(our_record("Q", [1], "low"))
    del record["queue"]
    push(r, json.dumps(record), list_name="low_failed")
    r.sadd("resque:failed_queues", "low_failed")
    (entry,) = admin.failures.scan(Filter(queue="low"))
    assert entry.queue == "low" and "no queue" in entry.problems
    admin.failures.requeue(entry)
    assert queued(r, "low") == [b'{"class":"Q","args":[1]}']


def test_a_page_of_a_big_list_is_two_round_trips_of_constant_size(
    admin: Admin, r: redis.Redis
) -> None:
    push(r, *numbered(5000))
    r.config_resetstat()
    page = admin.failures.page(2500, 20)
    assert [e.args for e in page.entries][0] == [2499]
    stats = r.info("commandstats")
    assert stats["cmdstat_lrange"]["calls"] == 1
    assert "cmdstat_keys" not in stats and "cmdstat_scan" not in stats


# --- ids ----------------------------------------------------------------------------------------


def test_an_id_is_the_index_and_a_digest_of_the_raw_bytes(admin: Admin, r: redis.Redis) -> None:
    record = our_record()
    push(r, our_record("Other"), record)
    entry = admin.failures.page().entries[0]
    assert str(entry.id) == f"1-{hashlib.sha1(record.encode()).hexdigest()[:12]}"
    assert FailureId.parse(str(entry.id)) == entry.id
    assert FailureId.parse("low_failed:3-0123456789ab") == FailureId("low_failed", 3,
                                                                    "0123456789ab")
    with pytest.raises(ValueError, match="not a failure id"):
        FailureId.parse("3")


def test_an_id_still_finds_its_entry_after_earlier_entries_were_removed(
    admin: Admin, r: redis.Redis
) -> None:
    push(r, *numbered(3000))
    target = entry_at(admin, 2500)
    r.ltrim("resque:failed", 1200, -1)  # someone removed 1,200 older entries
    found = admin.failures.get(str(target.id))
    assert found.raw == target.raw and found.id.index == 1300


def test_an_id_still_finds_its_entry_after_the_list_was_reordered(
    admin: Admin, r: redis.Redis
) -> None:
    """Perl's mass_remove and Ruby's failures:sort rewrite lists; entries can move to the tail."""
    push(r, *numbered(2500))
    target = entry_at(admin, 3)
    for _ in range(5):  # the first five entries go to the tail, as Perl's mass_remove does
        r.rpush("resque:failed", r.lpop("resque:failed"))  # type: ignore[arg-type]
    found = admin.failures.get(target.id)
    assert found.raw == target.raw and found.id.index == 2498
    admin.failures.remove(target.id)
    assert target.raw not in failed(r) and len(failed(r)) == 2499


def test_ids_and_list_names_reach_failure_lists_only(admin: Admin, r: redis.Redis) -> None:
    """Ids come from URLs in a dashboard: one naming a job queue must not touch it."""
    job = b'{"class":"Mail","args":[1]}'
    r.rpush("resque:queue:mail", job)
    fid = f"queue:mail:0-{hashlib.sha1(job).hexdigest()[:12]}"
    with pytest.raises(NotAFailureList, match="'queue:mail' is not a failure list"):
        admin.failures.remove(fid)
    with pytest.raises(NotAFailureList):
        admin.failures.requeue(FailureEntry.from_raw("queue:mail", 0, job))
    with pytest.raises(NotAFailureList):
        admin.failures.remove_where(Filter(class_name="Mail", list_name="queue:mail"))
    with pytest.raises(NotAFailureList):
        admin.failures.clear("queue:mail")
    assert queued(r, "mail") == [job]


def test_an_id_of_a_removed_entry_is_not_found(admin: Admin, r: redis.Redis) -> None:
    push(r, *numbered(3))
    target = entry_at(admin, 1)
    r.lrem("resque:failed", 1, target.raw)  # type: ignore[arg-type]  # typed str; bytes work
    with pytest.raises(FailureNotFound, match="removed or retried meanwhile"):
        admin.failures.get(target.id)


# --- retrying one -------------------------------------------------------------------------------


def test_retrying_a_ruby_failure_writes_exactly_what_ruby_writes(
    admin: Admin, r: redis.Redis, golden_dir: Path, utc: None
) -> None:
    push(r, ruby_record(golden_dir))
    entry = admin.failures.page().entries[0]
    updated = admin.failures.requeue(entry, now=utc_epoch("2026/11/27 23:46:25"))
    assert failed(r) == [ruby_retried_record(golden_dir).encode()]
    assert updated is not None and updated.raw == failed(r)[0]
    assert updated.id.index == 0 and updated.id != entry.id  # new bytes, new id
    assert queued(r, "low") == [b'{"class":"Fail","args":[]}']
    assert r.sismember("resque:queues", "low")


def test_retrying_a_multi_queue_failure_writes_the_zone_less_retried_at(
    admin: Admin, r: redis.Redis, golden_dir: Path, utc: None
) -> None:
    before = ruby_phase_list(golden_dir, "multi_queue_failed", "resque:low_failed")
    after = ruby_phase_list(golden_dir, "multi_queue_retried", "resque:low_failed")
    push(r, *before, list_name="low_failed")
    r.sadd("resque:failed_queues", "low_failed")
    (entry,) = admin.failures.page().entries
    assert str(entry.id).startswith("low_failed:0-")
    admin.failures.requeue(str(entry.id), now=utc_epoch("2026/11/27 23:46:27"))
    assert failed(r, "low_failed") == [after[0].encode()]
    assert queued(r, "low") == [b'{"class":"Fail","args":["m"]}']


def test_retrying_a_perl_failure_keeps_its_bytes_and_pushes_class_and_args_only(
    admin: Admin, r: redis.Redis, golden_dir: Path
) -> None:
    perl = perl_null_backtrace_record(golden_dir)
    push(r, perl)
    updated = admin.failures.requeue(admin.failures.page().entries[0])
    assert updated is not None
    assert updated.raw.startswith(perl.encode()[:-1] + b',"retried_at":"')
    assert queued(r, "dirty") == [b'{"class":"Sleep","args":[30]}']


def test_retrying_again_updates_retried_at_where_it_stands(admin: Admin, r: redis.Redis) -> None:
    push(r, PERL_RETRIED)
    updated = admin.failures.requeue(admin.failures.page().entries[0], now=0)
    assert updated is not None
    record = json.loads(updated.raw)
    assert list(record)[0] == "retried_at" and record["retried_at"] != "2026/11/27 23:50:01"
    assert record["retried_at"] == layout.failed_at(0)
    assert queued(r, "low") == [b'{"class":"Fail","args":["x"]}']


def test_a_retry_wakes_idle_workers_through_the_client_push(admin: Admin, r: redis.Redis) -> None:
    push(r, our_record(queue="mail"))
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("resque:wake:mail")
    pubsub.get_message(timeout=1)
    admin.failures.requeue(admin.failures.page().entries[0])
    message = pubsub.get_message(timeout=2)
    assert message is not None and message["channel"] == b"resque:wake:mail"
    pubsub.close()


def test_retry_and_remove_takes_the_entry_out(admin: Admin, r: redis.Redis) -> None:
    push(r, *numbered(3))
    target = entry_at(admin, 1)
    assert admin.failures.requeue(target.id, remove=True) is None
    assert failed(r) == [entry_at(admin, 0).raw, entry_at(admin, 1).raw]
    assert target.raw not in failed(r)
    assert queued(r, "py") == [b'{"class":"Ours","args":[1]}']


def test_an_entry_without_a_job_cannot_be_retried_and_nothing_changes(
    admin: Admin, r: redis.Redis
) -> None:
    push(r, *MALFORMED[:5])
    for entry in admin.failures.scan():
        with pytest.raises(NotRequeueable, match="cannot be retried"):
            admin.failures.requeue(entry)
    assert failed(r) == MALFORMED[:5]
    assert not r.exists("resque:queues")


def test_a_queue_name_with_whitespace_is_not_retried(admin: Admin, r: redis.Redis) -> None:
    push(r, our_record(queue="bad queue"))
    with pytest.raises(NotRequeueable, match="whitespace"):
        admin.failures.requeue(admin.failures.page().entries[0])


# --- removing one -------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["ruby", "perl", "ours", "malformed", "empty"])
def test_removing_an_entry_of_any_origin_takes_exactly_that_entry(
    admin: Admin, r: redis.Redis, golden_dir: Path, origin: str
) -> None:
    record = {
        "ruby": ruby_record(golden_dir).encode(),
        "perl": perl_null_backtrace_record(golden_dir).encode(),
        "ours": our_record().encode(),
        "malformed": b"not json",
        "empty": b"",
    }[origin]
    neighbours = [r.encode() for r in numbered(4)]
    push(r, *neighbours[:2], record, *neighbours[2:])
    admin.failures.remove(entry_at(admin, 2).id)
    assert failed(r) == neighbours


def test_removing_one_of_two_identical_entries_leaves_the_other(
    admin: Admin, r: redis.Redis
) -> None:
    same, other = our_record().encode(), our_record("Other").encode()
    push(r, same, other, same)
    admin.failures.remove(entry_at(admin, 2))
    assert failed(r) == [same, other]


def test_removing_twice_says_the_entry_is_gone(admin: Admin, r: redis.Redis) -> None:
    push(r, *numbered(2))
    target = entry_at(admin, 0)
    admin.failures.remove(target.id)
    with pytest.raises(FailureNotFound):
        admin.failures.remove(target.id)
    with pytest.raises(FailureNotFound):  # even holding the entry itself
        admin.failures.remove(target)


def test_a_stale_id_removes_the_right_entry_after_a_ruby_style_removal(
    admin: Admin, r: redis.Redis
) -> None:
    """resque #1172: Ruby's index-based remove would take the wrong one here."""
    records = [x.encode() for x in numbered(6)]
    push(r, *records)
    target = entry_at(admin, 4)
    r.lset("resque:failed", 1, "")  # resque-web removes index 1 meanwhile...
    r.lrem("resque:failed", 1, "")
    admin.failures.remove(target.id)  # ...and our index 4 now holds another entry
    assert failed(r) == [records[0], records[2], records[3], records[5]]


def test_a_retry_by_a_stale_id_marks_the_right_entry(admin: Admin, r: redis.Redis) -> None:
    records = [x.encode() for x in numbered(4)]
    push(r, *records)
    target = entry_at(admin, 3)
    r.lrem("resque:failed", 1, records[0])  # type: ignore[arg-type]  # typed str; bytes work
    admin.failures.requeue(target.id)
    assert failed(r)[:2] == records[1:3]
    assert failed(r)[2].startswith(records[3][:-1] + b',"retried_at"')
    assert queued(r, "py") == [b'{"class":"Ours","args":[3]}']


def _append_while(r_url: str, stop: threading.Event, appended: list[bytes]) -> None:
    client = redis.Redis.from_url(r_url)
    n = 0
    while not stop.is_set() or n < 200:
        record = our_record("Appended", [n]).encode()
        client.rpush("resque:failed", record)
        appended.append(record)
        n += 1
    client.close()


def test_concurrent_appends_during_removes_never_cost_the_wrong_entry(
    admin: Admin, r: redis.Redis, redis_url: str
) -> None:
    records = [x.encode() for x in numbered(600)]
    push(r, *records)
    targets = [entry_at(admin, i) for i in range(0, 600, 3)]
    stop, appended = threading.Event(), []  # type: ignore[var-annotated]
    writer = threading.Thread(target=_append_while, args=(redis_url, stop, appended))
    writer.start()
    try:
        for target in reversed(targets[100:]):
            admin.failures.remove(target.id)
        for target in targets[:100]:
            admin.failures.remove(str(target.id))  # by text, as the CLI passes them
        appended_meanwhile = len(appended)
    finally:
        stop.set()
        writer.join()
    removed = {t.raw for t in targets}
    assert failed(r) == [x for x in records if x not in removed] + appended
    assert appended_meanwhile > 0


def test_two_admins_removing_concurrently_each_take_their_own_entries(
    admin: Admin, r: redis.Redis, redis_url: str
) -> None:
    """Two dashboards (or a dashboard and a CLI) removing at once, ids seen before either began."""
    records = [x.encode() for x in numbered(400)]
    push(r, *records)
    mine = [entry_at(admin, i) for i in range(1, 400, 4)]
    theirs = [entry_at(admin, i) for i in range(3, 400, 4)]

    def other_admin() -> None:
        other = Admin(redis=redis_url)
        for target in theirs:
            other.failures.remove(str(target.id))

    thread = threading.Thread(target=other_admin)
    thread.start()
    for target in reversed(mine):
        admin.failures.remove(target.id)
    thread.join()
    gone = {t.raw for t in mine + theirs}
    assert failed(r) == [x for x in records if x not in gone]


# --- bulk verbs ---------------------------------------------------------------------------------


def test_retry_all_pushes_oldest_first_and_skips_retried_and_unretriable_entries(
    admin: Admin, r: redis.Redis, golden_dir: Path
) -> None:
    push(r, our_record("A", [1]), ruby_retried_record(golden_dir), b"junk", our_record("A", [2]))
    result = admin.failures.requeue_where()
    assert (result.done, result.skipped, result.gone) == (2, 1, 0)
    assert result.skipped_ids == [str(entry_at(admin, 2).id)]
    assert queued(r, "py") == [b'{"class":"A","args":[1]}', b'{"class":"A","args":[2]}']
    assert all(b"retried_at" in raw for i, raw in enumerate(failed(r)) if i != 2)
    assert len(failed(r)) == 4


def test_retry_all_can_include_retried_entries_as_ruby_does(
    admin: Admin, r: redis.Redis, golden_dir: Path
) -> None:
    push(r, ruby_retried_record(golden_dir))
    assert admin.failures.requeue_where(include_retried=True).done == 1
    assert queued(r, "low") == [b'{"class":"Fail","args":[]}']


def test_retry_by_queue_or_class_and_remove_across_chunks(admin: Admin, r: redis.Redis) -> None:
    n = CHUNK * 2 + 500
    records = [our_record("A" if i % 3 == 0 else "B", [i], "q").encode() for i in range(n)]
    push(r, *records)
    result = admin.failures.requeue_where(Filter(class_name="A"), remove=True)
    wanted = [i for i in range(n) if i % 3 == 0]
    assert result.done == len(wanted)
    assert failed(r) == [x for i, x in enumerate(records) if i % 3]
    assert queued(r, "q") == [layout.encode_job("A", [i]).encode() for i in wanted]


def test_remove_by_class_keeps_everything_else_in_order(admin: Admin, r: redis.Redis,
                                                         golden_dir: Path) -> None:
    records = [our_record("Keep" if i % 2 else "Drop", [i]).encode() for i in range(2100)]
    records.insert(7, b"junk")
    records.insert(1500, perl_null_backtrace_record(golden_dir).encode())
    push(r, *records)
    result = admin.failures.remove_where(Filter(class_name="Drop"))
    assert result.done == 1050
    assert failed(r) == [x for x in records if b'"Drop"' not in x]


def test_remove_malformed_entries_only(admin: Admin, r: redis.Redis, golden_dir: Path) -> None:
    good = [ruby_record(golden_dir).encode(), our_record().encode()]
    push(r, good[0], *MALFORMED, good[1])
    assert admin.failures.remove_where(Filter(malformed=True)).done == len(MALFORMED)
    assert failed(r) == good


def test_bulk_remove_with_concurrent_appends_keeps_every_appended_entry(
    admin: Admin, r: redis.Redis, redis_url: str
) -> None:
    records = [our_record("Drop" if i % 2 else "Keep", [i]).encode() for i in range(3000)]
    push(r, *records)
    stop, appended = threading.Event(), []  # type: ignore[var-annotated]
    writer = threading.Thread(target=_append_while, args=(redis_url, stop, appended))
    writer.start()
    try:
        admin.failures.remove_where(Filter(class_name="Drop"))
        appended_meanwhile = len(appended)
    finally:
        stop.set()
        writer.join()
    assert failed(r) == [x for x in records if b'"Drop"' not in x] + appended
    assert appended_meanwhile > 0


def test_clear_deletes_every_list_and_keeps_failed_queues(admin: Admin, r: redis.Redis) -> None:
    push(r, *numbered(3))
    push(r, *numbered(2), list_name="low_failed")
    r.sadd("resque:failed_queues", "low_failed")
    assert admin.failures.clear() == 5
    assert not r.exists("resque:failed", "resque:low_failed")
    assert r.smembers("resque:failed_queues") == {b"low_failed"}


def test_clear_one_list(admin: Admin, r: redis.Redis) -> None:
    push(r, *numbered(3))
    push(r, *numbered(2), list_name="low_failed")
    r.sadd("resque:failed_queues", "low_failed")
    assert admin.failures.clear("low_failed") == 2
    assert len(failed(r)) == 3


def test_clear_retried_removes_retried_entries_of_every_origin(
    admin: Admin, r: redis.Redis, golden_dir: Path
) -> None:
    keep = [ruby_record(golden_dir).encode(), our_record().encode()]
    push(r, ruby_retried_record(golden_dir), keep[0], PERL_RETRIED, keep[1])
    assert admin.failures.clear_retried().done == 2
    assert failed(r) == keep


# --- queues -------------------------------------------------------------------------------------


def test_queues_with_sizes(admin: Admin, resque: Resque) -> None:
    for i in range(1000):
        resque.push(f"q{i:04d}", {"class": "X", "args": [i]})
    resque.push("q0001", {"class": "X", "args": []})
    sizes = admin.queues()
    assert len(sizes) == 1000 and sizes["q0001"] == 2 and list(sizes)[0] == "q0000"


def test_peek_shows_jobs_and_bad_items_without_taking_them(admin: Admin, r: redis.Redis) -> None:
    r.rpush("resque:queue:low", '{"args":[1],"class":"Perl"}', "oops", '{"class":"X"}')
    items = admin.peek("low", 0, 10)
    assert [i.job for i in items] == [{"class": "Perl", "args": [1]}, None,
                                      {"class": "X", "args": []}]
    assert items[1].problem is not None and "not valid JSON" in items[1].problem
    assert [i.index for i in admin.peek("low", 1, 1)] == [1]
    assert r.llen("resque:queue:low") == 3


def test_enqueue_pushes_class_and_args_as_ruby_does(admin: Admin, r: redis.Redis) -> None:
    job_id = admin.enqueue("mail", "Mailer::Welcome", [42, "en"])
    assert queued(r, "mail") == [
        f'{{"class":"Mailer::Welcome","args":[42,"en"],"id":"{job_id}"}}'.encode()]
    assert r.smembers("resque:queues") == {b"mail"}


def test_enqueue_with_job_ids_off_pushes_rubys_exact_bytes(r: redis.Redis) -> None:
    assert Admin(Resque(r, job_ids=False)).enqueue("mail", "Mailer::Welcome", [42]) is None
    assert queued(r, "mail") == [b'{"class":"Mailer::Welcome","args":[42]}']


def test_remove_queue_forgets_it_and_deletes_its_jobs(admin: Admin, resque: Resque,
                                                     r: redis.Redis) -> None:
    resque.push("gone", {"class": "X", "args": []})
    resque.push("kept", {"class": "X", "args": []})
    assert admin.remove_queue("gone") == 1
    assert r.smembers("resque:queues") == {b"kept"} and not r.exists("resque:queue:gone")


# --- workers, pruning, stats, pausing -----------------------------------------------------------


def load_keys(r: redis.Redis, keys: dict[str, dict[str, object]]) -> None:
    for name, entry in keys.items():
        value = entry["value"]
        if entry["type"] == "string":
            r.set(name, value)  # type: ignore[arg-type]
        elif entry["type"] == "list":
            r.rpush(name, *value)  # type: ignore[misc]
        elif entry["type"] == "set":
            r.sadd(name, *value)  # type: ignore[misc]
        elif entry["type"] == "hash":
            r.hset(name, mapping=value)  # type: ignore[arg-type]


def test_workers_show_a_ruby_worker_as_resque_web_does(
    admin: Admin, r: redis.Redis, golden_dir: Path
) -> None:
    load_keys(r, ruby_phase_keys(golden_dir, "working"))
    (worker,) = admin.workers()
    assert (worker.id, worker.host, worker.pid, worker.queues) == (
        "vm:1210:high,low", "vm", 1210, ["high", "low"])
    assert worker.state == "working"
    assert worker.job == {"queue": "low", "run_at": "2026-11-27T23:46:22Z",
                          "payload": {"class": "Sleep", "args": [3]}}
    assert worker.started == "2026-11-27 23:46:22 +0000"
    assert worker.heartbeat == "2026-11-27T23:46:22+00:00"
    assert worker.heartbeat_age is not None and worker.heartbeat_age > 0
    assert (worker.processed, worker.failed) == (3, 1)


def test_an_idle_worker_without_heartbeat_or_stats(admin: Admin, r: redis.Redis) -> None:
    r.sadd("resque:workers", "box:7:*")
    (worker,) = admin.workers()
    assert worker.to_json() == {
        "id": "box:7:*", "host": "box", "pid": 7, "queues": ["*"], "state": "idle",
        "job": None, "started": None, "heartbeat": None, "heartbeat_age": None,
        "processed": 0, "failed": 0,
    }


def test_prune_unregisters_a_silent_worker_and_fails_its_ruby_job(
    admin: Admin, r: redis.Redis
) -> None:
    worker = "elsewhere:1:low"
    r.sadd("resque:workers", worker)
    r.hset("resque:workers:heartbeat", worker, "2020-01-01T00:00:00+00:00")
    r.set(f"resque:worker:{worker}",
          '{"queue":"low","run_at":"2020-01-01T00:00:00Z","payload":{"class":"Job","args":[]}}')
    result = admin.prune()
    assert result.pruned == [worker] and result.lock_holder is None
    assert not r.sismember("resque:workers", worker)
    (entry,) = admin.failures.scan()
    assert entry.exception == layout.PRUNE_DIRTY_EXIT and entry.class_name == "Job"


def test_prune_reports_who_holds_rubys_lock_unless_forced(admin: Admin, r: redis.Redis) -> None:
    r.set("resque:pruning_dead_workers_in_progress", "vm:99:high", ex=60)
    r.sadd("resque:workers", "elsewhere:1:low")
    r.hset("resque:workers:heartbeat", "elsewhere:1:low", "2020-01-01T00:00:00+00:00")
    held = admin.prune()
    assert (held.pruned, held.lock_holder) == ([], "vm:99:high") and held.lock_ttl
    assert admin.prune(force=True).pruned == ["elsewhere:1:low"]


def test_stats_are_rubys_info_plus_every_failure_list(admin: Admin, r: redis.Redis,
                                                      resque: Resque) -> None:
    resque.push("low", {"class": "X", "args": []})
    push(r, *numbered(2))
    push(r, *numbered(3), list_name="low_failed")
    r.sadd("resque:failed_queues", "low_failed")
    r.set("resque:stat:failed", 9)
    info = admin.stats()
    assert {k: info[k] for k in ("pending", "queues", "workers", "working", "failed")} == {
        "pending": 1, "queues": 1, "workers": 0, "working": 0, "failed": 2}
    assert (info["failed_all_lists"], info["failed_lists"], info["failed_stat"]) == (5, 2, 9)
    assert info["paused"] is False


def test_pause_sets_rubys_key_and_resume_deletes_it(admin: Admin, r: redis.Redis) -> None:
    admin.pause()
    assert r.get("resque:pause-all-workers") == b"true" and admin.paused()
    admin.resume()
    assert not r.exists("resque:pause-all-workers") and not admin.paused()
    r.set("resque:pause-all-workers", " TRUE\n")  # how Ruby reads it
    assert admin.paused()


def test_another_namespace_is_its_own_farm(r: redis.Redis, redis_url: str) -> None:
    other = Admin(redis=redis_url, namespace="staging")
    r.rpush("staging:failed", our_record())
    r.rpush("resque:failed", our_record(), our_record())
    assert other.failures.count() == 1
    other.failures.remove(other.failures.page().entries[0])
    assert r.llen("resque:failed") == 2 and not r.exists("staging:failed")


# --- with the real Ruby resque 3.0 --------------------------------------------------------------


@pytest.fixture(scope="module")
def ruby(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    lib = ruby_resque_lib()
    script = tmp_path_factory.mktemp("ruby-script") / "failures.rb"
    script.write_text(RUBY_SCRIPT)

    def run(url: str, *args: str) -> str:
        done = subprocess.run(["ruby", "-I", lib, str(script), url, *args],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


@pytest.mark.ruby
def test_failures_written_by_ruby_are_retried_and_removed_and_ruby_reads_the_result(
    ruby: Callable[..., str], admin: Admin, r: redis.Redis, redis_url: str
) -> None:
    ruby(redis_url, "fail", "1", "2", "3")
    entries = admin.failures.page(newest=False).entries
    assert [e.args for e in entries] == [[1], [2], [3]]
    assert entries[0].exception == "RuntimeError" and entries[0].backtrace

    admin.failures.requeue(entries[1].id)
    admin.failures.remove(entries[0].id)
    assert queued(r, "low") == [b'{"class":"Flaky","args":[2]}']
    read = json.loads(ruby(redis_url, "read"))
    assert [job["args"] for job in read] == [[2], [3]]
    assert read[0]["retried_at"] is not None and read[1]["retried_at"] is None

    ruby(redis_url, "fail")  # Ruby performs the retried job; it fails again
    ruby(redis_url, "remove", "0")  # and resque-web removes index 0 by its index
    assert [e.args for e in admin.failures.page(newest=False).entries] == [[3], [2]]


@pytest.mark.ruby
def test_an_id_listed_before_a_ruby_removal_still_retries_the_right_failure(
    ruby: Callable[..., str], admin: Admin, r: redis.Redis, redis_url: str
) -> None:
    ruby(redis_url, "fail", "1", "2", "3")
    last = admin.failures.page().entries[0]  # index 2: args [3]
    ruby(redis_url, "remove", "0")  # Ruby removes index 0 meanwhile: [3] is now at index 1
    admin.failures.requeue(str(last.id))
    assert queued(r, "low") == [b'{"class":"Flaky","args":[3]}']
    read = json.loads(ruby(redis_url, "read"))
    assert [(job["args"], job["retried_at"] is not None) for job in read] == [
        ([2], False), ([3], True)]
