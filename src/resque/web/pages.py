"""The pages: everything Ruby's resque-web shows, read through the admin library.

Each handler is a plain function (Starlette runs it in a thread, as redis-py is blocking).
Costs at scale: counts come from ``LLEN``/``SCARD`` pipelines; listings read one page with
``LRANGE``; the keys tab walks the namespace with a capped ``SCAN``, never ``KEYS``.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from resque import layout
from resque.admin import Filter, NotAFailureList, Page, WorkerInfo
from resque.failure.records import FailureNotFound
from resque.web import charts
from resque.web.dashboard import Dashboard, Pager, page_of, path_param, url_builder

QUEUES_PER_PAGE = 50
WORKERS_PER_PAGE = 50
KEYS_PER_PAGE = 100
SCAN_CALLS = 20  # SCAN calls per keys page at most: a page may show fewer keys, never hang
SCAN_COUNT = 500
VALUES_PER_PAGE = 20


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
        windows=list(charts.WINDOWS),
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
    )


def worker(request: Request) -> Response:
    board = dashboard_of(request)
    worker_id = path_param(request, "worker_id")
    found = next((w for w in board.admin.workers() if w.id == worker_id), None)
    if found is None:
        return board.render(request, "missing.html", 404, tab="workers",
                            what="worker", name=worker_id)
    return board.render(request, "worker.html", tab="workers", worker=found)


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
    return board.render(request, "failure.html", tab="failed", entry=entry)


# --- stats ------------------------------------------------------------------------------


def stats(request: Request) -> Response:
    board = dashboard_of(request)
    extra = board.summary(request)
    info = {key: extra[key] for key in ("pending", "processed", "queues", "workers", "working",
                                        "failed", "servers", "environment")}
    ours = {
        "failed_all_lists": extra["failed_all_lists"], "failed_lists": extra["failed_lists"],
        "failed_stat": extra["failed_stat"], "paused": extra["paused"],
    }
    return board.render(request, "stats.html", tab="stats", sub="resque",
                        info=sorted(info.items()), ours=sorted(ours.items()))


def stats_redis(request: Request) -> Response:
    board = dashboard_of(request)
    info: dict[str, Any] = board.resque.redis.info()
    return board.render(request, "stats.html", tab="stats", sub="redis",
                        info=sorted(info.items()), ours=[])


def stats_keys(request: Request) -> Response:
    """Keys under the namespace, a page at a time with ``SCAN`` (resque-web runs ``KEYS *``,
    which blocks Redis on a big database). The cursor is the page's position."""
    board = dashboard_of(request)
    client = board.resque.redis
    try:
        cursor = max(0, int(request.query_params.get("cursor", "0")))
    except ValueError:
        cursor = 0
    found: list[bytes] = []
    pattern = layout.scan_pattern(board.keys)
    for _ in range(SCAN_CALLS):
        reply: Any = client.scan(cursor, match=pattern, count=SCAN_COUNT)
        cursor, batch = int(reply[0]), reply[1]
        found.extend(batch)
        if cursor == 0 or len(found) >= KEYS_PER_PAGE:
            break
    rows = _describe_keys(board, sorted(set(found)))
    return board.render(request, "keys.html", tab="stats", sub="keys", rows=rows,
                        next_cursor=cursor, prefix=board.keys.prefix)


def _describe_keys(board: Dashboard, found: list[bytes]) -> list[dict[str, Any]]:
    """Type, size and TTL of each key: two pipelines, whatever the number of keys."""
    client = board.resque.redis
    with client.pipeline(transaction=False) as pipe:
        for key in found:
            pipe.type(key)
        types = [layout.text(t) for t in pipe.execute()]
    size_of = {"string": "strlen", "list": "llen", "set": "scard", "zset": "zcard",
               "hash": "hlen", "stream": "xlen"}
    with client.pipeline(transaction=False) as pipe:
        for key, kind in zip(found, types, strict=True):
            command = size_of.get(kind)
            if command:
                getattr(pipe, command)(key)
            else:
                pipe.exists(key)
            pipe.ttl(key)
        replies = pipe.execute()
    prefix = len(board.keys.prefix.encode())
    return [
        {"name": layout.text(key[prefix:]), "type": kind,
         "size": replies[2 * i] if kind in size_of else None, "ttl": replies[2 * i + 1]}
        for i, (key, kind) in enumerate(zip(found, types, strict=True))
    ]


def stats_key(request: Request) -> Response:
    board = dashboard_of(request)
    client = board.resque.redis
    name = path_param(request, "key")
    key = (board.keys.prefix + name).encode("utf-8", "surrogateescape")
    (row,) = _describe_keys(board, [key])
    pager = Pager.from_request(request, VALUES_PER_PAGE, row["size"])
    first, last = pager.start, pager.end - 1
    values: list[Any]
    kind = row["type"]
    reply: Any
    if kind == "list":
        values = client.lrange(key, first, last)
    elif kind == "zset":
        reply = client.zrange(key, first, last, withscores=True)
        values = [f"{layout.text(member)}  (score {score:g})" for member, score in reply]
    elif kind == "set":
        reply = client.sscan(key, 0, count=1000)
        values = sorted(reply[1])[:VALUES_PER_PAGE]
        pager.total = min(row["size"], VALUES_PER_PAGE)
    elif kind == "hash":
        reply = client.hscan(key, 0, count=1000)
        values = [f"{layout.text(k)}: {layout.text(v)}"
                  for k, v in sorted(reply[1].items())[:VALUES_PER_PAGE]]
        pager.total = min(row["size"], VALUES_PER_PAGE)
    elif kind == "string":
        raw = client.getrange(key, 0, 64 * 1024)
        values = [raw]
        pager.total = 1
    else:
        values = []
    shown = [layout.raw_text(v) if isinstance(v, bytes) else str(v) for v in values]
    return board.render(request, "key.html", tab="stats", sub="keys", row=row, values=shown,
                        pager=pager)


def stats_txt(request: Request) -> Response:
    """resque-web's ``/stats.txt`` for monitoring scripts, in its exact format."""
    board = dashboard_of(request)
    info = board.summary(request)
    lines = [
        f"resque.pending={info['pending']}", f"resque.processed+={info['processed']}",
        f"resque.failed+={info['failed']}", f"resque.workers={info['workers']}",
        f"resque.working={info['working']}",
    ]
    lines += [f"queues.{name}={size}" for name, size in board.totals(request).queues.items()
              if size is not None]
    return PlainTextResponse("\n".join(lines))


# --- delayed and recurring jobs -------------------------------------------------------------


def delayed(request: Request) -> Response:
    board = dashboard_of(request)
    pager = Pager.from_request(request, board.config.page_size)
    total, rows = board.resque.delayed.page(pager.start, pager.per_page)
    pager.total = total
    return board.render(request, "delayed.html", tab="delayed", rows=rows, pager=pager,
                        total=total)


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
    try:
        from resque.scheduler.schedule import ScheduleError, Schedules, load_schedule_file
    except ImportError as exc:
        return board.render(request, "schedule.html", tab="schedule", rows=[], master=None,
                            missing=str(exc), file_error=None)
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
                        master=schedules.master(), missing=None, file_error=file_error)
