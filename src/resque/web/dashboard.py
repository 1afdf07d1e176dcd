"""What every page and action needs: the farm, the settings, the templates, a pager.

Handlers are plain functions of a request; they find the ``Dashboard`` on the app's state.
Pages are rendered by Jinja2 with autoescaping on for every template, and with
``StrictUndefined``, so a misspelt variable is an error in the tests rather than a blank.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

import jinja2
import redis
from starlette.requests import Request
from starlette.responses import HTMLResponse

from resque import __version__, layout
from resque.admin import Admin
from resque.admin.operations import Totals
from resque.connection import Outage, describe, is_transient
from resque.errors import RedisUnavailable, ResqueError
from resque.facade import Resque
from resque.metrics import RECENT, record_sample
from resque.web.config import WebConfig

log = logging.getLogger("resque.web")

HERE = Path(__file__).resolve().parent
STATIC_VERSION = __version__  # cache-busting query on static URLs
# What a page shows of one value, in characters: a job may carry megabytes (a 5 MB class name,
# 50 MB of args), and a page that repeats them would weigh as much. The whole value stays
# one click away as a download (``raw`` links).
NAME_LIMIT = 200  # a class, queue or worker name
TEXT_LIMIT = 2_000  # an error message or args in a listing
DETAIL_LIMIT = 20_000  # a value on a page of its own (one failure, one worker, one key)
BACKTRACE_LINES = 200
ITEM_FORM_LIMIT = 16 * 1024  # a delayed job a form may carry whole (forms take 64 KB at most)


def clip(value: Any, limit: int = TEXT_LIMIT) -> str:
    """``value`` as text cut to ``limit`` characters, saying how long it was."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\u2026 ({len(text):,} characters in all)"


def quote_segment(value: str) -> str:
    """A path segment for a name from Redis: everything but unreserved characters escaped
    (``/`` too), and bytes that are not UTF-8 kept as they were stored."""
    return quote(value.encode("utf-8", "surrogateescape"), safe="")


def path_param(request: Request, name: str) -> str:
    """A name from the URL path as it was written with ``quote_segment``: bytes that are not
    UTF-8 come back as the surrogates names read from Redis hold. (ASGI servers decode the
    path replacing them with U+FFFD, which would name another worker, queue or key.)"""
    value: str = request.path_params[name]
    raw = request.scope.get("raw_path")
    if "\ufffd" not in value or not raw:
        return value
    path = unquote(raw.decode("latin-1").split("?", 1)[0], errors="surrogateescape")
    # Every route puts its name last; decoding either way keeps the slashes where they are.
    return "/".join(path.split("/")[-(value.count("/") + 1):])


def url_builder(request: Request) -> Callable[..., str]:
    """``u('/queues', name, start=20)`` → ``<mount path>/queues/<name>?start=20``."""
    root = (request.scope.get("root_path") or "").rstrip("/")

    def u(path: str, *segments: Any, **query: Any) -> str:
        url = root + path + "".join("/" + quote_segment(str(s)) for s in segments)
        pairs = [(k.rstrip("_"), v) for k, v in query.items() if v is not None and v != ""]
        query_text = urlencode(pairs, encoding="utf-8", errors="surrogateescape")
        return url + ("?" + query_text if pairs else "") if url else "/"

    return u


def here(request: Request) -> str:
    """This page's path (as requested, so ``%2F`` in a name stays escaped) and query, for
    forms to come back to after an action."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(request.url.path)
    return path + (f"?{request.url.query}" if request.url.query else "")


@dataclass
class Pager:
    """Offsets for one page of a long listing, with a window of page links (never all of
    them: a queue of a million jobs has 50,000 pages)."""

    start: int
    per_page: int
    total: int | None
    more: bool = False

    @classmethod
    def from_request(cls, request: Request, per_page: int, total: int | None = None) -> Pager:
        try:
            start = max(0, int(request.query_params.get("start", "0")))
        except ValueError:
            start = 0
        if total is not None and start >= total > 0:
            start = (total - 1) // per_page * per_page
        return cls(start - start % per_page, per_page, total)

    @property
    def end(self) -> int:
        return self.start + self.per_page

    @property
    def has_next(self) -> bool:
        return self.more if self.total is None else self.end < self.total

    @property
    def pages(self) -> list[tuple[str, int | None]]:
        """``(label, start)`` links; ``None`` marks the current page or a gap."""
        current = self.start // self.per_page
        if self.total is None:
            last = current + (1 if self.more else 0)
        else:
            last = max(0, (self.total - 1) // self.per_page)
        wanted = sorted({0, last, *range(max(0, current - 2), min(last, current + 2) + 1)})
        links: list[tuple[str, int | None]] = []
        previous = -1
        for number in wanted:
            if number > previous + 1:
                links.append(("\u2026", None))
            links.append((f"{number + 1:,}", None if number == current else number * self.per_page))
            previous = number
        return links

    @property
    def shown(self) -> str:
        if self.total == 0:
            return "none"
        high = self.end if self.total is None else min(self.end, self.total)
        of = "" if self.total is None else f" of {self.total:,}"
        return f"{self.start + 1:,}\u2013{high:,}{of}"


def ago(moment: _dt.datetime | float | None, now: float | None = None) -> str:
    """"3 min ago" / "in 2 h": how people read recent times."""
    if moment is None:
        return ""
    seconds = moment.timestamp() if isinstance(moment, _dt.datetime) else float(moment)
    delta = (time.time() if now is None else now) - seconds
    future, delta = delta < 0, abs(delta)
    for limit, unit, size in ((60, "s", 1), (3600, "min", 60), (86400, "h", 3600),
                              (float("inf"), "d", 86400)):
        if delta < limit:
            amount = f"{int(delta // size)} {unit}"
            return f"in {amount}" if future else f"{amount} ago"
    return ""


def local_time(moment: _dt.datetime | float | None) -> str:
    """A time in the server's zone, e.g. ``2026-11-27 23:46:22 UTC``."""
    if moment is None:
        return ""
    if isinstance(moment, (int, float)):
        moment = _dt.datetime.fromtimestamp(moment, _dt.timezone.utc)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def parse_time(value: Any) -> _dt.datetime | None:
    return layout.parse_time(value)


def pretty_json(value: Any, indent: int | None = None, limit: int | None = None) -> str:
    """Args as JSON text (Ruby's page shows YAML; JSON is what is stored)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
        if indent is not None and 80 < len(text) <= (limit or len(text)):  # short: one line
            text = json.dumps(value, ensure_ascii=False, indent=indent)
    except (TypeError, ValueError):
        text = repr(value)
    return text if limit is None else clip(text, limit)


def number(value: Any) -> str:
    """A count with thousands separators; None (a key that could not be read) as a dash."""
    if value is None:
        return "\u2014"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ago=ago, local_time=local_time, parse_time=parse_time, json=pretty_json, num=number,
        segment=quote_segment, clip=clip, raw_text=layout.raw_text,
    )
    env.globals.update(version=__version__, static_version=STATIC_VERSION,
                       NAME_LIMIT=NAME_LIMIT, TEXT_LIMIT=TEXT_LIMIT, DETAIL_LIMIT=DETAIL_LIMIT,
                       BACKTRACE_LINES=BACKTRACE_LINES, ITEM_FORM_LIMIT=ITEM_FORM_LIMIT)
    return env


class Dashboard:
    """The farm (a ``Resque`` and its ``Admin``), the settings and the templates."""

    def __init__(self, resque: Resque, config: WebConfig) -> None:
        self.resque = resque
        self.admin = Admin(resque)
        self.failures = self.admin.failures
        self.config = config
        self.env = _environment()
        self.redis_name = describe(resque.redis)
        # One log line when Redis goes away and one when it is back, however many requests.
        self.outage = Outage(self.redis_name, log)
        self._sampled = float("-inf")
        self._lock = threading.Lock()

    @property
    def keys(self) -> layout.Keys:
        return self.resque.keys

    def sample(self) -> None:
        """Record a metrics sample if this process has not in the last bucket; never raises
        (a chart with a gap beats a page that fails). Read-only writes nothing, samples
        included: its charts show what the workers sample."""
        if self.config.read_only:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._sampled < RECENT.bucket:
                return
            self._sampled = now
        try:
            record_sample(self.resque.redis, self.keys)
        except (redis.RedisError, ResqueError) as exc:
            if isinstance(exc, RedisUnavailable) or is_transient(exc):
                self.outage.failed(exc)
            else:
                log.warning("could not record a metrics sample: %s", exc)
        else:
            self.outage.recovered()

    def totals(self, request: Request) -> Totals:
        """The farm's counts, read once per request (the header and the page share them),
        junk in Redis named rather than failing the page."""
        state = request.scope.setdefault("state", {})
        if "totals" not in state:
            state["totals"] = self.admin.totals()
        found: Totals = state["totals"]
        return found

    def summary(self, request: Request) -> dict[str, Any]:
        """The header's counts: Ruby's ``Resque.info`` plus every failure list and pause,
        and ``problems`` when keys hold junk."""
        return self.admin.stats(self.totals(request))

    def render(
        self, request: Request, template: str, status: int = 200, *, summary: bool = True,
        **context: Any,
    ) -> HTMLResponse:
        if summary:  # an error page reads nothing: Redis may be why it is shown
            self.sample()
        values = {
            "request": request,
            "u": url_builder(request),
            "here": here(request),
            "csrf_token": request.scope.get("state", {}).get("csrf_token", ""),
            "read_only": self.config.read_only,
            "poll_interval": self.config.poll_interval,
            "namespace": self.keys.namespace,
            "redis_name": self.redis_name,
            "summary": self.summary(request) if summary else None,
            "now": time.time(),
            "flash": flash_message(request),
            **context,
        }
        body = self.env.get_template(template).render(values)
        # Names read from Redis may hold bytes that are not UTF-8 (kept as surrogates).
        return HTMLResponse(body.encode("utf-8", "replace"), status_code=status)


FLASH = {
    "retried": "Retried {n} failed job(s).",
    "retried_removed": "Retried and removed {n} failed job(s).",
    "removed": "Removed {n} failed job(s).",
    "cleared": "Cleared {n} failed job(s).",
    "skipped": "{n} failed job(s) could not be retried (no class or queue) and were left.",
    "gone": "That failed job was already removed or retried by someone else; the list is "
            "shown as it is now.",
    "queue_removed": "Removed the queue and its {n} job(s).",
    "paused": "Workers are paused: Ruby workers and ours take no new jobs until resumed.",
    "resumed": "Workers resumed.",
    "queued_now": "Queued {n} delayed job(s) now.",
    "delayed_removed": "Removed {n} delayed job(s).",
    "schedule_queued": "Queued {n} job from the schedule.",
    "schedule_removed": "Removed the schedule.",
    "not_found": "Nothing to do: it was not there any more.",
}


def flash_message(request: Request) -> str | None:
    """The message of a redirect after an action (a known code, never text from the URL)."""
    code = request.query_params.get("done")
    if code not in FLASH:
        return None
    try:
        count = int(request.query_params.get("n", "0"))
    except ValueError:
        count = 0
    return FLASH[code].format(n=f"{count:,}")


def page_of(items: Iterable[Any], pager: Pager) -> list[Any]:
    return list(items)[pager.start : pager.end]
