"""What the live view polls: counts as JSON (the page's script writes them with
``textContent``), and the charts as SVG images. Each poll also takes the metrics sample when
one is due, so an open dashboard keeps the charts fed."""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from resque import layout
from resque.metrics import read_samples, tier_for
from resque.web import charts
from resque.web.dashboard import NAME_LIMIT, clip, quote_segment
from resque.web.pages import _window, dashboard_of

MAX_QUEUES = 200  # queue sizes one poll may ask for (a page shows at most 50)
MAX_WORKING = 50


class AsciiJSON(Response):
    """JSON with non-ASCII escaped, so names holding odd bytes (surrogates) still encode,
    and with ``<``, ``>``, ``&`` escaped too: even a browser that sniffed it as HTML would
    find no tag in it."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=True, separators=(",", ":"))
        for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
            text = text.replace(char, escape)
        return text.encode("ascii")


def live(request: Request) -> Response:
    """Counts for the header and the page: one ``Admin.stats`` (``Resque.info`` and the
    failure lists), plus the sizes of the queues the page shows and the working workers."""
    board = dashboard_of(request)
    board.sample()
    stats = board.summary(request)
    names = request.query_params.getlist("q")[:MAX_QUEUES]
    with board.resque.redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(board.keys.queue(name))
        sizes = pipe.execute(raise_on_error=False) if names else []
    try:
        records = board.resque.working()  # one MGET: lighter than Admin.workers
    except redis.ResponseError:  # ``workers`` of another type: the pages name it
        records = {}
    working = [_working(worker_id, record) for worker_id, record in sorted(
        records.items(), key=lambda item: str(item[1].get("run_at") or ""))]
    return AsciiJSON({
        "time": time.strftime("%H:%M:%S"),
        "counts": {key: stats[key] for key in ("pending", "processed", "workers", "working",
                                               "failed_all_lists", "queues")},
        "paused": stats["paused"],
        "queues": {name: size for name, size in zip(names, sizes, strict=True)
                   if isinstance(size, int)},  # a key of another type: left as shown
        "working": working[:MAX_WORKING],
        "working_total": len(working),
    })


def _working(worker_id: str, record: dict[str, Any]) -> dict[str, str]:
    """One row of the working table; paths already escaped, as a name that is not UTF-8
    would make the script's ``encodeURIComponent`` throw."""
    host, pid, _ = layout.parse_worker_id(worker_id)
    payload = record.get("payload") if isinstance(record.get("payload"), dict) else {}
    queue = str(record.get("queue") or "")
    return {
        "id": worker_id, "path": quote_segment(worker_id),
        "where": clip(f"{host}:{pid}", NAME_LIMIT),
        "queue": clip(queue, NAME_LIMIT), "queue_path": quote_segment(queue),
        "class": clip(str((payload or {}).get("class") or ""), NAME_LIMIT),
        "run_at": str(record.get("run_at") or ""),
    }


def chart(request: Request) -> Response:
    """``/charts/throughput.svg`` and ``/charts/depth.svg``, over ``?window=15m|1h|6h|24h``."""
    board = dashboard_of(request)
    kind = request.path_params["kind"]
    if kind not in ("throughput", "depth"):
        raise HTTPException(404)
    board.sample()
    window = charts.WINDOWS[_window(request)]
    end = time.time()
    tier = tier_for(window)
    samples = read_samples(board.resque.redis, board.keys, end - window - tier.bucket, tier)
    max_gap = max(3 * tier.bucket, 150)  # workers sample once a minute when nobody watches
    if kind == "throughput":
        series = charts.throughput(samples, max_gap)
        title = "Jobs processed and failed per minute"
    else:
        series = charts.depth(samples, max_gap)
        title = "Jobs waiting in queues"
    svg = charts.render(
        title, series, end - window, end,
        empty="No samples yet: they are taken while workers run and this page is open",
    )
    return Response(svg, media_type="image/svg+xml")
