"""Escaping, CSRF, origin checks, authentication, read-only mode, headers, and no KEYS.

Job args, class names, errors, queue names and worker ids are attacker-controlled: whatever
is in Redis must come out as text on every page.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import pytest
import redis
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient
from support.webkit import (
    BASE_URL,
    HOSTILE,
    HOSTILE_NAME,
    add_failure,
    add_worker,
    client,
    cookie_name,
    post,
    token,
)

from resque import Resque, layout
from resque.web import create_app
from resque.web.security import CSRF_COOKIE, new_token

EVIL_QUEUE = "q<script>alert(1)</script>"


def post_routes(read_only: bool = False) -> list[str]:
    app = create_app("redis://127.0.0.1:1/0", read_only=read_only)
    return [route.path for route in app.routes
            if isinstance(route, Route) and "POST" in (route.methods or ())]


@pytest.fixture
def hostile(r: redis.Redis, resque: Resque) -> Resque:
    """Every place a value from Redis reaches a page, filled with markup."""
    keys = resque.keys
    resque.push(EVIL_QUEUE, {"class": HOSTILE, "args": [HOSTILE, {"k": HOSTILE}]})
    resque.push("plain", {"class": "Job", "args": [HOSTILE]})
    worker = f"host{HOSTILE_NAME}:12:{EVIL_QUEUE}"
    add_worker(r, keys, worker, job=(EVIL_QUEUE, HOSTILE, [HOSTILE]), heartbeat=time.time())
    add_failure(r, keys, class_name=HOSTILE, args=[HOSTILE], queue=EVIL_QUEUE, error=HOSTILE,
                exception=HOSTILE, worker=worker, backtrace=[HOSTILE])
    add_failure(r, keys, f"{EVIL_QUEUE}_failed", class_name=HOSTILE, queue=EVIL_QUEUE)
    r.rpush(keys.failed, HOSTILE)  # not even JSON
    due = int(time.time()) + 600
    resque.delayed.enqueue_at_with_queue(EVIL_QUEUE, due, HOSTILE, HOSTILE)
    resque.schedules.set(HOSTILE, {"every": "1h", "class": HOSTILE, "queue": "plain",
                                   "args": [HOSTILE], "description": HOSTILE})
    r.set(keys.scheduler_master_lock(), HOSTILE)
    r.set(keys.prefix + HOSTILE, HOSTILE)
    return resque


def test_every_page_escapes_what_redis_holds(hostile: Resque, r: redis.Redis) -> None:
    web = client(hostile)
    due = hostile.delayed.delayed_queue_peek(0, 1)[0]
    worker = next(iter(hostile.workers()))
    fid = next(str(e.id) for e in _failures(hostile))
    quoted = {name: _segment(name) for name in (EVIL_QUEUE, worker, fid, HOSTILE,
                                                f"{EVIL_QUEUE}_failed")}
    pages = [
        "/", "/queues", f"/queues/{quoted[EVIL_QUEUE]}", "/queues/plain", "/working",
        "/workers", f"/workers/{quoted[worker]}", "/failed",
        f"/failed/{quoted[EVIL_QUEUE + '_failed']}", f"/failures/{quoted[fid]}",
        f"/failed?class={quoted[HOSTILE]}", "/stats", "/stats/redis", "/stats/keys",
        f"/stats/keys/{quoted[HOSTILE]}", f"/stats/keys/queue%3A{quoted[EVIL_QUEUE]}",
        "/delayed", f"/delayed/{due}", "/schedule",
    ]
    missing = [f"/nothing/{quoted[HOSTILE]}", f"/workers/{quoted[HOSTILE]}",
               f"/failed/{quoted[HOSTILE]}", f"/failures/{quoted[HOSTILE]}"]
    for path, status in [*((p, 200) for p in pages), *((p, 404) for p in missing)]:
        response = web.get(path)
        assert response.status_code == status, path
        body = response.text
        assert "<script>" not in body and "<img src=x" not in body, path
        assert re.search(r"<script(?! src=)", body) is None, path
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in web.get("/failed").text
    assert "q&lt;script&gt;alert(1)&lt;/script&gt;" in web.get("/queues").text


def _failures(resque: Resque) -> Any:
    from resque.admin import Admin

    return Admin(resque).failures.page(0, 10).entries


def _segment(name: str) -> str:
    from resque.web.dashboard import quote_segment

    return quote_segment(name)


def test_live_json_and_charts_carry_hostile_names_as_data(hostile: Resque, r: redis.Redis) -> None:
    from resque.metrics import record_sample

    record_sample(r, hostile.keys)
    web = client(hostile)
    response = web.get("/live.json", params={"q": EVIL_QUEUE})
    assert response.headers["content-type"] == "application/json"
    assert response.json()["queues"] == {EVIL_QUEUE: 1}
    assert "<" not in response.text  # even sniffed as HTML, it could not open a tag
    svg = web.get("/charts/depth.svg").text
    assert "<script" not in svg and "q&lt;script&gt;" in svg


def test_names_with_slashes_colons_and_unicode_round_trip(resque: Resque) -> None:
    # Pushed as Ruby would: our enqueue refuses "?" (a worker's -q reads it as a pattern).
    resque.redis.sadd(resque.keys.queues, "a/b:c?d#e%f")
    resque.redis.rpush(resque.keys.queue("a/b:c?d#e%f"), '{"class":"Job","args":[]}')
    resque.push("ünïcode→", {"class": "Job", "args": []})
    web = client(resque)
    page = web.get("/queues").text
    assert 'href="/queues/a%2Fb%3Ac%3Fd%23e%25f"' in page
    assert 'href="/queues/%C3%BCn%C3%AFcode%E2%86%92"' in page
    assert "1</strong> pending job" in web.get("/queues/a%2Fb%3Ac%3Fd%23e%25f").text
    assert "1</strong> pending job" in web.get("/queues/%C3%BCn%C3%AFcode%E2%86%92").text
    response = post(web, "/actions/queues/remove", queue="a/b:c?d#e%f")
    assert response.status_code == 303 and resque.size("a/b:c?d#e%f") == 0


# --- CSRF and origin ----------------------------------------------------------------------


def test_every_post_route_refuses_a_missing_or_wrong_token(r: redis.Redis, resque: Resque
                                                           ) -> None:
    r.set(resque.keys.pause, "true")
    routes = post_routes()
    assert len(routes) == 14
    web = client(resque)
    good = token(web)
    name = str(cookie_name(web))
    wrong = new_token("not our secret")
    forged = good.split(".")[0] + ".AAAA"
    for path in routes:
        assert web.post(path, data={"next": "/"}).status_code == 403, path
        assert web.post(path, data={"csrf_token": wrong}).status_code == 403, path
        assert web.post(path, data={"csrf_token": good + "x"}).status_code == 403, path
        # a cookie planted by someone else (not signed by us) with a matching form value
        web.cookies.set(name, forged)
        assert web.post(path, data={"csrf_token": forged}).status_code == 403, path
        web.cookies.set(name, good)
    assert r.get(resque.keys.pause) == b"true"  # nothing ran


def test_the_token_is_in_every_form_and_matches_the_cookie(resque: Resque) -> None:
    web = client(resque)
    page = web.get("/").text
    forms = re.findall(r'<form method="post".*?</form>', page, re.S)
    assert forms
    for form in forms:
        assert f'name="csrf_token" value="{web.cookies.get(str(cookie_name(web)))}"' in form


def test_a_cross_site_post_is_refused_even_with_a_valid_token(r: redis.Redis, resque: Resque
                                                             ) -> None:
    web = client(resque)
    fields = {"csrf_token": token(web), "next": "/"}
    for headers in ({"origin": "http://evil.example"}, {"origin": "null"},
                    {"referer": "http://evil.example/page"},
                    {"origin": "http://127.0.0.1:5678.evil.example"},
                    {"origin": "http://127.0.0.1:5679"}):
        assert web.post("/actions/pause", data=fields, headers=headers).status_code == 403
    assert not r.exists(resque.keys.pause)
    ok = web.post("/actions/pause", data=fields, headers={"origin": "http://127.0.0.1:5678"})
    assert ok.status_code == 303 and r.exists(resque.keys.pause)
    ok = web.post("/actions/resume", data=fields,
                  headers={"referer": "http://127.0.0.1:5678/x"})
    assert ok.status_code == 303


def test_trusted_origins_are_accepted(resque: Resque) -> None:
    web = client(resque, trusted_origins=("https://admin.example.com",))
    fields = {"csrf_token": token(web)}
    headers = {"origin": "https://admin.example.com"}
    assert web.post("/actions/pause", data=fields, headers=headers).status_code == 303


def test_only_urlencoded_forms_are_accepted(resque: Resque) -> None:
    web = client(resque)
    response = web.post("/actions/pause", files={"csrf_token": (None, token(web))})
    assert response.status_code == 415
    big = web.post("/actions/pause", data={"csrf_token": token(web), "x": "a" * 70_000})
    assert big.status_code == 413


def test_the_csrf_cookie_is_strict_and_http_only(resque: Resque) -> None:
    cookie = client(resque).get("/").headers["set-cookie"]
    assert re.match(rf"{CSRF_COOKIE}_[0-9a-f]{{12}}=", cookie)
    for part in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert part in cookie


def test_one_secret_lets_several_processes_share_tokens(resque: Resque) -> None:
    first = client(resque, secret="shared")
    second = client(resque, secret="shared")
    shared = token(first)
    name = str(cookie_name(first))
    second.cookies.set(name, shared)
    assert post(second, "/actions/pause").status_code == 303
    third = client(resque)  # its own random secret: the token is not its own
    third.cookies.set(name, shared)
    assert third.post("/actions/pause", data={"csrf_token": shared}).status_code == 403


def test_security_headers_on_every_response(resque: Resque) -> None:
    web = client(resque)
    for path in ("/", "/static/app.js", "/live.json", "/charts/depth.svg", "/nope"):
        headers = web.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"], path
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == ("private, max-age=86400" if "static" in path
                                            else "no-store")


def test_a_server_error_page_carries_the_security_headers_and_no_traceback(
    resque: Resque,
) -> None:
    def broken_hook(request: Request) -> bool:
        raise RuntimeError("the host application's hook has a bug")

    web = TestClient(create_app(resque, auth=broken_hook), base_url=BASE_URL,
                     raise_server_exceptions=False)
    response = web.get("/")
    assert response.status_code == 500
    assert "Something went wrong" in response.text and "RuntimeError" not in response.text
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def test_templates_hold_no_inline_script_or_handler() -> None:
    from resque.web.dashboard import HERE

    for template in (HERE / "templates").glob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?! src=)", text), template.name
        assert not re.search(r"\son[a-z]+=", text), template.name
        assert "|safe" not in text.replace(" ", "") and "Markup" not in text, template.name
    script = (HERE / "static" / "app.js").read_text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "eval(" not in script and "document.write" not in script


# --- authentication -----------------------------------------------------------------------


def _basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_no_auth_by_default(resque: Resque) -> None:
    assert client(resque).get("/").status_code == 200


def test_basic_auth_with_the_password_from_the_environment(
    resque: Resque, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESQUE_WEB_PASSWORD", "s3cret")
    web = client(resque)
    for path in ("/", "/static/app.css", "/live.json", "/nope"):
        refused = web.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"].startswith('Basic realm="resque"')
    assert web.get("/", headers=_basic("admin", "wrong")).status_code == 401
    assert web.get("/", headers=_basic("root", "s3cret")).status_code == 401
    assert web.get("/", headers={"authorization": "Basic !!!"}).status_code == 401
    assert web.get("/", headers=_basic("admin", "s3cret")).status_code == 200
    refused_post = web.post("/actions/pause", data={"csrf_token": "x"})
    assert refused_post.status_code == 401
    monkeypatch.setenv("RESQUE_WEB_USER", "ops")
    web = client(resque)
    assert web.get("/", headers=_basic("ops", "s3cret")).status_code == 200
    assert web.get("/", headers=_basic("admin", "s3cret")).status_code == 401


def test_the_host_applications_hook_decides(resque: Resque) -> None:
    def staff_only(request: Request) -> bool:
        return request.headers.get("x-user") == "staff"

    web = client(resque, auth=staff_only, password="ignored-when-a-hook-is-given")
    assert web.get("/").status_code == 403
    assert web.get("/", headers={"x-user": "staff"}).status_code == 200

    async def async_hook(request: Request) -> bool:
        return request.query_params.get("key") == "k"

    web = client(resque, auth=async_hook)
    assert web.get("/").status_code == 403
    assert web.get("/?key=k").status_code == 200


def test_by_default_only_loopback_host_names_are_answered(resque: Resque) -> None:
    """DNS rebinding: evil.example resolving to 127.0.0.1 must not reach the dashboard,
    however the app is started (here create_app alone, as uvicorn --factory runs it)."""
    web = client(resque)
    for host in ("testserver", "evil.example", "evil.example:5678", "127.0.0.1.evil.example",
                 "localhost.evil.example", ""):
        refused = web.get("/", headers={"host": host})
        assert refused.status_code == 400, host
        assert "RESQUE_WEB_ALLOWED_HOSTS" in refused.text
        assert "set-cookie" not in refused.headers  # no token for a rebound page
    for host in ("127.0.0.1:5678", "localhost", "[::1]:5678", "LOCALHOST:1"):
        assert web.get("/", headers={"host": host}).status_code == 200, host


def test_the_embedding_application_names_its_hosts_or_allows_any(
    resque: Resque, monkeypatch: pytest.MonkeyPatch
) -> None:
    named = client(resque, allowed_hosts=("Resque.Example.com",))
    assert named.get("/", headers={"host": "resque.example.com:443"}).status_code == 200
    assert named.get("/", headers={"host": "127.0.0.1"}).status_code == 400
    anyone = client(resque, allowed_hosts=("*",))  # its own host checking runs before ours
    assert anyone.get("/", headers={"host": "any.example"}).status_code == 200
    monkeypatch.setenv("RESQUE_WEB_ALLOWED_HOSTS", "ops.example, other.example")
    from_env = client(resque)
    assert from_env.get("/", headers={"host": "other.example"}).status_code == 200
    assert from_env.get("/", headers={"host": "localhost"}).status_code == 400
    slash = anyone.get("/stats/", headers={"host": "evil.example"})
    assert slash.status_code == 404 and "location" not in slash.headers  # no Host reflected
    empty = client(resque, allowed_hosts=())  # empty: the default, never "nobody" or "any"
    assert empty.get("/", headers={"host": "localhost"}).status_code == 200
    assert empty.get("/", headers={"host": "ops.example"}).status_code == 400


def test_resque_web_also_answers_to_the_address_it_listens_on() -> None:
    from resque.web.config import LOOPBACK_NAMES, WebConfig
    from resque.web.server import answering_to

    assert answering_to(WebConfig(), "10.0.0.5").allowed_hosts == (*LOOPBACK_NAMES, "10.0.0.5")
    assert answering_to(WebConfig(), "127.0.0.2").allowed_hosts == (*LOOPBACK_NAMES,
                                                                    "127.0.0.2")
    assert answering_to(WebConfig(), "0.0.0.0").allowed_hosts == LOOPBACK_NAMES
    assert answering_to(WebConfig(), "::").allowed_hosts == LOOPBACK_NAMES
    assert answering_to(WebConfig(), "::1").allowed_hosts == LOOPBACK_NAMES
    assert answering_to(WebConfig(allowed_hosts=("*",)), "10.0.0.5").allowed_hosts == ("*",)


# --- read-only ----------------------------------------------------------------------------


def test_read_only_has_no_post_route_and_no_button(
    hostile: Resque, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert post_routes(read_only=True) == []
    monkeypatch.setenv("RESQUE_WEB_READ_ONLY", "1")
    web = client(hostile)
    for path in ("/", "/queues", f"/queues/{_segment(EVIL_QUEUE)}", "/failed", "/working",
                 "/workers", "/delayed", "/schedule", "/stats"):
        page = web.get(path).text
        assert 'method="post"' not in page and "data-confirm" not in page, path
        assert ">Retry<" not in page and ">Remove" not in page, path
        assert "read-only" in page


def test_read_only_answers_405_to_every_other_method(
    hostile: Resque, r: redis.Redis
) -> None:
    web = client(hostile, read_only=True)
    fid = str(_failures(hostile)[0].id)
    before = r.llen(hostile.keys.failed)
    for path in [*post_routes(), "/", "/queues", "/nothing/here"]:
        response = web.post(path, data={"csrf_token": token(web), "id": fid,
                                        "queue": EVIL_QUEUE})
        assert response.status_code == 405, path
        assert response.headers["allow"] == "GET, HEAD"
        assert "read-only" in response.text
    for method in ("PUT", "DELETE", "PATCH"):
        assert web.request(method, "/actions/pause").status_code == 405, method
    assert r.llen(hostile.keys.failed) == before and hostile.size(EVIL_QUEUE) == 1


def test_read_only_writes_nothing_on_get_not_even_chart_samples(
    hostile: Resque, r: redis.Redis
) -> None:
    before = _snapshot(r)
    with client(hostile, read_only=True) as web:  # the lifespan's sampler runs too
        for path in ("/", "/queues", "/failed", "/workers", "/stats", "/live.json",
                     "/charts/throughput.svg", "/charts/depth.svg"):
            assert web.get(path).status_code == 200, path
    assert _snapshot(r) == before
    assert not r.exists(layout.metrics_key(hostile.keys, "recent"))
    with client(hostile) as web:  # the same pages of a dashboard that may act: a sample
        assert web.get("/").status_code == 200
    assert r.exists(layout.metrics_key(hostile.keys, "recent"))


def _snapshot(r: redis.Redis) -> dict[bytes, bytes | None]:
    return {key: r.dump(key) for key in r.scan_iter()}


# --- never KEYS ---------------------------------------------------------------------------


def test_no_page_runs_keys(hostile: Resque, r: redis.Redis) -> None:
    r.config_resetstat()
    web = client(hostile)
    for path in ("/", "/queues", "/working", "/workers", "/failed", "/stats", "/stats/redis",
                 "/stats/keys", "/stats/keys/queues", "/delayed", "/schedule", "/live.json",
                 "/charts/throughput.svg", "/charts/depth.svg", "/stats.txt"):
        assert web.get(path).status_code == 200, path
    commands = r.info("commandstats")
    assert "cmdstat_keys" not in commands
    assert "cmdstat_scan" in commands


def test_layout_scan_pattern_escapes_the_namespace() -> None:
    assert layout.scan_pattern(layout.Keys("a*b[c]")) == r"a\*b\[c\]:*"
