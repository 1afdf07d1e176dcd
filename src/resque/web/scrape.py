"""``/metrics``: the farm in Prometheus's text format, for a Prometheus that scrapes the
dashboard (the ``prometheus`` extra; without it the route says how to install it).

It passes the dashboard's guard like any page: list the name Prometheus uses in
``allowed_hosts``, and give Prometheus the basic-auth password when one is set. A read-only
dashboard writes nothing, not even the marks that measure queue ages (see
``resque.prometheus.ages``).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from resque.web.dashboard import Dashboard


async def metrics(request: Request) -> Response:
    board: Dashboard = request.app.state.dashboard
    try:
        from resque.prometheus.collector import render
    except ImportError as exc:  # prometheus_client is not installed
        return PlainTextResponse(
            f"/metrics needs the 'prometheus' extra ({exc}): pip install 'resque[prometheus]'",
            501)
    body, content_type = await run_in_threadpool(
        render, board.resque, mark_queues=not board.config.read_only,
        accept=request.headers.get("accept", ""))
    return Response(body, headers={"content-type": content_type})
