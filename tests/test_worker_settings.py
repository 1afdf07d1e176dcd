"""How a worker is told what to do (resque/settings.py, resque/worker.py, the work command):
every setting is a field of ``WorkerSettings``, read from Ruby's environment variables, then
overridden by options; and the few decisions made from them (how jobs run, signal intents,
which queues).
"""

from __future__ import annotations

import signal
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from resque import Worker
from resque.cli import main
from resque.execution.fork import ForkExecutor
from resque.execution.inline import InlineExecutor
from resque.execution.threads import ThreadExecutor
from resque.queues import QueueList
from resque.settings import WorkerSettings, field_help
from resque.signals import Intent, intent_of


def test_options_are_settings_fields_applied_over_the_settings_given(r: redis.Redis) -> None:
    given = WorkerSettings(interval=2.0, max_jobs=3, term_child=True)
    worker = Worker(["high", "low"], redis=r, settings=given, interval=0)
    assert worker.settings == WorkerSettings(queues=("high", "low"), interval=0.0, max_jobs=3,
                                             term_child=True)
    assert worker.burst
    assert worker.patterns == ["high", "low"]


def test_an_unknown_option_is_refused_with_its_name(r: redis.Redis) -> None:
    with pytest.raises(TypeError, match="'forks'"):
        Worker(["q"], redis=r, forks=False)


def test_from_env_reads_rubys_variables_and_options_win(
    r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"QUEUE": "a,b", "INTERVAL": "0.5", "FORK_PER_JOB": "false",
                        "TERM_CHILD": "1", "RESQUE_TERM_TIMEOUT": "7"}.items():
        monkeypatch.setenv(name, value)
    worker = Worker.from_env(redis=r, interval=2, max_jobs=None)
    assert worker.settings == WorkerSettings(queues=("a", "b"), interval=2.0, fork=False,
                                             term_child=True, term_timeout=7.0)
    assert Worker.from_env(["c"], redis=r).patterns == ["c"]


def test_a_value_that_does_not_parse_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERVAL", "soon")
    with pytest.raises(ValueError, match="INTERVAL='soon' is not valid: interval wants float"):
        Worker.from_env(["q"])


def test_the_work_command_reads_the_environment_and_refuses_a_bad_value(
    redis_url: str
) -> None:
    result = CliRunner().invoke(main, ["work", "-q", "q", "--redis", redis_url],
                                env={"RESQUE_CONCURRENCY": "many"})
    assert result.exit_code == 2
    assert "RESQUE_CONCURRENCY='many' is not valid" in result.output


def test_the_work_commands_help_is_each_settings_own() -> None:
    result = CliRunner().invoke(main, ["work", "--help"])
    shown = " ".join(result.output.split())
    for name in ("queues", "interval", "burst", "fork", "max_jobs", "concurrency"):
        assert " ".join(field_help(WorkerSettings, name).split()) in shown, name


@pytest.mark.parametrize(("options", "executor", "fork"), [
    ({}, ForkExecutor, True),
    ({"fork": False}, InlineExecutor, False),
    ({"concurrency": 3}, ThreadExecutor, False),
])
def test_the_settings_choose_how_jobs_run(
    r: redis.Redis, options: dict[str, Any], executor: type, fork: bool
) -> None:
    worker = Worker(["q"], redis=r, **options)
    assert (type(worker.executor), worker.fork) == (executor, fork)


def test_each_signal_is_one_intent_and_graceful_term_makes_term_finish() -> None:
    signals = [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
               signal.SIGCONT, signal.SIGALRM]
    assert [intent_of(s) for s in signals] == [
        Intent.STOP, Intent.STOP, Intent.FINISH, Intent.KILL_CHILD, Intent.PAUSE,
        Intent.RESUME, Intent.TIME_UP]
    assert intent_of(signal.SIGTERM, graceful_term=True) is Intent.FINISH
    assert intent_of(signal.SIGINT, graceful_term=True) is Intent.STOP


def test_a_queue_list_reads_the_queues_set_once_a_second_or_when_told() -> None:
    reads: list[int] = []

    def known() -> list[str]:
        reads.append(1)
        return [".hidden", "a-one", "b-two", "c-skip", "urgent"]

    queues = QueueList(["urgent", "*", "!c-*"])
    assert (queues.patterns, queues.skip) == (["urgent", "*"], ["c-*"])
    assert queues.expand(known) == ["urgent", "a-one", "b-two"]
    assert queues.expand(known) == ["urgent", "a-one", "b-two"]
    assert len(reads) == 1
    queues.forget()  # a wake-up for a queue the cache may not have
    queues.expand(known)
    assert len(reads) == 2
