"""The admin verbs of the ``resque`` command (resque/admin/cli.py).

Through click's CliRunner for each verb, and as real processes of the installed ``resque``
script: one plain, one on a pseudo-terminal answering the confirmation prompt.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import click
import pytest
import redis
from click.testing import CliRunner, Result
from support.failurekit import (
    MALFORMED,
    PERL_RETRIED,
    failed,
    our_record,
    perl_null_backtrace_record,
    ruby_phase_keys,
    ruby_record,
    ruby_retried_record,
)

from resque import Resque
from resque.admin import FailureEntry
from resque.cli import main

RESQUE = Path(sys.executable).parent / "resque"


class Run(Protocol):
    def __call__(self, *args: str, input: str | None = None) -> Result: ...


@pytest.fixture
def run(redis_url: str) -> Run:
    """``run("failed", "list")``: the verb against the test Redis, through CliRunner."""

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, [*args, "--redis", redis_url], input=input)

    return invoke


def ids_of(r: redis.Redis, list_name: str = "failed") -> list[str]:
    return [str(FailureEntry.from_raw(list_name, i, raw).id)
            for i, raw in enumerate(failed(r, list_name))]


@pytest.fixture
def mixed(r: redis.Redis, golden_dir: Path) -> list[bytes]:
    """One failure from Ruby, one from Perl, one of ours, one unreadable."""
    records = [ruby_record(golden_dir).encode(), perl_null_backtrace_record(golden_dir).encode(),
               our_record("Ours", [1], "py", error="first line\nsecond line").encode(),
               b"not json"]
    r.rpush("resque:failed", *records)
    return records


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --- the verbs are there, and cost the worker nothing -------------------------------------------


def test_help_lists_the_admin_verbs() -> None:
    result = CliRunner().invoke(main, ["--help"])
    for verb in ("queues", "peek", "enqueue", "remove-queue", "failed", "workers", "prune",
                 "stats", "pause", "resume"):
        assert f"  {verb} " in result.output


def test_resque_work_does_not_import_the_admin_code() -> None:
    code = ("import sys; from click.testing import CliRunner; from resque.cli import main; "
            "CliRunner().invoke(main, ['work', '--help']); print('resque.admin' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- failed list, count, show -------------------------------------------------------------------


def test_failed_lists_every_origin_newest_first(
    run: Run, mixed: list[bytes], r: redis.Redis
) -> None:
    result = run("failed")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "FAILED", "AT", "QUEUE", "CLASS", "EXCEPTION", "ERROR",
                                "RETRIED"]
    ids = ids_of(r)
    assert [line.split()[0] for line in lines[1:5]] == ids[::-1]
    assert "(unreadable)" in lines[1] and "not JSON" in lines[1]
    assert "Ours" in lines[2] and "first line" in lines[2] and "second line" not in lines[2]
    assert "Resque::Failure::Job" in lines[3] and "Dirty exit" in lines[3]
    assert "RuntimeError" in lines[4] and "boom" in lines[4]
    assert lines[-1] == "1-4 of 4, newest first"


def test_failed_list_json_pages_and_orders(run: Run, mixed: list[bytes], r: redis.Redis) -> None:
    data = as_json(run("failed", "list", "--json", "--oldest", "--start", "1", "--count", "2"))
    assert (data["start"], data["total"], data["more"]) == (1, 4, True)
    perl, ours = data["entries"]
    assert perl["id"] == ids_of(r)[1] and perl["backtrace"] == [] and perl["class"] == "Sleep"
    assert ours["error"] == "first line\nsecond line" and ours["args"] == [1]
    everything = as_json(run("failed", "--json"))  # the group's own --json, default verb
    assert [e["id"] for e in everything["entries"]] == ids_of(r)[::-1]
    assert everything["entries"][0]["raw"] == "not json"


def test_failed_list_filters(run: Run, r: redis.Redis) -> None:
    r.rpush("resque:failed", *[our_record("A" if i % 2 else "B", [i], "q") for i in range(6)])
    data = as_json(run("failed", "list", "--class", "A", "--oldest", "--count", "2", "--json"))
    assert [e["args"] for e in data["entries"]] == [[1], [3]]
    assert data["total"] is None and data["more"] is True
    result = run("failed", "list", "--queue", "nowhere")
    assert result.stdout.strip() == "no failures match"
    assert as_json(run("failed", "list", "--malformed", "--json"))["entries"] == []


def test_failed_count_per_list_and_filtered(run: Run, r: redis.Redis) -> None:
    r.rpush("resque:failed", our_record("A"), our_record("B"))
    r.rpush("resque:low_failed", our_record("A", queue="low"))
    r.sadd("resque:failed_queues", "low_failed")
    assert as_json(run("failed", "count", "--json")) == {
        "total": 3, "lists": {"failed": 2, "low_failed": 1}}
    assert run("failed", "count", "--class", "A").stdout.strip() == "2"
    assert "low_failed  1" in run("failed", "count").stdout


def test_failed_show_prints_the_whole_record(run: Run, mixed: list[bytes], r: redis.Redis) -> None:
    ruby_id, _, ours_id, junk_id = ids_of(r)
    out = run("failed", "show", ruby_id).stdout
    assert "exception: RuntimeError" in out
    assert "backtrace:\n  harness/ruby/jobs.rb:26:in `perform'" in out
    assert "error:\n  first line\n  second line\n" in run("failed", "show", ours_id).stdout
    junk = run("failed", "show", junk_id).stdout
    assert "not JSON" in junk and "raw:       not json" in junk
    data = as_json(run("failed", "show", ours_id, "--json"))
    assert data["raw"] == mixed[2].decode() and data["worker"] == "host:42:py"


def test_failed_show_of_a_bad_or_gone_id(run: Run, mixed: list[bytes], r: redis.Redis) -> None:
    bad = run("failed", "show", "banana")
    assert bad.exit_code == 2 and "not a failure id" in bad.output
    gone = run("failed", "show", "7-0123456789ab")
    assert gone.exit_code == 1 and "removed or retried meanwhile" in gone.output


# --- failed retry, remove -----------------------------------------------------------------------


def test_failed_retry_pushes_the_jobs_back_and_prints_the_new_ids(
    run: Run, mixed: list[bytes], r: redis.Redis
) -> None:
    ruby_id, perl_id, _, _ = ids_of(r)
    result = run("failed", "retry", ruby_id, perl_id)
    assert result.exit_code == 0, result.output
    new_ids = ids_of(r)[:2]
    assert result.stdout.splitlines() == [
        f"retried {ruby_id}: Fail to low, now {new_ids[0]}",
        f"retried {perl_id}: Sleep to dirty, now {new_ids[1]}",
    ]
    assert r.lrange("resque:queue:low", 0, -1) == [b'{"class":"Fail","args":[]}']
    assert r.lrange("resque:queue:dirty", 0, -1) == [b'{"class":"Sleep","args":[30]}']


def test_failed_retry_remove_and_errors_per_id(
    run: Run, mixed: list[bytes], r: redis.Redis
) -> None:
    ruby_id, _, ours_id, junk_id = ids_of(r)
    data = json.loads(run("failed", "retry", "--remove", "--json", ours_id, junk_id,
                          "9-0123456789ab").stdout)
    assert data["retried"] == [{"id": ours_id, "queue": "py", "class": "Ours", "new_id": None}]
    assert "cannot be retried" in data["errors"][junk_id]
    assert "removed or retried meanwhile" in data["errors"]["9-0123456789ab"]
    assert failed(r) == [mixed[0], mixed[1], mixed[3]]
    result = run("failed", "retry", junk_id)
    assert result.exit_code == 1 and f"not retried {junk_id}" in result.stderr


def test_failed_remove_needs_yes_off_a_terminal(
    run: Run, mixed: list[bytes], r: redis.Redis
) -> None:
    _, perl_id, _, junk_id = ids_of(r)
    refused = run("failed", "remove", perl_id)
    assert refused.exit_code == 2 and "pass --yes" in refused.output
    assert len(failed(r)) == 4
    result = run("failed", "remove", "--yes", perl_id, junk_id)
    assert result.stdout.splitlines() == [f"removed {perl_id}", f"removed {junk_id}"]
    assert failed(r) == [mixed[0], mixed[2]]
    again = run("failed", "remove", "-y", perl_id)
    assert again.exit_code == 1 and "not removed" in again.stderr


def test_failed_remove_by_conditions(run: Run, mixed: list[bytes], r: redis.Redis) -> None:
    assert run("failed", "remove").exit_code == 2  # neither ids nor conditions
    assert run("failed", "remove", "--class", "X", "3-0123456789ab").exit_code == 2
    data = as_json(run("failed", "remove", "--malformed", "--yes", "--json"))
    assert data["done"] == 1
    assert run("failed", "remove", "--class", "Sleep", "-y").stdout.strip() == (
        "removed 1 failure(s)")
    assert failed(r) == [mixed[0], mixed[2]]


def test_failed_retry_all_by_queue_and_with_remove(
    run: Run, r: redis.Redis, golden_dir: Path
) -> None:
    r.rpush("resque:failed", our_record("A", [1], "q1"), our_record("A", [2], "q2"),
            ruby_retried_record(golden_dir), b"junk")
    assert run("failed", "retry-all", "--remove").exit_code == 2  # removing: asks first
    out = run("failed", "retry-all", "--queue", "q1").stdout  # deletes nothing: asks nothing
    assert out.strip() == "retried 1 failure(s)"
    out = run("failed", "retry-all", "--remove", "--yes").stdout
    assert out.strip() == "retried 1 failure(s); skipped 1 that cannot be retried"
    assert r.llen("resque:queue:q1") == 1 and r.llen("resque:queue:q2") == 1
    assert len(failed(r)) == 3  # q1's marked entry, Ruby's retried one, the junk
    data = as_json(run("failed", "retry-all", "--include-retried", "--class", "Fail", "-y",
                       "--json"))
    assert data["done"] == 1 and r.llen("resque:queue:low") == 1


def test_failed_clear_and_clear_retried(run: Run, r: redis.Redis, golden_dir: Path) -> None:
    r.rpush("resque:failed", ruby_retried_record(golden_dir), PERL_RETRIED, our_record())
    r.rpush("resque:low_failed", our_record())
    r.sadd("resque:failed_queues", "low_failed")
    assert run("failed", "clear-retried", "-y").stdout.strip() == "removed 2 retried failure(s)"
    assert run("failed", "clear").exit_code == 2
    assert run("failed", "clear", "--list", "low_failed", "-y").stdout.strip() == (
        "cleared 1 failure(s)")
    assert as_json(run("failed", "clear", "-y", "--json")) == {"removed": 1}
    assert not r.exists("resque:failed", "resque:low_failed")


# --- queues, peek, enqueue, remove-queue --------------------------------------------------------


def test_queues_peek_enqueue_and_remove_queue(
    run: Run, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESQUE_JOB_IDS", "0")  # Ruby's exact payloads: the bytes are compared
    assert run("queues").stdout.strip() == "no queues"
    assert run("enqueue", "mail", "Mailer", '[42, "en"]').stdout.strip() == (
        "enqueued Mailer to mail")
    run("enqueue", "mail", "Ping")
    r.rpush("resque:queue:mail", "junk")
    assert r.lrange("resque:queue:mail", 0, 1) == [b'{"class":"Mailer","args":[42,"en"]}',
                                                  b'{"class":"Ping","args":[]}']
    assert as_json(run("queues", "--json")) == {"mail": 3}
    assert "mail   3" in run("queues").stdout
    peeked = as_json(run("peek", "mail", "--start", "1", "--count", "5", "--json"))
    assert peeked[0] == {"index": 1, "job": {"class": "Ping", "args": []}}
    assert peeked[1]["job"] is None and peeked[1]["raw"] == "junk"
    assert "(unreadable)" in run("peek", "mail", "--start", "2").stdout
    bad = run("enqueue", "mail", "X", '{"a": 1}')
    assert bad.exit_code == 2 and "must be a JSON array" in bad.output
    assert run("remove-queue", "mail").exit_code == 2
    assert run("remove-queue", "mail", "--yes").stdout.strip() == "removed queue mail (3 job(s))"
    assert not r.exists("resque:queue:mail", "resque:queues")


# --- workers, prune, stats, pause ---------------------------------------------------------------


def test_workers_table_and_json(run: Run, r: redis.Redis, golden_dir: Path) -> None:
    assert run("workers").stdout.strip() == "no workers"
    for name, entry in ruby_phase_keys(golden_dir, "working").items():
        if name in ("resque:workers", "resque:worker:vm:1210:high,low"):
            value = entry["value"]
            r.sadd(name, *value) if entry["type"] == "set" else r.set(name, value)
    out = run("workers").stdout
    assert "vm:1210:high,low  working  high,low  Sleep on low since 2026-11-27T23:46:22Z" in out
    assert out.splitlines()[-1] == "1 worker(s), 1 working"
    (worker,) = as_json(run("workers", "--json"))
    assert worker["job"]["payload"] == {"class": "Sleep", "args": [3]}


def test_prune_stats_pause_resume(run: Run, r: redis.Redis, resque: Resque) -> None:
    assert run("prune").stdout.strip() == "no dead workers"
    r.set("resque:pruning_dead_workers_in_progress", "vm:9:x", ex=60)
    held = run("prune")
    assert held.exit_code == 1 and "another pruner (vm:9:x)" in held.stdout
    resque.push("low", {"class": "X", "args": []})
    assert run("pause").exit_code == 0 and r.get("resque:pause-all-workers") == b"true"
    stats = as_json(run("stats", "--json"))
    assert (stats["pending"], stats["queues"], stats["paused"]) == (1, 1, True)
    assert "pending:" in run("stats").stdout
    assert as_json(run("resume", "--json")) == {"paused": False}
    assert not r.exists("resque:pause-all-workers")


def test_namespace_option(run: Run, r: redis.Redis) -> None:
    r.rpush("staging:failed", our_record())
    assert as_json(run("failed", "count", "--json", "--namespace", "staging"))["total"] == 1
    assert as_json(run("failed", "--namespace", "staging", "list", "--json"))["total"] == 1


def test_an_unreachable_redis_is_a_one_line_error() -> None:
    result = CliRunner().invoke(main, ["failed", "list", "--redis", "redis://127.0.0.1:1/0"],
                                env={"RESQUE_REDIS_WAIT": "0"})
    assert result.exit_code == 1
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in result.output
    assert "Traceback" not in result.output


# --- as real processes --------------------------------------------------------------------------


def test_the_installed_script_lists_and_retries(redis_url: str, mixed: list[bytes],
                                                r: redis.Redis) -> None:
    listed = subprocess.run([str(RESQUE), "failed", "list", "--json", "--redis", redis_url],
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    ruby_id = json.loads(listed.stdout)["entries"][-1]["id"]
    retried = subprocess.run([str(RESQUE), "failed", "retry", ruby_id, "--redis", redis_url],
                             capture_output=True, text=True, timeout=30)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.startswith(f"retried {ruby_id}: Fail to low")
    assert r.lrange("resque:queue:low", 0, -1) == [b'{"class":"Fail","args":[]}']


def on_terminal(args: list[str], answer: bytes) -> tuple[int, str]:
    """Run the script on a pseudo-terminal, answer its prompt, return (status, output)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec the real script
        os.execv(str(RESQUE), [str(RESQUE), *args])
    output = b""
    deadline = time.monotonic() + 30
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if not answered and b"[y/N]" in output:
                os.write(fd, answer)
                answered = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode()


def test_on_a_terminal_clear_asks_first(redis_url: str, r: redis.Redis) -> None:
    r.rpush("resque:failed", our_record(), our_record())
    status, output = on_terminal(["failed", "clear", "--redis", redis_url], b"n\n")
    assert "Delete 2 failure(s)? [y/N]" in output
    assert status == 1 and "Aborted" in output and r.llen("resque:failed") == 2
    status, output = on_terminal(["failed", "clear", "--redis", redis_url], b"y\n")
    assert status == 0 and "cleared 2 failure(s)" in output
    assert not r.exists("resque:failed")


def test_entries_resque_web_cannot_show_can_be_removed_from_the_command_line(
    run: Run, r: redis.Redis
) -> None:
    r.rpush("resque:failed", our_record(), *MALFORMED)
    assert run("failed", "remove", "--malformed", "-y").stdout.strip() == (
        f"removed {len(MALFORMED)} failure(s)")  # including the one without failed_at
    assert failed(r) == [our_record().encode()]


@pytest.mark.parametrize("when", ["2026/12/01 00:01:30 +04", "2026/12/01 00:01:30 +11",
                                  "2026/12/01 00:01:30 +0530", "2026/12/01 00:01:30 -03",
                                  "2026/12/01 15:01:31 CST", "2026/12/01 15:01:31 XYZ"])
def test_a_ruby_failure_in_any_zone_is_not_malformed_and_survives_remove_malformed(
    run: Run, r: redis.Redis, golden_dir: Path, when: str
) -> None:
    record = json.loads(ruby_record(golden_dir))
    record["failed_at"] = when
    kept = json.dumps(record, separators=(",", ":"))
    r.rpush("resque:failed", kept, json.dumps({**record, "failed_at": "yesterday"}))
    assert run("failed", "remove", "--malformed", "-y").stdout.strip() == "removed 1 failure(s)"
    assert failed(r) == [kept.encode()]


def test_failed_alone_takes_the_options_of_the_list(run: Run, mixed: list[bytes]) -> None:
    assert run("failed", "--count", "2", "--oldest").stdout == run(
        "failed", "list", "--count", "2", "--oldest").stdout
    data = as_json(run("failed", "--json", "--start", "1", "--count", "1", "--oldest"))
    assert (data["start"], data["total"], len(data["entries"])) == (1, 4, 1)


def test_list_options_before_another_failed_verb_are_a_usage_error(
    run: Run, mixed: list[bytes]
) -> None:
    result = run("failed", "--count", "5", "count")
    assert (result.exit_code, result.output.strip().splitlines()[-1]) == (2, (
        "Error: options of the list (--count) go after 'resque failed' alone, or after the "
        "verb: 'resque failed count --count ...'"))


def _short_options(command: click.Command, path: str) -> Iterator[tuple[str, str, str]]:
    """(short option, long name, command path) for a command and every verb under it."""
    for param in command.params:
        for opt in param.opts + param.secondary_opts:
            if len(opt) == 2:
                longest = max(param.opts + param.secondary_opts, key=len)
                yield opt, longest, path
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                yield from _short_options(sub, f"{path} {name}")


SAME_MEANING = {"--queues": "--queue"}  # -q: the worker's list of queues, or one queue


def test_each_short_option_has_one_meaning_across_every_verb() -> None:
    meanings: dict[str, set[str]] = {}
    for short, long, path in _short_options(main, "resque"):
        if path != "resque pool":  # its options are being reworked elsewhere (-c, -E)
            meanings.setdefault(short, set()).add(SAME_MEANING.get(long, long))
    assert {short: longs for short, longs in meanings.items() if len(longs) > 1} == {}
