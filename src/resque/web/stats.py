"""The Stats tab: the farm's numbers explained, Redis's ``INFO`` by section, the keys.

Each number on ``/stats`` comes with a line saying what it counts and where it comes from;
the raw ``resque stats --json`` dump is one link away (``/stats/raw``). The keys tab walks the
namespace with a capped ``SCAN``, never ``KEYS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import redis
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from resque import layout
from resque.web.dashboard import Dashboard, Pager, path_param
from resque.web.pages import dashboard_of, download, raw_index

KEYS_PER_PAGE = 100
SCAN_CALLS = 20  # SCAN calls per keys page at most: a page may show fewer keys, never hang
SCAN_COUNT = 100  # keys per SCAN call: about one page of them, each described (3 commands)
VALUES_PER_PAGE = 20
STRING_SHOWN = 64 * 1024  # bytes of a string key read for its page (the rest: download)


@dataclass(frozen=True)
class Figure:
    """One number on the Stats page and the line that says what it means."""

    label: str
    value: str
    meaning: str
    warn: bool = False


def _n(value: int | None) -> str:
    return "\u2014" if value is None else f"{value:,}"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def resque_figures(info: dict[str, Any]) -> list[Figure]:
    """The farm's counts (``Admin.stats``), each with its meaning."""
    lists = _plural(info["failed_lists"], "list")
    return [
        Figure("Processed", _n(info["processed"]),
               "Jobs finished by any worker (Ruby's, Perl's or ours) since the counter "
               "(stat:processed) was last reset."),
        Figure("Failed", _n(info["failed_stat"]),
               "Jobs that raised or could not run, counted the same way (stat:failed); "
               "retrying or clearing failures does not lower it."),
        Figure("Failed now", _n(info["failed_all_lists"]),
               f"Failure records kept in {lists}, waiting to be retried or removed "
               f"({_n(info['failed'])} in the failed list, the figure Ruby's Resque.info "
               "calls failed).", warn=bool(info["failed_all_lists"])),
        Figure("Pending", _n(info["pending"]), "Jobs waiting in all queues for a worker."),
        Figure("Queues", _n(info["queues"]),
               "Queues registered in the queues set; a queue stays registered when it "
               "drains, as in Ruby, until someone removes it."),
        Figure("Workers", _n(info["workers"]),
               f"Worker processes registered, of every language; {_n(info['working'])} of "
               "them running a job now."),
        Figure("Paused", "yes" if info["paused"] else "no",
               "Whether pause-all-workers is set: Ruby workers and ours then take no new "
               "jobs (Perl's do not read it).", warn=bool(info["paused"])),
    ]


def info_sections(client: redis.Redis) -> list[tuple[str, list[tuple[str, str]]]]:
    """``INFO`` by section, in Redis's own order and words (redis-py's ``info()`` merges the
    sections into one dict). One round trip, on a client sharing the connection pool whose
    reply is left unparsed."""
    plain = redis.Redis(connection_pool=client.connection_pool)
    plain.response_callbacks.pop("INFO", None)
    text = layout.raw_text(cast(bytes, plain.info()))
    sections: list[tuple[str, list[tuple[str, str]]]] = []
    for line in text.splitlines():
        if line.startswith("#"):
            sections.append((line.lstrip("# ").strip(), []))
        elif ":" in line and sections:
            name, _, value = line.partition(":")
            sections[-1][1].append((name, value))
    return sections


def redis_figures(info: dict[str, str]) -> list[Figure]:
    """What the Redis server says about itself that matters to a job queue."""
    hits, misses = int(info.get("keyspace_hits", 0)), int(info.get("keyspace_misses", 0))
    limit = int(info.get("maxmemory", 0))
    policy = info.get("maxmemory_policy", "")
    return [
        Figure("Redis version", info.get("redis_version", "?"),
               f"The server's version ({info.get('redis_mode', 'standalone')} mode); workers "
               "of Ruby, Perl and Python share it."),
        Figure("Memory", f"{_bytes(int(info.get('used_memory', 0)))}"
               + (f" of {_bytes(limit)}" if limit else ""),
               "What Redis holds all data in, queued jobs and failures included; "
               + (f"at the limit the {policy} policy applies, and only noeviction never "
                  "drops a queued job." if limit else "no maxmemory limit is set."),
               warn=bool(limit) and policy != "noeviction"),
        Figure("Clients", _n(int(info.get("connected_clients", 0))),
               f"Open connections (workers, schedulers, dashboards, applications); "
               f"{_n(int(info.get('blocked_clients', 0)))} of them blocked, usually idle "
               "workers waiting for a job."),
        Figure("Uptime", _duration(int(info.get("uptime_in_seconds", 0))),
               "Since Redis last started: the hit rate below counts from then."),
        Figure("Hit rate", f"{hits / (hits + misses):.0%}" if hits + misses else "\u2014",
               f"Share of key reads that found their key ({_n(hits)} of {_n(hits + misses)})."
               " Idle workers polling empty queues miss, so a low rate is normal here."),
    ]


def _bytes(size: float) -> str:
    if size < 1024:
        return f"{int(size):,} bytes"
    for unit in ("KB", "MB", "GB"):
        size /= 1024
        if size < 1024:
            return f"{size:,.1f} {unit}"
    return f"{size / 1024:,.1f} TB"


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days} d {hours} h"
    minutes = rest // 60
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {rest % 60} s"


# --- pages ---------------------------------------------------------------------------------


def stats(request: Request) -> Response:
    board = dashboard_of(request)
    info = board.summary(request)
    sections = info_sections(board.resque.redis)
    flat = {name: value for _, fields in sections for name, value in fields}
    return board.render(request, "stats.html", tab="stats", sub="resque",
                        farm=resque_figures(info), server=redis_figures(flat))


def stats_raw(request: Request) -> Response:
    """Every field of ``Admin.stats`` as ``resque stats --json`` prints it."""
    board = dashboard_of(request)
    return board.render(request, "stats_raw.html", tab="stats", sub="raw",
                        fields=list(board.summary(request).items()))


def stats_redis(request: Request) -> Response:
    board = dashboard_of(request)
    return board.render(request, "stats_redis.html", tab="stats", sub="redis",
                        sections=info_sections(board.resque.redis))


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


SIZE_OF = {"string": "strlen", "list": "llen", "set": "scard", "zset": "zcard",
           "hash": "hlen", "stream": "xlen"}


def _describe_keys(board: Dashboard, found: list[bytes]) -> list[dict[str, Any]]:
    """Type, size and TTL of each key: two pipelines, whatever the number of keys."""
    client = board.resque.redis
    with client.pipeline(transaction=False) as pipe:
        for key in found:
            pipe.type(key)
        types = [layout.text(t) for t in pipe.execute()]
    with client.pipeline(transaction=False) as pipe:
        for key, kind in zip(found, types, strict=True):
            command = SIZE_OF.get(kind)
            if command:
                getattr(pipe, command)(key)
            else:
                pipe.exists(key)
            pipe.ttl(key)
        replies = pipe.execute()
    prefix = len(board.keys.prefix.encode())
    return [
        {"name": layout.text(key[prefix:]), "type": kind,
         "size": replies[2 * i] if kind in SIZE_OF else None, "ttl": replies[2 * i + 1]}
        for i, (key, kind) in enumerate(zip(found, types, strict=True))
    ]


def stats_key(request: Request) -> Response:
    """One key's values, a page of them; ``?raw=<index>`` downloads a list item, or the
    string, whole."""
    board = dashboard_of(request)
    name = path_param(request, "key")
    key = (board.keys.prefix + name).encode("utf-8", "surrogateescape")
    (row,) = _describe_keys(board, [key])
    if "raw" in request.query_params:
        return _key_download(board.resque.redis, key, row["type"], raw_index(request))
    pager = Pager.from_request(request, VALUES_PER_PAGE, row["size"])
    values = _values(board.resque.redis, key, row["type"], pager)
    return board.render(request, "key.html", tab="stats", sub="keys", row=row, values=values,
                        pager=pager)


def _key_download(client: redis.Redis, key: bytes, kind: str, index: int) -> Response:
    if kind == "list":
        return download(client.lindex(key, index), "item")
    return download(client.get(key) if kind == "string" else None, "value")


def _values(client: redis.Redis, key: bytes, kind: str, pager: Pager) -> list[dict[str, Any]]:
    """A page of values as ``{"text", "raw"}``: ``raw`` is the index to download the whole
    value by, where one exists (list items and strings), else None."""
    first, last = pager.start, pager.end - 1
    reply: Any
    if kind == "list":
        reply = client.lrange(key, first, last)
        return [_value(v, first + i) for i, v in enumerate(reply)]
    if kind == "zset":
        reply = client.zrange(key, first, last, withscores=True)
        return [_value(f"{layout.text(member)}  (score {score:g})") for member, score in reply]
    pager.total = 1 if kind == "string" else min(pager.total or 0, VALUES_PER_PAGE)
    if kind == "string":
        return [_value(client.getrange(key, 0, STRING_SHOWN - 1), 0)]
    if kind == "set":
        reply = client.sscan(key, 0, count=1000)
        return [_value(v) for v in sorted(reply[1])[:VALUES_PER_PAGE]]
    if kind == "hash":
        reply = client.hscan(key, 0, count=1000)
        return [_value(f"{layout.text(k)}: {layout.text(v)}")
                for k, v in sorted(reply[1].items())[:VALUES_PER_PAGE]]
    return []


def _value(value: Any, raw: int | None = None) -> dict[str, Any]:
    return {"text": layout.raw_text(value) if isinstance(value, bytes) else str(value),
            "raw": raw}


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
