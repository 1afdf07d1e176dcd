"""The pages: everything Ruby's resque-web shows, read through the admin library.

Each handler is a plain function (Starlette runs it in a thread, as redis-py is blocking).
Costs at scale: counts come from ``LLEN``/``SCARD`` pipelines; listings read one page with
``LRANGE``. The Stats tab is ``stats.py``.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from resque import layout
from resque.admin import Filter, NotAFailureList, Page, WorkerInfo
from resque.failure.records import FailureNotFound
from resque.scheduler.schedule import ScheduleError, Schedules, load_schedule_file
from resque.scheduler.state import SchedulerState, lock_prefix_from_env, read_state
from resque.web import charts
from resque.web.dashboard import Dashboard, Pager, page_of, path_param, url_builder

QUEUES_PER_PAGE = 50
WORKERS_PER_PAGE = 50


def dashboard_of(request: Request) -> Dashboard:
    found: Dashboard = request.app.state.dashboard
    return found


def _window(request: Request) -> str:
    window = request.query_params.get("window", "1h")
    return window if window in charts.WINDOWS else "1h"


# --- overview, queues, working ----------------------------------------------------------


def _by_size(item: tuple[str, int | None]) -> tuple[int, str]:
    return -(item[1] or 0), item[0]


def overview(request: Request) -> Response:
    board = dashboard_of(request)
    totals = board.totals(request)
    busiest = sorted(totals.queues.items(), key=_by_size)[:10]
    workers = board.admin.workers()
    working = sorted(filter(_busy, workers), key=_run_at)
    return board.render(
        request, "overview.html", tab="overview", busiest=busiest,
        queue_count=len(totals.queues), failure_counts=totals.failure_lists,
        working=working[:10],
        working_count=len(working), worker_count=len(workers), window=_window(request),
        windows=list(charts.WINDOWS), scheduler=scheduler_state(board),
    )


def _busy(worker: WorkerInfo) -> bool:
    """At work as ``Resque.working`` counts it: a non-empty ``worker:<id>`` value (an empty
    one makes Ruby's ``state`` say working, but its working list leaves it out)."""
    return worker.job is not None


def _run_at(worker: Any) -> str:
    job = worker.job or {}
    return str(job.get("run_at") or "")


def queues(request: Request) -> Response:
    board = dashboard_of(request)
    totals = board.totals(request)
    order = request.query_params.get("sort", "name")
    rows = sorted(totals.queues.items(), key=_by_size if order == "size"
                  else (lambda item: item[0]))
    pager = Pager.from_request(request, QUEUES_PER_PAGE, len(rows))
    return board.render(
        request, "queues.html", tab="queues", rows=page_of(rows, pager), pager=pager,
        order=order, failure_counts=totals.failure_lists,
    )


def queue(request: Request) -> Response:
    board = dashboard_of(request)
    name = path_param(request, "name")
    if "raw" in request.query_params:
        key = board.keys.queue(name).encode("utf-8", "surrogateescape")
        return download(board.resque.redis.lindex(key, raw_index(request)), "job.json")
    known = board.totals(request).queues
    size = known[name] if name in known else board.admin.size(name)  # None: not a list
    pager = Pager.from_request(request, board.config.page_size, size or 0)
    items = board.admin.peek(name, pager.start, pager.per_page) if size else []
    return board.render(
        request, "queue.html", tab="queues", name=name, size=size, items=items, pager=pager,
        registered=name in known, key=board.keys.queue(name),
        key_name=board.keys.queue(name)[len(board.keys.prefix):],
    )


def working(request: Request) -> Response:
    board = dashboard_of(request)
    workers = board.admin.workers()
    busy = sorted(filter(_busy, workers), key=_run_at)
    pager = Pager.from_request(request, WORKERS_PER_PAGE, len(busy))
    return board.render(
        request, "working.html", tab="working", working=page_of(busy, pager), pager=pager,
        worker_count=len(workers), working_count=len(busy),
    )


def download(raw: Any, filename: str) -> Response:
    """A stored value as it is, to save rather than show (pages show a bounded part of it);
    an attachment of no renderable type, so a browser never runs what it holds."""
    if raw is None:
        raise HTTPException(404)
    return Response(raw if isinstance(raw, bytes) else str(raw).encode(),
                    media_type="application/octet-stream",
                    headers={"content-disposition": f'attachment; filename="{filename}"'})


def raw_index(request: Request) -> int:
    """The ``?raw=<index>`` of a download link (404 if it is not a number)."""
    try:
        return int(request.query_params["raw"])
    except ValueError:
        raise HTTPException(404) from None


# --- workers ----------------------------------------------------------------------------


def workers(request: Request) -> Response:
    board = dashboard_of(request)
    everyone = board.admin.workers()
    hosts: dict[str, int] = {}
    for worker in everyone:
        hosts[worker.host] = hosts.get(worker.host, 0) + 1
    host = request.query_params.get("host")
    shown = [w for w in everyone if host is None or w.host == host]
    pager = Pager.from_request(request, WORKERS_PER_PAGE, len(shown))
    return board.render(
        request, "workers.html", tab="workers", workers=page_of(shown, pager), pager=pager,
        hosts=sorted(hosts.items()), host=host, total=len(everyone),
        orphans=board.admin.orphans(),
    )


def worker(request: Request) -> Response:
    board = dashboard_of(request)
    worker_id = path_param(request, "worker_id")
    found = next((w for w in board.admin.workers() if w.id == worker_id), None)
    if found is None:
        return board.render(request, "missing.html", 404, tab="workers",
                            what="worker", name=worker_id)
    inflight = board.admin.inflight([found.id])[found.id]
    return board.render(request, "worker.html", tab="workers", worker=found, inflight=inflight)


# --- failures ---------------------------------------------------------------------------


def failed(request: Request) -> Response:
    board = dashboard_of(request)
    list_name = path_param(request, "list_name") if "list_name" in request.path_params else None
    class_name = request.query_params.get("class") or None
    queue_name = request.query_params.get("queue") or None
    newest = request.query_params.get("order", "desc") != "asc"
    totals = board.totals(request)
    counts = totals.failure_lists
    if list_name is not None and list_name not in counts:
        return board.render(request, "missing.html", 404, tab="failed",
                            what="failure list", name=list_name)
    where = Filter(queue=queue_name, class_name=class_name, list_name=list_name)
    pager = Pager.from_request(request, board.config.page_size)
    unreadable = None
    try:
        page = board.failures.page(pager.start, pager.per_page, newest=newest, where=where)
    except NotAFailureList:
        raise HTTPException(404) from None
    except (redis.ResponseError, UnicodeEncodeError) as exc:  # junk: the header names it
        page, unreadable = Page([], pager.start, 0, False), str(exc)
    pager.total, pager.more = page.total, page.more
    if page.total is not None and pager.start >= page.total > 0:
        return RedirectResponse(url_builder(request)(
            "/failed", *([list_name] if list_name else []), class_=class_name,
            queue=queue_name, order=None if newest else "asc"), 303)
    lists = sorted(counts.items(), key=lambda item: (item[0] != layout.FAILED_LIST,
                                                     -(item[1] or 0), item[0]))
    return board.render(
        request, "failed.html", tab="failed", entries=page.entries, pager=pager,
        list_name=list_name, class_name=class_name, queue_name=queue_name, newest=newest,
        lists=lists[:20], list_count=len(lists), total=totals.failures,
        filtered=where.by_content, unreadable=unreadable,
    )


def failure(request: Request) -> Response:
    board = dashboard_of(request)
    failure_id = path_param(request, "failure_id")
    try:
        entry = board.failures.get(failure_id)
    except (FailureNotFound, NotAFailureList, ValueError, redis.ResponseError,
            UnicodeEncodeError):
        return board.render(request, "missing.html", 404, tab="failed",
                            what="failed job", name=failure_id)
    if "raw" in request.query_params:
        return download(entry.raw, f"failure-{entry.id.index}.json")
    return board.render(request, "failure.html", tab="failed", entry=entry)


# --- delayed and recurring jobs -------------------------------------------------------------


def scheduler_state(board: Dashboard) -> SchedulerState:
    """Whether a scheduler is master and due jobs are late, for the banners (one round
    trip; two when due jobs wait with no master)."""
    return read_state(board.resque, lock_prefix_from_env())


def delayed(request: Request) -> Response:
    board = dashboard_of(request)
    pager = Pager.from_request(request, board.config.page_size)
    total, rows = board.resque.delayed.page(pager.start, pager.per_page)
    pager.total = total
    return board.render(request, "delayed.html", tab="delayed", rows=rows, pager=pager,
                        total=total, scheduler=scheduler_state(board))


def delayed_timestamp(request: Request) -> Response:
    board = dashboard_of(request)
    try:
        timestamp = int(request.path_params["timestamp"])
    except ValueError:
        raise HTTPException(404) from None
    delayed_jobs = board.resque.delayed
    size = delayed_jobs.delayed_timestamp_size(timestamp)
    pager = Pager.from_request(request, board.config.page_size, size)
    key = board.keys.delayed(timestamp)
    raws = board.resque.redis.lrange(key, pager.start, pager.end - 1) if size else []
    items = []
    for raw in raws:
        try:
            item = layout.decode_delayed_item(raw)
            items.append({"raw": layout.raw_text(raw), "class": item.class_name,
                          "args": item.args, "queue": item.queue, "problem": None})
        except ValueError as exc:
            items.append({"raw": layout.raw_text(raw), "class": None, "args": None,
                          "queue": None, "problem": str(exc)})
    return board.render(request, "delayed_timestamp.html", tab="delayed", timestamp=timestamp,
                        size=size, items=items, pager=pager)


def schedule(request: Request) -> Response:
    board = dashboard_of(request)
    schedules = Schedules(board.resque)
    local: dict[str, Any] = {}
    file_error = None
    if board.config.schedule_file:
        try:
            local = load_schedule_file(board.config.schedule_file)
        except (OSError, ScheduleError, ValueError) as exc:
            file_error = str(exc)
    rows = schedules.status(local=local, now=time.time())
    return board.render(request, "schedule.html", tab="schedule", rows=rows,
                        scheduler=scheduler_state(board), file_error=file_error)
