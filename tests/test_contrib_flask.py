"""resque.contrib.flask, through the example app in examples/flask: a real request enqueues,
`flask resque work` (a real worker process, the app loaded) performs the job in the app's
context, and the dashboard answers inside the app, behind the app's own login."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from resque import Resque, layout, tasks
from resque.testing.kit import TestResque

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "flask"
PASSWORD = "correct horse"


@pytest.fixture
def app(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setenv("RESQUE_REDIS", redis_url)
    from myapp import create_app

    yield create_app({"ADMIN_PASSWORD": PASSWORD, "WELCOME_LOG": str(tmp_path / "log.txt")})


@pytest.fixture
def web(app: Flask) -> FlaskClient:
    return app.test_client()


def flask_resque(redis_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``flask --app myapp resque ARGS`` in its own process, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESQUE_", "FLASK_"))}
    env.update(PYTHONPATH=str(EXAMPLE), RESQUE_REDIS=redis_url,
               FLASK_WELCOME_LOG=str(tmp_path / "log.txt"))
    return subprocess.run([sys.executable, "-m", "flask", "--app", "myapp", "resque", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def test_a_request_enqueues_and_flask_resque_work_performs_it_in_the_app(
    r: redis.Redis, web: FlaskClient, redis_url: str, tmp_path: Path
) -> None:
    response = web.post("/signup", data={"user": "ann"})
    assert response.status_code == 202
    (raw,) = r.lrange("resque:queue:mail", 0, -1)
    payload = layout.decode_job(raw, "mail")
    assert (payload["class"], payload["args"]) == ("myapp.jobs.send_welcome", ["ann"])
    assert isinstance(payload[layout.JOB_ID], str)  # Ruby's bytes, then the job's id
    done = flask_resque(redis_url, tmp_path, "work", "-q", "mail", "--burst")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "log.txt").read_text() == "welcome, ann\n"  # the app's config, in the job
    assert r.get("resque:stat:processed") == b"1"
    assert r.llen("resque:failed") == 0


def test_flask_resque_runs_the_other_verbs_on_the_apps_redis(
    r: redis.Redis, web: FlaskClient, redis_url: str, tmp_path: Path
) -> None:
    web.post("/signup", data={"user": "bob"})
    done = flask_resque(redis_url, tmp_path, "stats", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pending"] == 1


def test_the_dashboard_sends_strangers_to_the_apps_login(web: FlaskClient) -> None:
    response = web.get("/resque/queues")
    assert (response.status_code, response.headers["location"]) == (
        302, "/login?next=/resque/queues")


def log_in(web: FlaskClient) -> None:
    response = web.post("/login?next=/resque/", data={"password": PASSWORD})
    assert (response.status_code, response.headers["location"]) == (302, "/resque/")


def test_the_dashboard_answers_an_admin_with_links_under_its_mount(
    web: FlaskClient, r: redis.Redis
) -> None:
    web.post("/signup", data={"user": "cy"})
    log_in(web)
    page = web.get("/resque/queues/mail")
    assert page.status_code == 200
    assert 'href="/resque/queues"' in page.text
    assert "cy" in page.text
    assert web.get("/resque/static/app.css").status_code == 200


def test_a_dashboard_form_posts_through_the_app(web: FlaskClient, r: redis.Redis) -> None:
    log_in(web)
    page = web.get("/resque/")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    response = web.post("/resque/actions/pause", data={"csrf_token": found.group(1),
                                                        "next": "/"})
    assert response.status_code == 303
    assert r.get("resque:pause-all-workers") == b"true"


def test_mounting_the_dashboard_without_an_auth_hook_is_refused() -> None:
    from resque.contrib.flask import Resque

    with pytest.raises(ValueError, match="behind your login"):
        Resque(Flask("bare"), dashboard="/resque")


def test_a_job_run_outside_any_app_says_how_to_fix_it() -> None:
    from resque.contrib.flask import Resque

    ext = Resque()

    def orphan() -> None:
        return None

    job = ext.job(queue="q")(orphan)  # @ext.job(queue="q"), spelled out: it is typed Any here
    with pytest.raises(RuntimeError, match="init_app"):
        job()


def test_flask_resque_verbs_fail_in_one_line_as_resque_verbs_do(
    redis_url: str, tmp_path: Path
) -> None:
    done = flask_resque(redis_url, tmp_path, "queues", "--redis", "redis://:secret@h:6379/abc")
    assert (done.returncode, done.stderr.strip().splitlines()[-1]) == (2, (
        "Error: cannot read Redis URL 'redis://h:6379/abc': the database 'abc' is not a "
        "number (redis://host:6379/0); a namespace goes in ?namespace=abc"))
    assert "Traceback" not in done.stderr and "secret" not in done.stderr


def test_flask_resque_work_refuses_count(redis_url: str, tmp_path: Path) -> None:
    done = flask_resque(redis_url, tmp_path, "work", "-q", "mail", "--count", "2")
    assert done.returncode == 2
    assert "flask resque work runs one worker" in done.stderr


# --- the extension's jobs as typed tasks (keywords, handles, status, async def) ---------------


@pytest.fixture
def no_default_client() -> Iterator[None]:
    """No application default: a task falls back to its own client, then the environment's."""
    previous = tasks.swap_default_client(None)
    yield
    tasks.swap_default_client(previous)


def test_an_extension_task_enqueues_to_the_apps_redis_not_the_environments(
    r: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch, no_default_client: None
) -> None:
    import flaskapp

    monkeypatch.setenv("RESQUE_REDIS", f"{redis_url}?namespace=elsewhere")
    app = flaskapp.create_app(f"{redis_url}?namespace=myapp")
    with app.app_context():
        job = flaskapp.greet.enqueue("ann", punctuation="!")
        later = flaskapp.greet.enqueue_in(60, "bo")
        direct = flaskapp.resque.enqueue(flaskapp.greet, "cy", punctuation="?")
    assert job is not None and later is not None and direct is not None
    assert (job.args, job.kwargs, direct.kwargs) == (["ann"], {"punctuation": "!"},
                                                    {"punctuation": "?"})
    assert r.lrange("myapp:queue:greetings", 0, -1) == [job.payload.encode(),
                                                         direct.payload.encode()]
    assert r.zcard("myapp:delayed_queue_schedule") == 1
    assert not r.keys("elsewhere:*") and not r.keys("resque:*")


@pytest.mark.parametrize("task", ["greet", "greet_later"])
def test_an_extension_task_is_performed_with_its_keywords_in_the_app_context(
    r: redis.Redis, redis_url: str, task: str
) -> None:
    import flaskapp

    flaskapp.create_app(redis_url)
    inline = Resque(r, inline=True)  # performed here as a worker would: through JSON, by name
    job = getattr(flaskapp, task).options(client=inline, status=True).enqueue(
        "ann", punctuation="!")
    assert job is not None
    assert job.result(timeout=5) == "hej, ann!"  # the app's GREETING, read in the job


def test_the_test_plugin_client_wins_over_the_apps_and_a_worker_performs_it(
    redis_url: str, resque_client: TestResque
) -> None:
    import flaskapp

    app = flaskapp.create_app(f"{redis_url}?namespace=myapp")
    with app.app_context():
        job = flaskapp.greet.options(status=True).enqueue("bo", punctuation="?")
    assert job is not None and resque_client.size("greetings") == 1
    drained = resque_client.drain()
    assert (drained.processed, drained.failures) == (1, [])
    assert job.result(timeout=5) == "hej, bo?"
