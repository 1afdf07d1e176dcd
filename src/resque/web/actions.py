"""Every state change: a POST, through ``action``, which checks the CSRF token and the origin
before anything is read from the form, then redirects (303) back with a short message.

Failures are addressed by the admin library's ids (index plus content digest), so a retry or
remove acts on the entry the person saw, or on nothing if it has gone meanwhile; never on a
neighbour, as resque-web's index-only GET links can (resque #1172).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from resque.admin import FailureNotFound, Filter, NotAFailureList, NotRequeueable
from resque.errors import NoQueueError
from resque.web.dashboard import Dashboard
from resque.web.security import CSRF_FIELD, csrf_cookie_name, csrf_ok, origin_ok

log = logging.getLogger("resque.web")

MAX_FORM_BYTES = 64 * 1024
Form = dict[str, str]


@dataclass
class Done:
    """What an action did: a ``FLASH`` code, a count, and where to go: a path under the
    mount path (default: back to the form's page)."""

    code: str
    count: int = 0
    to: str | None = None


Handler = Callable[[Dashboard, Form], Done]


def action(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an action: refuse a foreign or tokenless POST, run it in a thread, redirect."""

    async def endpoint(request: Request) -> Response:
        board: Dashboard = request.app.state.dashboard
        refused = await _refusal(request, board)
        if isinstance(refused, Response):
            return refused
        form = refused
        try:
            done = await run_in_threadpool(handler, board, form)
        except (FailureNotFound, NotRequeueable):
            done = Done("gone")
        except (NotAFailureList, NoQueueError, ValueError) as exc:
            return PlainTextResponse(f"Bad request: {exc}", 400)
        return RedirectResponse(_back(request, form, done), 303)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


async def _refusal(request: Request, board: Dashboard) -> Response | Form:
    """The form, or the 403/413/415 response refusing the request."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return PlainTextResponse("Actions take a form (application/x-www-form-urlencoded).", 415)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return PlainTextResponse("Form too large.", 413)
    # Latin-1 keeps the bytes; parse_qsl then decodes %-escapes as UTF-8, keeping odd bytes.
    form = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True,
                          encoding="utf-8", errors="surrogateescape"))
    if not origin_ok(request, board.config.trusted_origins):
        log.warning("refused %s from origin %s", request.url.path,
                    request.headers.get("origin") or request.headers.get("referer"))
        return PlainTextResponse("Forbidden: cross-site request refused.", 403)
    cookie = request.cookies.get(csrf_cookie_name(request))
    if not csrf_ok(board.config.secret, cookie, form.get(CSRF_FIELD)):
        log.warning("refused %s: missing or wrong CSRF token", request.url.path)
        return PlainTextResponse(
            "Forbidden: the form's security token is missing or stale. Reload the page and "
            "try again.", 403)
    return form


def _back(request: Request, form: Form, done: Done) -> str:
    """Where to redirect: ``done.to`` or the form's ``next``, if it is a page of ours."""
    root = (request.scope.get("root_path") or "").rstrip("/")
    target = root + done.to if done.to else form.get("next") or ""
    parts = urlsplit(target)
    local = (not parts.scheme and not parts.netloc and target.startswith(root + "/")
             and not target.startswith("//") and "\\" not in target)
    if not local:
        parts = urlsplit(root + "/")
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("done", "n")]
    query += [("done", done.code), ("n", str(done.count))]
    return urlunsplit(("", "", parts.path, urlencode(query), ""))


def _required(form: Form, name: str) -> str:
    value = form.get(name)
    if not value:
        raise ValueError(f"the form has no {name!r}")
    return value


def _where(form: Form) -> Filter:
    return Filter(queue=form.get("queue") or None, class_name=form.get("class") or None,
                  list_name=form.get("list") or None)


# --- queues and pausing -------------------------------------------------------------------


@action
def remove_queue(board: Dashboard, form: Form) -> Done:
    """resque-web's "Remove Queue": forget the queue and delete its jobs."""
    removed = board.admin.remove_queue(_required(form, "queue"))
    return Done("queue_removed", removed, to="/queues")


@action
def pause(board: Dashboard, form: Form) -> Done:
    board.admin.pause()
    return Done("paused")


@action
def resume(board: Dashboard, form: Form) -> Done:
    board.admin.resume()
    return Done("resumed")


# --- failures -----------------------------------------------------------------------------


@action
def retry_failure(board: Dashboard, form: Form) -> Done:
    board.failures.requeue(_required(form, "id"))
    return Done("retried", 1)


@action
def retry_remove_failure(board: Dashboard, form: Form) -> Done:
    board.failures.requeue(_required(form, "id"), remove=True)
    return Done("retried_removed", 1)


@action
def remove_failure(board: Dashboard, form: Form) -> Done:
    board.failures.remove(_required(form, "id"))
    return Done("removed", 1)


@action
def retry_all(board: Dashboard, form: Form) -> Done:
    """Retry every entry shown (a list, a class, a queue, or all); already retried entries
    are left alone, unlike Ruby's "retry all" (resque #924)."""
    result = board.failures.requeue_where(_where(form), remove=form.get("remove") == "1")
    if result.skipped and not result.done:
        return Done("skipped", result.skipped)
    return Done("retried_removed" if form.get("remove") == "1" else "retried", result.done)


@action
def clear(board: Dashboard, form: Form) -> Done:
    """Clear a list (``DEL``), all of them, or only the entries matching a filter."""
    where = _where(form)
    if where.by_content:
        return Done("removed", board.failures.remove_where(where).done)
    return Done("cleared", board.failures.clear(where.list_name))


@action
def clear_retried(board: Dashboard, form: Form) -> Done:
    return Done("removed", board.failures.clear_retried().done)


# --- delayed and recurring jobs -------------------------------------------------------------


def _timestamp(form: Form) -> int:
    try:
        return int(_required(form, "timestamp"))
    except ValueError:
        raise ValueError("the timestamp must be whole Unix seconds") from None


@action
def delayed_queue_now(board: Dashboard, form: Form) -> Done:
    """Move every job of one timestamp to its queue now (the scheduler's atomic move)."""
    result = board.resque.delayed.queue_now(_timestamp(form))
    return Done("queued_now", result.moved + result.failed)


@action
def delayed_item_now(board: Dashboard, form: Form) -> Done:
    moved = board.resque.delayed.queue_item_now(_timestamp(form), _item(form))
    return Done("queued_now" if moved else "not_found", moved)


@action
def delayed_remove(board: Dashboard, form: Form) -> Done:
    removed = board.resque.delayed.remove_item_at(_timestamp(form), _item(form))
    return Done("delayed_removed" if removed else "not_found", removed)


def _item(form: Form) -> bytes:
    return _required(form, "item").encode("utf-8", "surrogateescape")


@action
def schedule_enqueue(board: Dashboard, form: Form) -> Done:
    """resque-scheduler's "Queue now": push the schedule's job to its queue at once."""
    from resque.scheduler.schedule import Schedules

    name = _required(form, "name")
    row = next((r for r in Schedules(board.resque).status(local=_local(board))
                if r.name == name), None)
    if row is None or row.error or not row.queue:
        return Done("not_found")
    board.admin.enqueue(row.queue, row.class_name, list(row.args))
    return Done("schedule_queued", 1)


def _local(board: Dashboard) -> dict[str, object]:
    if not board.config.schedule_file:
        return {}
    from resque.scheduler.schedule import load_schedule_file

    return dict(load_schedule_file(board.config.schedule_file))


@action
def schedule_remove(board: Dashboard, form: Form) -> Done:
    """Delete a schedule stored in Redis (a dynamic one); a file's schedules stay."""
    from resque.scheduler.schedule import Schedules

    removed = Schedules(board.resque).remove(_required(form, "name"))
    return Done("schedule_removed" if removed else "not_found", int(removed))
