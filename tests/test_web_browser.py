"""The dashboard in a real browser: headless Chromium (Debian's) driven by Playwright, against
real ``resque web`` processes on loopback.

Covers each page, each action (retry, remove, clear, remove queue, pause), the live refresh,
markup in job data that must not run, a cross-site POST that must be refused, and auth on and
off. Installs nothing: skipped, saying why, without /usr/bin/chromium or playwright
(CI: ``apt-get install -y chromium`` and the ``test`` extra).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from support.webkit import add_failure, add_worker, stop_server, wait_until_up

from resque import Resque, layout
from resque.embedded import EmbeddedRedis, free_port

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install -y "
                "chromium)", allow_module_level=True)
try:
    from playwright.sync_api import (
        Browser,
        ConsoleMessage,
        Dialog,
        Page,
        Response,
        expect,
        sync_playwright,
    )
    from playwright.sync_api import Error as PlaywrightError
except ImportError:
    pytest.skip("browser tests need playwright (pip install -e '.[test]')",
                allow_module_level=True)

pytestmark = pytest.mark.browser

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
XSS = '<script>window.__xss = 1; alert("xss")</script><img src=x onerror="window.__xss=2">'
PASSWORD = "correct horse"


def start_web(redis_url: str, **env: str) -> tuple[str, subprocess.Popen[str]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "resque", "web", "--port", str(port), "--redis", redis_url],
        env={**os.environ, "RESQUE_WEB_POLL": "0.3", **env}, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    wait_until_up(url, process)
    return url, process


@pytest.fixture(scope="module")
def web(redis_server: EmbeddedRedis) -> Iterator[str]:
    url, process = start_web(redis_server.url)
    yield url
    stop_server(process)


@pytest.fixture(scope="module")
def locked_web(redis_server: EmbeddedRedis) -> Iterator[str]:
    url, process = start_web(redis_server.url, RESQUE_WEB_PASSWORD=PASSWORD)
    yield url
    stop_server(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


class Watch:
    """What a page did that it should not: dialogs other than our confirmations, script
    errors, CSP violations."""

    def __init__(self, page: Page, confirm: bool = True) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.confirm = confirm
        page.on("dialog", self.on_dialog)
        page.on("console", self.on_console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def on_dialog(self, dialog: Dialog) -> None:
        if dialog.type == "confirm":
            dialog.accept() if self.confirm else dialog.dismiss()
        else:
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def status(response: Response | None) -> int:
    """The status of a navigation's response (``goto`` gives none for a same-page anchor)."""
    assert response is not None
    return response.status


@pytest.fixture
def farm(r: redis.Redis, resque: Resque) -> Resque:
    resque.enqueue_many("Hello", [[i] for i in range(30)], queue="high")
    resque.push("low", {"class": "Sleep", "args": [1]})
    add_worker(r, resque.keys, "vm:1210:high,low", job=("high", "Sleep", [3]),
               heartbeat=time.time(), processed=4)
    add_worker(r, resque.keys, "vm:1211:low")
    for i in range(3):
        add_failure(r, resque.keys, class_name=f"Fail{i}", args=[i], queue="low",
                    error=f"boom {i}", backtrace=[f"jobs.rb:{i}:in `perform'"])
    return resque


def test_each_page_renders_without_script_errors(web: str, farm: Resque, page: Page) -> None:
    watch = Watch(page)
    page.goto(web)
    expect(page.locator("[data-live-count=pending]").first).to_have_text("31")
    expect(page.locator(".chart")).to_have_count(2)
    for tab, heading in (("Working", "1 of 2 workers working"), ("Queues", "Queues"),
                         ("Failed", "Failed jobs"), ("Workers", "2 workers"),
                         ("Delayed", "Delayed jobs"), ("Schedule", "Recurring schedules"),
                         ("Stats", "Stats"), ("Overview", "Activity")):
        page.locator("nav.tabs a", has_text=tab).click()
        expect(page.locator("h1, h2").first).to_contain_text(heading)
    page.goto(web + "queues/high")
    expect(page.locator("table.jobs tbody tr")).to_have_count(20)
    page.get_by_role("link", name="Next →").click()
    expect(page.locator("table.jobs tbody tr")).to_have_count(10)
    page.goto(web + "workers")
    page.locator("a.mono", has_text="vm:1210").click()
    expect(page.locator("h1")).to_contain_text("vm:1210:high,low")
    page.goto(web + "failed")
    page.locator("details summary").first.click()
    expect(page.locator("pre.trace").first).to_be_visible()
    page.locator("a", has_text="details").first.click()
    expect(page.locator("h1")).to_contain_text("Failed job")
    for path in ("stats/redis", "stats/keys", "stats/keys/queue%3Ahigh"):
        page.goto(web + path)
    assert watch.errors == [] and watch.dialogs == []


def test_markup_in_job_data_is_shown_and_never_run(web: str, r: redis.Redis, resque: Resque,
                                                   page: Page) -> None:
    queue = "evil" + XSS  # Ruby's push takes any name; ours refuses spaces, so write it raw
    r.sadd(resque.keys.queues, queue)
    r.rpush(resque.keys.queue(queue), layout.encode_job(XSS, [XSS, {"html": XSS}]))
    add_worker(r, resque.keys, f"host{XSS}:1:{queue}", job=(queue, XSS, [XSS]),
               heartbeat=time.time())
    add_failure(r, resque.keys, class_name=XSS, args=[XSS], queue=queue, error=XSS,
                exception=XSS, backtrace=[XSS])
    resque.delayed.enqueue_at_with_queue("later", int(time.time()) + 600, XSS, XSS)
    resque.schedules.set("evil", {"every": "1h", "class": XSS, "queue": "later",
                                  "description": XSS})
    watch = Watch(page)
    page.goto(web)
    page.wait_for_timeout(800)  # a few live refreshes rewrite the working table
    for path in ("", "queues", "working", "workers", "failed", "delayed", "schedule",
                 "stats/keys"):
        page.goto(web + path)
        assert page.evaluate("window.__xss") is None, path
    page.goto(web + "queues")
    page.locator("a.queue", has_text="evil").click()
    expect(page.locator("table.jobs")).to_contain_text('"<script>window.__xss = 1;')
    page.goto(web + "failed")
    expect(page.locator("pre.error").first).to_contain_text("<script>window.__xss")
    page.goto(web)
    expect(page.locator("tbody[data-live-working] code.cls").first).to_contain_text(
        "<script>window.__xss", timeout=5000)
    assert page.evaluate("window.__xss") is None
    assert watch.dialogs == []


def test_retry_remove_and_clear_failures(web: str, farm: Resque, r: redis.Redis,
                                         page: Page) -> None:
    Watch(page)
    page.goto(web + "failed")
    newest = page.locator("li.failure").first
    expect(newest).to_contain_text("Fail2")
    newest.get_by_role("button", name="Retry", exact=True).click()
    expect(page.locator("#flash")).to_have_text("Retried 1 failed job(s).")
    assert farm.peek("low", 1, 1) == {"class": "Fail2", "args": [2]}
    expect(page.locator("li.failure.retried")).to_have_count(1)
    fail1 = page.locator("li.failure", has_text="Fail1")
    fail1.get_by_role("button", name="Remove", exact=True).click()
    expect(page.locator("#flash")).to_have_text("Removed 1 failed job(s).")
    assert r.llen(farm.keys.failed) == 2
    page.locator("li.failure", has_text="Fail0").get_by_role(
        "button", name="Retry & remove").click()
    expect(page.locator("#flash")).to_have_text("Retried and removed 1 failed job(s).")
    assert r.llen(farm.keys.failed) == 1 and farm.size("low") == 3
    for i in range(3):
        add_failure(r, farm.keys, class_name="Again", args=[i])
    page.reload()
    page.get_by_role("button", name="Retry all").click()  # confirmed by the dialog handler
    expect(page.locator("#flash")).to_have_text("Retried 3 failed job(s).")
    page.get_by_role("button", name="Clear all").click()
    expect(page.locator("#flash")).to_have_text("Cleared 4 failed job(s).")
    expect(page.locator("li.empty")).to_contain_text("No failed jobs")
    assert not r.exists(farm.keys.failed)
    expect(page).to_have_url(web + "failed")


def test_remove_queue_asks_first(web: str, farm: Resque, page: Page) -> None:
    watch = Watch(page, confirm=False)
    page.goto(web + "queues/high")
    page.get_by_role("button", name="Remove queue").click()
    page.wait_for_timeout(300)
    assert farm.size("high") == 30 and page.url == web + "queues/high"  # dismissed: nothing
    watch.confirm = True
    page.get_by_role("button", name="Remove queue").click()
    expect(page.locator("#flash")).to_have_text("Removed the queue and its 30 job(s).")
    assert "high" not in farm.queues()
    expect(page).to_have_url(web + "queues")  # the note's ?done= dropped from the address


def test_pause_and_resume_all_workers(web: str, farm: Resque, r: redis.Redis,
                                      page: Page) -> None:
    Watch(page)
    page.goto(web + "workers")
    page.get_by_role("button", name="Pause all workers").click()
    expect(page.locator(".banner.warn")).to_contain_text("Workers are paused")
    assert r.get(farm.keys.pause) == b"true"
    page.get_by_role("button", name="Resume workers").click()
    expect(page.locator("#flash")).to_have_text("Workers resumed.")
    expect(page.locator(".banner.warn")).to_have_count(0)
    assert not r.exists(farm.keys.pause)


def test_delayed_queue_now(web: str, resque: Resque, page: Page) -> None:
    Watch(page)
    due = int(time.time()) + 3600
    handle = resque.delayed.enqueue_at_with_queue("mail", due, "Remind", 1)
    assert handle is not None
    page.goto(web + "delayed")
    page.get_by_role("button", name="Queue now").click()
    expect(page.locator("#flash")).to_have_text("Queued 1 delayed job(s) now.")
    assert resque.peek("mail") == {"class": "Remind", "args": [1], "id": handle.id}


def test_live_refresh_updates_counts_without_a_reload(web: str, r: redis.Redis,
                                                      resque: Resque, page: Page) -> None:
    watch = Watch(page)
    resque.push("high", {"class": "Hello", "args": []})
    page.goto(web)
    pending = page.locator(".card [data-live-count=pending]")
    expect(pending).to_have_text("1")
    page.evaluate("window.__still_here = 42")
    resque.enqueue_many("Hello", [[i] for i in range(1233)], queue="high")
    expect(pending).to_have_text("1,234")
    expect(page.locator("td[data-queue=high]")).to_have_text("1,234")
    expect(page.locator("nav.tabs [data-live-count=pending]")).to_have_text("1,234")
    add_worker(r, resque.keys, "live-host:9:high", job=("high", "Hello", [7]))
    expect(page.locator("tbody[data-live-working] tr")).to_have_count(1)
    expect(page.locator("tbody[data-live-working]")).to_contain_text("live-host:9")
    expect(page.locator("[data-live-working-count]")).to_have_text("1")
    assert page.evaluate("window.__still_here") == 42  # the same document: no reload
    page.locator("#live-toggle").click()  # paused: no more updates
    expect(page.locator("#live-label")).to_have_text("Paused")
    resque.push("high", {"class": "Hello", "args": []})
    page.wait_for_timeout(1000)
    expect(pending).to_have_text("1,234")
    page.locator("#live-toggle").click()
    expect(pending).to_have_text("1,235")
    assert watch.errors == []


class _Evil(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_a_cross_site_post_is_refused(web: str, farm: Resque, page: Page,
                                      tmp_path: Path) -> None:
    (tmp_path / "evil.html").write_text(
        f'<form id="f" method="post" action="{web}actions/queues/remove">'
        '<input name="queue" value="high"><input name="csrf_token" value="guess">'
        '<input name="next" value="/"></form>'
        '<script>document.getElementById("f").submit()</script>')
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Evil, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page.goto(web)  # the victim has the dashboard open: its cookie is in the browser
        with page.expect_response(lambda response: "/actions/" in response.url) as posted:
            page.goto(f"http://127.0.0.1:{server.server_port}/evil.html")
        assert posted.value.status == 403
        assert farm.size("high") == 30 and "high" in farm.queues()
        page.goto(web + "queues/high")  # the same request from the dashboard itself works
        Watch(page)
        page.get_by_role("button", name="Remove queue").click()
        expect(page.locator("#flash")).to_contain_text("Removed the queue")
    finally:
        server.shutdown()
        server.server_close()


def refused_by_auth(page: Page, url: str) -> bool:
    """Headless Chromium turns a 401 it cannot answer into a failed navigation."""
    try:
        return page.goto(url).status == 401  # type: ignore[union-attr]
    except PlaywrightError as exc:
        return "ERR_INVALID_AUTH_CREDENTIALS" in str(exc)


def test_auth_on_asks_for_the_password(locked_web: str, farm: Resque,
                                       browser: Browser) -> None:
    for credentials in (None, {"username": "admin", "password": "nope"}):
        refused = browser.new_context(http_credentials=credentials)  # type: ignore[arg-type]
        try:
            assert refused_by_auth(refused.new_page(), locked_web), credentials
            # and the browser could not act either
            response = refused.request.post(locked_web + "actions/queues/remove",
                                            form={"queue": "low"})
            assert response.status == 401
        finally:
            refused.close()
    assert "low" in farm.queues()
    allowed = browser.new_context(http_credentials={"username": "admin", "password": PASSWORD})
    try:
        page = allowed.new_page()
        Watch(page)
        assert status(page.goto(locked_web)) == 200
        expect(page.locator(".card [data-live-count=pending]")).to_have_text("31")
        page.goto(locked_web + "queues/low")
        page.get_by_role("button", name="Remove queue").click()
        expect(page.locator("#flash")).to_contain_text("Removed the queue")
        assert "low" not in farm.queues()
    finally:
        allowed.close()


def test_auth_off_lets_anyone_on_loopback_in(web: str, farm: Resque, page: Page) -> None:
    assert status(page.goto(web)) == 200
    assert status(page.goto(web + "failed")) == 200


def test_live_view_links_a_worker_whose_host_is_not_utf8(web: str, r: redis.Redis,
                                                         resque: Resque, page: Page) -> None:
    watch = Watch(page)
    r.sadd(resque.keys.workers, b"caf\xe9:1:q")
    r.set(b"resque:worker:caf\xe9:1:q", layout.working_on("q", '{"class":"Odd","args":[]}'))
    page.goto(web)
    page.evaluate("window.__still_here = 1")
    link = page.locator("tbody[data-live-working] a.mono")
    expect(link).to_have_count(1)
    page.wait_for_timeout(1000)  # a few live refreshes rebuild the table from live.json
    expect(page.locator("#live-time")).to_contain_text("updated")  # not "cannot refresh"
    expect(page.locator("#live-toggle")).not_to_have_class(re.compile(r"\berror\b"))
    assert page.evaluate("window.__still_here") == 1
    assert link.get_attribute("href") == "/workers/caf%E9%3A1%3Aq"
    link.click()
    expect(page.locator("h1")).to_contain_text("Worker caf")
    assert watch.errors == []


def test_stats_pages_explain_and_group(web: str, farm: Resque, page: Page) -> None:
    watch = Watch(page)
    page.goto(web + "stats")
    expect(page.locator("table.explained tr")).to_have_count(12)
    expect(page.locator("table.explained tr", has_text="Pending")).to_contain_text("31")
    page.get_by_role("link", name="raw", exact=True).first.click()
    expect(page.locator("h1")).to_have_text("Stats, raw")
    page.locator("nav.subtabs a", has_text="redis").click()
    expect(page.locator("h2").first).to_have_text("Server")
    assert watch.errors == [] and watch.dialogs == []
