"""The Retries tab: jobs whose attempt failed and whose retry is pending, soonest first, with
the attempt they will be, when it is due and why the last one failed.

Costs: ``ZCARD`` + ``ZRANGE`` of ``retries:due`` for one page, then one ``MGET`` of the page's
attempt counts and failure records (``policies.retry_store.pending``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from resque.policies.retry_store import pending
from resque.web.dashboard import Dashboard, Pager


def retries(request: Request) -> Response:
    board: Dashboard = request.app.state.dashboard
    pager = Pager.from_request(request, board.config.page_size)
    total, rows = pending(board.resque.redis, board.keys, pager.start, pager.per_page)
    pager.total = total
    return board.render(request, "retries.html", tab="retries", rows=rows, pager=pager,
                        total=total)
