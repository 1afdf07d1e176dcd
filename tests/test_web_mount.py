"""Served and embedded: mounted in an ASGI host, in a WSGI host, under ``resque web
--prefix``, from a thread for the demo, and as the real ``resque web`` process."""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import redis
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient
from support.webkit import (
    BASE_URL,
    add_failure,
    add_worker,
    cookie_name,
    hidden,
    stop_server,
    wait_until_up,
)

from resque import Resque
from resque.cli import main
from resque.embedded import free_port
from resque.web import create_app, wsgi_app
from resque.web.security import CSRF_COOKIE
from resque.web.server import start_dashboard, with_prefix

LINK = re.compile(r'(?:href|src|action)="([^"]*)"')
PAGES = ("", "queues", "queues/high", "working", "workers", "failed", "stats", "stats/keys",
         "delayed", "schedule")


@pytest.fixture
def farm(r: redis.Redis, resque: Resque) -> Resque:
    resque.push("high", {"class": "Hello", "args": [1]})
    add_worker(r, resque.keys, "vm:1:high", job=("high", "Hello", [1]))
    add_failure(r, resque.keys, queue="high")
    return resque


def links(page: str) -> set[str]:
    return set(LINK.findall(page))


def assert_links_under(prefix: str, page: str) -> None:
    found = links(page)
    assert found
    outside = {link for link in found if not link.startswith(prefix + "/")}
    assert not outside, outside


def test_mounted_in_an_asgi_host_every_link_follows_the_mount(farm: Resque,
                                                               r: redis.Redis) -> None:
    host = Starlette(routes=[
        Route("/", lambda request: PlainTextResponse("the host app")),
        # The host checks hosts itself (TrustedHostMiddleware), so the dashboard allows any.
        Mount("/admin/resque", app=create_app(farm, allowed_hosts=("*",))),
    ], middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=["testserver"])])
    web = TestClient(host, follow_redirects=False)
    assert web.get("/").text == "the host app"
    assert "Path=/admin/resque;" in web.get("/admin/resque/").headers["set-cookie"]
    assert web.get("/admin/resque/", headers={"host": "evil.example"}).status_code == 400
    for page in PAGES:
        response = web.get(f"/admin/resque/{page}")
        assert response.status_code == 200, page
        assert_links_under("/admin/resque", response.text)
    token = web.cookies.get(str(cookie_name(web)))
    response = web.post("/admin/resque/actions/queues/remove",
                        data={"csrf_token": token, "queue": "high", "next": "/admin/resque/"})
    assert response.headers["location"].startswith("/admin/resque/queues?done=queue_removed")
    assert farm.queues() == []
    back = web.post("/admin/resque/actions/pause", data={"csrf_token": token, "next": "/x"})
    assert back.headers["location"] == "/admin/resque/?done=paused&n=0"  # not outside
    assert web.get("/admin/resque/overview").headers["location"] == "/admin/resque/"


def test_resque_web_prefix_redirects_the_root_and_serves_below_it(farm: Resque) -> None:
    web = TestClient(with_prefix(create_app(farm), "/resque/"), base_url=BASE_URL,
                     follow_redirects=False)
    assert web.get("/").headers["location"] == "/resque/"
    for page in PAGES:
        assert_links_under("/resque", web.get(f"/resque/{page}").text)
    assert with_prefix(app := create_app(farm), "/") is app


def test_the_prefix_app_checks_hosts_sets_headers_and_never_reflects_the_host(
    farm: Resque,
) -> None:
    web = TestClient(with_prefix(create_app(farm), "/resque"), base_url=BASE_URL,
                     follow_redirects=False)
    for path in ("/", "/resque", "/elsewhere"):
        refused = web.get(path, headers={"host": "evil.example"})
        assert refused.status_code == 400, path
        assert refused.headers["x-frame-options"] == "DENY", path
    for path, status in (("/", 302), ("/resque", 302), ("/elsewhere", 404)):
        response = web.get(path)
        assert response.status_code == status, path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        assert response.headers["x-content-type-options"] == "nosniff", path
        if status == 302:
            assert response.headers["location"] == "/resque/", path


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_mounted_in_a_wsgi_host_through_a2wsgi(farm: Resque) -> None:
    dashboard = wsgi_app(farm)

    def host(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/ops/resque"):  # what Flask's or Werkzeug's dispatcher does
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/ops/resque"
            environ["PATH_INFO"] = path[len("/ops/resque"):]
            return dashboard(environ, start_response)  # type: ignore[arg-type]
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"the host app"]

    server = make_server("127.0.0.1", 0, host, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    try:
        assert opener.open(base + "/").read() == b"the host app"
        for page in PAGES:
            assert_links_under("/ops/resque", opener.open(f"{base}/ops/resque/{page}").read()
                               .decode())
        token = next(cookie.value for cookie in jar if cookie.name.startswith(CSRF_COOKIE))
        form = urllib.parse.urlencode({"csrf_token": token, "next": "/ops/resque/failed"})
        with pytest.raises(urllib.error.HTTPError) as redirect:
            opener.open(base + "/ops/resque/actions/pause", data=form.encode())
        redirect.value.close()
        assert redirect.value.code == 303
        assert redirect.value.headers["location"] == "/ops/resque/failed?done=paused&n=0"
        assert farm.redis.get(farm.keys.pause) == b"true"
    finally:
        server.shutdown()
        server.server_close()


def test_start_dashboard_serves_from_a_thread_and_stops(farm: Resque, redis_url: str) -> None:
    dashboard = start_dashboard(redis_url, prefix="/resque")
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/resque/", dashboard.url)
        page = urllib.request.urlopen(dashboard.url + "queues").read().decode()
        assert "/resque/queues/high" in page
        rebound = urllib.request.Request(dashboard.url, headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound)
        refused.value.close()
    finally:
        dashboard.stop()
    assert not dashboard.thread.is_alive()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(dashboard.url, timeout=2)


def test_two_dashboards_on_one_host_keep_their_own_csrf_cookies(
    farm: Resque, redis_url: str
) -> None:
    """Browsers keep cookies per host name, not per port: one cookie name for both would
    let each dashboard overwrite the other's token and break its forms."""
    first, second = start_dashboard(redis_url), start_dashboard(redis_url)
    jar = http.cookiejar.CookieJar()  # one browser for both
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    try:
        forms = [hidden(opener.open(d.url).read().decode(), "csrf_token")[0]
                 for d in (first, second)]
        assert len({cookie.name for cookie in jar}) == 2
        for dashboard, token in zip((first, second), forms, strict=True):
            form = urllib.parse.urlencode({"csrf_token": token, "next": "/"}).encode()
            with pytest.raises(urllib.error.HTTPError) as redirect:
                opener.open(dashboard.url + "actions/pause", data=form)
            redirect.value.close()
            assert redirect.value.code == 303, dashboard.url
    finally:
        first.stop()
        second.stop()


def test_resque_web_help_lists_its_options() -> None:
    result = CliRunner().invoke(main, ["web", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--prefix", "--read-only", "--poll", "--redis"):
        assert option in result.output
    assert "127.0.0.1" in result.output


@pytest.fixture
def served(farm: Resque, redis_url: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "resque", "web", "--port", str(port), "--prefix", "/resque",
         "--read-only", "--redis", redis_url],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "RESQUE_WEB_POLL": "1"},
    )
    url = f"http://127.0.0.1:{port}/resque/"
    try:
        wait_until_up(url, process)
        yield url, process
    finally:
        stop_server(process)


def test_resque_web_process_on_loopback_with_prefix_read_only(
    served: tuple[str, subprocess.Popen[str]],
) -> None:
    url, process = served
    page = urllib.request.urlopen(url).read().decode()
    assert 'data-poll="1.0"' in page and "read-only" in page and 'method="post"' not in page
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url + "actions/pause", data=b"x=1")
    refused.value.close()
    assert refused.value.code == 405
    host = url.split("/")[2].split(":")[0]
    assert host == "127.0.0.1"
    rebound = urllib.request.Request(url, headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(rebound)
    refused.value.close()
    assert refused.value.code == 400  # on loopback, only loopback names are answered
    localhost = url.replace("127.0.0.1", "localhost")
    with urllib.request.urlopen(localhost) as answer:
        assert answer.status == 200
    process.terminate()
    assert process.wait(10) == -15  # uvicorn re-raises SIGTERM after a clean shutdown
    output = process.stderr.read() if process.stderr else ""
    assert f"resque web: {url} (read-only)" in output and "Traceback" not in output


def test_uvicorn_factory_standalone_refuses_a_rebound_host(farm: Resque, redis_url: str) -> None:
    """The documented recipe, ``uvicorn --factory resque.web:create_app``: no ``resque web``
    around it, and still only loopback names are answered."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "resque.web:create_app",
         "--port", str(port), "--log-level", "warning"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "RESQUE_REDIS": redis_url},
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_up(url, process)
        rebound = urllib.request.Request(url + "queues", headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound)
        refused.value.close()
        assert refused.value.code == 400
        assert "set-cookie" not in refused.value.headers  # no CSRF token to steal
        assert "/queues/high" in urllib.request.urlopen(url + "queues").read().decode()
    finally:
        stop_server(process)
