"""The Jobs tab: tracked jobs (``status=True``), the most recent first, a search by id, and a
page per job with its status, timeline, progress and result.

Only jobs that asked for a status have a record (``status:<id>``, resque-status's layout);
any other id is reported as having none. Costs: the list is ``ZCARD`` + ``ZREVRANGE`` then one
``MGET``; a job page is one ``GET``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from resque import layout
from resque.web.dashboard import Dashboard, Pager, path_param

JOBS_PER_PAGE = 50


def _board(request: Request) -> Dashboard:
    found: Dashboard = request.app.state.dashboard
    return found


def jobs(request: Request) -> Response:
    """The recent tracked jobs; ``?id=`` goes to that job's page."""
    board = _board(request)
    wanted = request.query_params.get("id", "").strip()
    if wanted:
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/jobs/{_quote(wanted)}", 303)
    pager = Pager.from_request(request, JOBS_PER_PAGE)
    total, rows = board.resque.statuses.recent(pager.start, pager.per_page)
    pager.total = total
    return board.render(request, "jobs.html", tab="jobs", rows=rows, pager=pager, total=total)


def job(request: Request) -> Response:
    board = _board(request)
    job_id = path_param(request, "job_id")
    record = board.resque.statuses.get(job_id) if job_id else None
    if record is None:
        return board.render(request, "job_missing.html", 404, tab="jobs", job_id=job_id)
    payload = None
    if record.payload:
        try:
            payload = layout.decode_job(record.payload, record.queue or "")
        except ValueError:
            payload = None
    args, kwargs = layout.split_kwargs(payload["args"]) if payload else ([], {})
    return board.render(request, "job.html", tab="jobs", job=record, args=args, kwargs=kwargs)


def _quote(job_id: str) -> str:
    from urllib.parse import quote

    return quote(job_id, safe="")
