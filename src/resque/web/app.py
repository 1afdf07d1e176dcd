"""The dashboard as one ASGI application (Starlette), also servable as WSGI.

Why Starlette: it is small, typed, and an ASGI app mounts in any ASGI host (FastAPI,
Starlette, Django's ASGI handler, Litestar) at any path, which it reports to us as
``root_path``, so every link we write follows the mount. WSGI hosts (Flask, Django's WSGI)
get the same app through ``a2wsgi`` (``wsgi_app``). Forms are parsed by us (they are tiny
and urlencoded), so no multipart parser is needed; the CSRF cookie is signed with ``hmac``,
so no session library either.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import redis
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from resque.connection import is_transient
from resque.errors import RedisUnavailable
from resque.facade import Resque
from resque.metrics import RECENT
from resque.web import actions, jobs, live, pages, retries, scrape, stats
from resque.web.config import WebConfig
from resque.web.dashboard import HERE, Dashboard
from resque.web.security import AuthHook, Guard, SecureStarlette

if TYPE_CHECKING:
    from a2wsgi.wsgi_typing import WSGIApp

class NameConvertor(PathConvertor):
    """A name from Redis as the last path segment(s): any character at all, newlines
    included (Starlette's ``path`` stops at one, and a worker id may hold one)."""

    regex = r"[\s\S]*"


register_url_convertor("resque_name", NameConvertor())

log = logging.getLogger("resque.web")


def _routes(read_only: bool) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/", pages.overview, name="overview"),
        Route("/overview", lambda request: RedirectResponse(request.scope.get("root_path", "")
                                                            + "/", 302)),
        Route("/live.json", live.live),
        Route("/charts/{kind}.svg", live.chart),
        Route("/queues", pages.queues),
        Route("/queues/{name:resque_name}", pages.queue),
        Route("/working", pages.working),
        Route("/workers", pages.workers),
        Route("/workers/{worker_id:resque_name}", pages.worker),
        Route("/failed", pages.failed),
        Route("/failed/{list_name:resque_name}", pages.failed),
        Route("/failures/{failure_id:resque_name}", pages.failure),
        Route("/delayed", pages.delayed),
        Route("/delayed/{timestamp}", pages.delayed_timestamp),
        Route("/retries", retries.retries),
        Route("/schedule", pages.schedule),
        Route("/jobs", jobs.jobs),
        Route("/jobs/{job_id:resque_name}", jobs.job),
        Route("/stats", stats.stats),
        Route("/stats/raw", stats.stats_raw),
        Route("/stats/redis", stats.stats_redis),
        Route("/stats/keys", stats.stats_keys),
        Route("/stats/keys/{key:resque_name}", stats.stats_key),
        Route("/stats.txt", stats.stats_txt),
        Route("/metrics", scrape.metrics),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    if read_only:
        return routes  # no POST route exists at all: a POST anywhere is 405
    posts = {
        "/actions/queues/remove": actions.remove_queue,
        "/actions/pause": actions.pause,
        "/actions/resume": actions.resume,
        "/actions/failed/retry": actions.retry_failure,
        "/actions/failed/retry-remove": actions.retry_remove_failure,
        "/actions/failed/remove": actions.remove_failure,
        "/actions/failed/retry-all": actions.retry_all,
        "/actions/failed/clear": actions.clear,
        "/actions/failed/clear-retried": actions.clear_retried,
        "/actions/delayed/queue-now": actions.delayed_queue_now,
        "/actions/delayed/item-now": actions.delayed_item_now,
        "/actions/delayed/remove": actions.delayed_remove,
        "/actions/schedule/enqueue": actions.schedule_enqueue,
        "/actions/schedule/remove": actions.schedule_remove,
    }
    return [*(Route(path, endpoint, methods=["POST"]) for path, endpoint in posts.items()),
            *routes]


def _error_page(request: Request, status: int, title: str, detail: str) -> Response:
    board: Dashboard | None = getattr(request.app.state, "dashboard", None)
    if board is None:
        return PlainTextResponse(f"{title}: {detail}", status)
    return board.render(request, "error.html", status, summary=False, tab="",
                        title=title, detail=detail)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return PlainTextResponse("Method not allowed.", 405, headers=dict(exc.headers or {}))
    title = "Not found" if exc.status_code == 404 else f"Error {exc.status_code}"
    return await run_in_threadpool(_error_page, request, exc.status_code, title,
                                   str(exc.detail))


async def _redis_error(request: Request, exc: Exception) -> Response:
    """Redis away: a 503 until it answers. Redis refusing a command (a key of another type
    no page expected): a 500 saying what Redis said, not that it cannot be reached."""
    board: Dashboard = request.app.state.dashboard
    if isinstance(exc, RedisUnavailable) or is_transient(exc):
        board.outage.failed(exc)  # one line per outage, not one per request
        return HTMLResponse(
            "<!doctype html><meta charset=utf-8><title>Redis unavailable</title>"
            "<h1>Can't reach Redis</h1><p>The page will work again once Redis answers.</p>"
            f"<pre>{html.escape(str(exc))}</pre>", 503)
    log.error("Redis refused a command on %s: %s", request.url.path, exc)
    return await run_in_threadpool(
        _error_page, request, 500, "Redis refused a command",
        f"Redis said: {exc}. Some key holds data of another type than this page expects "
        "(written by another tool?); the Keys tab under Stats shows each key's type.")


def _server_error(request: Request, exc: Exception) -> Response:
    """A bug of ours: a plain page (the traceback goes to the log, not to the browser)."""
    return HTMLResponse(
        "<!doctype html><meta charset=utf-8><title>Server error</title>"
        "<h1>Something went wrong</h1><p>The dashboard hit an error; its log has the "
        "details.</p>", 500)


def create_app(
    redis_client: Resque | redis.Redis | str | None = None,
    *,
    namespace: str | None = None,
    auth: AuthHook | None = None,
    config: WebConfig | None = None,
    **settings: Any,
) -> Starlette:
    """The dashboard for one farm, as an ASGI app to serve or mount anywhere.

    ``redis_client`` is a ``Resque``, a redis-py client, or a URL / ``host:port/ns`` string
    (default: ``RESQUE_REDIS``, ``REDIS_URL``, localhost). ``auth`` is the host
    application's own check, ``callable(request) -> bool`` (or awaitable); when given it
    decides alone. Other settings are ``WebConfig`` fields (``read_only=True``,
    ``password=...``) and default to the ``RESQUE_WEB_*`` environment variables.

    It answers only to loopback host names unless ``allowed_hosts`` lists others, or is
    ``("*",)`` for an application that checks hosts itself: safe however it is started.
    """
    resque = redis_client if isinstance(redis_client, Resque) else Resque(
        redis_client, namespace=namespace)
    config = config or WebConfig.from_env(**settings)
    board = Dashboard(resque, config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Served on its own (``resque web``), sample on a timer; mounted in a host that
        # skips sub-app lifespans, pages and polls take the samples instead.
        task = asyncio.ensure_future(_sample_forever(board))  # read-only: a no-op
        try:
            yield
        finally:
            task.cancel()

    app = SecureStarlette(
        routes=_routes(config.read_only),
        middleware=[Middleware(Guard, config=config, auth=auth)],
        exception_handlers={
            HTTPException: _http_error,
            redis.RedisError: _redis_error,
            RedisUnavailable: _redis_error,
            500: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.dashboard = board
    return app


async def _sample_forever(board: Dashboard) -> None:
    while True:
        await run_in_threadpool(board.sample)
        await asyncio.sleep(RECENT.bucket)


def wsgi_app(*args: Any, **kwargs: Any) -> WSGIApp:
    """The same dashboard for a WSGI host (Flask, Django, gunicorn's sync workers), through
    ``a2wsgi``; mount it with the host's dispatcher and it follows ``SCRIPT_NAME``."""
    from a2wsgi import ASGIMiddleware

    return ASGIMiddleware(create_app(*args, **kwargs))  # type: ignore[arg-type]
