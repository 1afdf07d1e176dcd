"""The dashboard's Jobs tab: tracked jobs listed newest first, a search by id, and a page per
job with its status, timeline, progress and result. Through Starlette's test client against
the real Redis; the jobs run in an in-process worker (tests/support/apps/taskapp.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import redis
import taskapp
from starlette.testclient import TestClient

import resque
from resque import Resque, layout
from resque.web import create_app


@pytest.fixture
def client(r: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Resque:
    monkeypatch.setenv("TASKAPP_REDIS", redis_url)
    return Resque(r)


@pytest.fixture
def web(client: Resque) -> Iterator[TestClient]:
    with TestClient(create_app(client), base_url="http://127.0.0.1") as test_client:
        yield test_client


def perform(client: Resque) -> None:
    import setproctitle

    title = setproctitle.getproctitle()
    resque.Worker(["tasks"], resque=client, fork=False, burst=True).work()
    setproctitle.setproctitle(title)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def test_the_jobs_tab_lists_tracked_jobs_newest_first(client: Resque, web: TestClient) -> None:
    first = taskapp.echo.options(client=client, status=True).enqueue("one")
    second = taskapp.boom.options(client=client, status=True).enqueue("bad")
    client.enqueue(taskapp.echo, "untracked")
    assert first is not None and second is not None
    perform(client)
    page = web.get("/jobs")
    assert page.status_code == 200
    rows = re.findall(r'<a class="mono" href="/jobs/([^"]+)">', page.text)
    assert rows == [second.id, first.id]
    shown = text(page.text)
    assert "taskapp.boom tasks failed" in shown and "ValueError: bad" in shown
    assert "taskapp.echo tasks finished" in shown


def test_a_job_page_shows_status_timeline_progress_and_result(
    client: Resque, web: TestClient, r: redis.Redis
) -> None:
    handle = taskapp.steps.options(client=client).enqueue(3, "page")
    assert handle is not None
    r.rpush("taskapp:gate:page", "go")
    perform(client)
    page = web.get(f"/jobs/{handle.id}")
    assert page.status_code == 200
    shown = text(page.text.split("<main", 1)[-1])
    assert f"Job {handle.id} Find Status finished" in shown
    assert "Class taskapp.steps Queue tasks" in shown
    assert "3 of 3" in shown
    assert [label for label in ("Enqueued", "Started", "Ended", "Last update")
            if label in shown] == ["Enqueued", "Started", "Ended", "Last update"]
    assert "Result 30" in shown


def test_the_search_box_goes_to_the_job_and_an_unknown_id_says_why(
    client: Resque, web: TestClient
) -> None:
    handle = taskapp.echo.options(client=client, status=True).enqueue("find me")
    assert handle is not None
    found = web.get("/jobs", params={"id": f" {handle.id} "}, follow_redirects=False)
    assert (found.status_code, found.headers["location"]) == (303, f"/jobs/{handle.id}")
    missing = web.get("/jobs/no-such-job")
    assert missing.status_code == 404
    assert "Only jobs enqueued with a status" in missing.text


def test_the_job_page_escapes_what_a_job_carries(client: Resque, web: TestClient) -> None:
    handle = taskapp.echo.options(client=client, status=True).enqueue("<script>x</script>")
    assert handle is not None
    page = web.get(f"/jobs/{handle.id}")
    assert "<script>x</script>" not in page.text
    assert "&lt;script&gt;x&lt;/script&gt;" in page.text


def test_a_job_whose_id_holds_a_newline_or_a_slash_has_a_page(
    client: Resque, web: TestClient
) -> None:
    # Ids come from Redis: another tool's (resque-status's uuids are tame, a hand-written
    # one need not be). The page is reached through the link the list gives, as for any name.
    odd = "ruby\nid/1 ?#"
    client.statuses.queued(odd, 60, name="Mailer", queue="mail",
                           payload=layout.encode_job("Mailer", [7], odd))
    (href,) = re.findall(r'<a class="mono" href="([^"]+)">', web.get("/jobs").text)
    assert href == "/jobs/ruby%0Aid%2F1%20%3F%23"
    page = web.get(href)
    assert page.status_code == 200
    assert "Class Mailer Queue mail" in text(page.text.split("<main", 1)[-1])
    found = web.get("/jobs", params={"id": odd}, follow_redirects=False)
    assert found.headers["location"] == href
