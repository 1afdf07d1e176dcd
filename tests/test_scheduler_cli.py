"""``resque delayed`` and ``resque schedule``: the verbs an operator types."""

from __future__ import annotations

import subprocess
import sys
import time

import redis
from click.testing import CliRunner

from resque import Resque
from resque.cli import main


def run(redis_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--redis", redis_url], catch_exceptions=False)
    return result.exit_code, result.output


def test_delayed_list_remove_and_queue_now(r: redis.Redis, redis_url: str) -> None:
    client = Resque(r, job_ids=False)  # the output below shows Ruby's exact items
    future = int(time.time()) + 3600
    client.enqueue_at_with_queue("mail", future, "Mailer", 7, {"to": "a@b"})
    client.enqueue_at_with_queue("mail", future + 60, "Mailer", 8)
    client.enqueue_at_with_queue("mail", future + 60, "Mailer", 9)

    code, out = run(redis_url, "delayed", "list")
    assert code == 0
    assert "2 timestamps, 3 delayed jobs" in out
    assert f'({future})  Mailer [7,{{"to":"a@b"}}] on mail' in out
    assert f"({future + 60})  2 jobs" in out

    code, out = run(redis_url, "delayed", "remove", "Mailer", "8", "--queue", "mail")
    assert (code, out.strip()) == (0, "removed 1 delayed job")
    code, out = run(redis_url, "delayed", "queue-now", str(future + 60))
    assert code == 0 and "queued 1 jobs" in out
    assert r.lrange("resque:queue:mail", 0, -1) == [b'{"class":"Mailer","args":[9]}']
    code, out = run(redis_url, "delayed", "remove", "Mailer", "7", '{"to":"a@b"}')
    assert code == 2 and "has no queue" in out  # no --queue and no registered class


def test_schedule_set_list_remove(r: redis.Redis, redis_url: str) -> None:
    code, out = run(redis_url, "schedule", "set", "nightly", "--cron", "0 3 * * * UTC",
                    "--class", "Cleanup", "--queue", "low", "--args", '["deep"]',
                    "--description", "nightly cleanup")
    assert code == 0, out
    assert r.hget("resque:persistent_schedules", "nightly") == (
        b'{"cron":"0 3 * * * UTC","class":"Cleanup","queue":"low","args":["deep"],'
        b'"description":"nightly cleanup"}'
    )
    code, out = run(redis_url, "schedule", "set", "bad", "--cron", "every day", "--queue", "q")
    assert code == 2 and "schedule 'bad'" in out
    r.set("resque:resque:resque_scheduler_master_lock", "localhost:2966")

    code, out = run(redis_url, "schedule", "list")
    assert code == 0
    assert "current master: localhost:2966" in out
    assert "nightly [redis]  cron: 0 3 * * * UTC  Cleanup [\"deep\"] on low  last: never" in out

    code, out = run(redis_url, "schedule", "remove", "nightly")
    assert (code, out.splitlines()[0]) == (0, "schedule nightly removed")
    code, _ = run(redis_url, "schedule", "remove", "nightly")
    assert code == 1


def test_the_worker_command_never_imports_the_scheduler() -> None:
    code = (
        "import sys, resque.cli; "
        "print(sorted(m for m in sys.modules if m.startswith(('resque.scheduler', 'croniter', "
        "'yaml'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_bad_scheduler_variable_is_a_usage_error(redis_url: str) -> None:
    result = CliRunner().invoke(main, ["scheduler", "--redis", redis_url],
                                env={"LOCK_TIMEOUT": "soon"})
    assert result.exit_code == 2
    assert "LOCK_TIMEOUT='soon' is not valid: lock_timeout wants int" in result.output
