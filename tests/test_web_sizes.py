"""Sizes are bounded: a job may carry megabytes (a 5 MB class name, args of many MB that do
not fit ``perform``). Its failure record keeps the input once, in its payload, never again in
the error message; every page shows a bounded part of each value, with the whole value a
download away.
"""

from __future__ import annotations

import json
import time

import pytest
import redis
from support.replies import bytes_list
from support.webkit import add_worker, client

import resque
from resque import Resque, Worker, layout
from resque.admin import Admin
from resque.failure.records import ERROR_LIMIT
from resque.performing import QUOTE_LIMIT, check_arguments

HUGE_CLASS = "Huge" + "X" * 5_000_000
HUGE_ARGS = ["y" * 8_000_000]
PAGE_LIMIT = 150_000  # bytes of HTML a page may weigh, whatever the data


@resque.job(name="SizesNoArgs")
def no_args() -> None:
    """Takes nothing, so any args fail to fit."""


@pytest.fixture
def failed_big(r: redis.Redis, resque: Resque, quiet_title: None) -> list[bytes]:
    """What a real worker records for a 5 MB class name and for 8 MB of args that do not fit,
    in the order of the list (the dashboard shows the newest first)."""
    r.rpush(resque.keys.queue("big"), layout.encode_job(HUGE_CLASS, [1]))
    r.rpush(resque.keys.queue("big"), layout.encode_job("SizesNoArgs", HUGE_ARGS))
    r.sadd(resque.keys.queues, "big")
    Worker(["big"], redis=r, fork=False, interval=0, prune_interval=3600,
           heartbeat_interval=3600).work()
    records = bytes_list(r.lrange(resque.keys.failed, 0, -1))
    assert len(records) == 2
    return records


def test_a_failure_record_quotes_the_input_once(failed_big: list[bytes]) -> None:
    huge_class, huge_args = (json.loads(raw) for raw in failed_big)
    assert huge_class["payload"]["class"] == HUGE_CLASS  # the job itself, whole, to retry
    assert huge_args["payload"]["args"] == HUGE_ARGS
    for record, raw, input_size in ((huge_class, failed_big[0], len(HUGE_CLASS)),
                                    (huge_args, failed_big[1], len(HUGE_ARGS[0]))):
        assert len(record["error"]) <= ERROR_LIMIT + 40
        assert len(raw) < input_size + 20_000  # was 3 times the class, twice the args
    assert huge_class["error"].startswith("no job is registered as 'HugeXXXX")
    assert huge_class["error"].endswith("... (10,000,115 bytes)")  # the record's own bound
    assert huge_args["error"].startswith("args ['yyyy")
    assert "... (8,000,004 bytes) do not fit SizesNoArgs.perform()" in huge_args["error"]


def test_the_arguments_message_quotes_a_few_kilobytes() -> None:
    with pytest.raises(TypeError) as refused:
        check_arguments(no_args.func, ["z" * 100_000], "SizesNoArgs")
    message = str(refused.value)
    assert len(message) < QUOTE_LIMIT + 200
    assert "... (100,004 bytes) do not fit SizesNoArgs.perform()" in message


def test_failure_pages_stay_small_and_the_record_downloads_whole(
    failed_big: list[bytes], resque: Resque
) -> None:
    web = client(resque)
    listing = web.get("/failed")
    assert listing.status_code == 200 and len(listing.content) < PAGE_LIMIT
    assert "characters in all)" in listing.text
    assert 'href="/failed?class=HugeXXX' not in listing.text  # no 5 MB filter link
    newest_first = failed_big[::-1]
    for entry, raw in zip(Admin(resque).failures.page(0, 2).entries, newest_first, strict=True):
        page = web.get(f"/failures/{entry.id}")
        assert page.status_code == 200 and len(page.content) < PAGE_LIMIT
        assert f'href="/failures/{entry.id}?raw=1" download' in page.text
        whole = web.get(f"/failures/{entry.id}?raw=1")
        assert whole.content == raw
        assert whole.headers["content-type"] == "application/octet-stream"
        assert whole.headers["content-disposition"].startswith("attachment;")
    keys = web.get("/stats/keys/failed")
    assert keys.status_code == 200 and len(keys.content) < PAGE_LIMIT
    assert web.get("/stats/keys/failed?raw=1").content == failed_big[1]


def test_queue_worker_and_live_views_stay_small(r: redis.Redis, resque: Resque) -> None:
    big = layout.encode_job(HUGE_CLASS, HUGE_ARGS).encode()
    r.rpush(resque.keys.queue("big"), big)
    r.sadd(resque.keys.queues, "big")
    add_worker(r, resque.keys, "vm:1:big", job=("big", HUGE_CLASS, HUGE_ARGS),
               heartbeat=time.time())
    web = client(resque)
    for path in ("/", "/queues/big", "/working", "/workers", "/workers/vm%3A1%3Abig",
                 "/stats/keys/queue%3Abig", "/live.json"):
        response = web.get(path)
        assert response.status_code == 200, path
        assert len(response.content) < PAGE_LIMIT, (path, len(response.content))
    queue = web.get("/queues/big").text
    assert 'href="/queues/big?raw=0" download' in queue
    assert web.get("/queues/big?raw=0").content == big
    assert web.get("/queues/big?raw=9").status_code == 404
    assert web.get("/queues/big?raw=x").status_code == 404


def test_a_huge_delayed_job_gets_no_per_item_buttons(resque: Resque) -> None:
    due = int(time.time()) + 600
    resque.delayed.enqueue_at_with_queue("later", due, "Big", "z" * 100_000)
    resque.delayed.enqueue_at_with_queue("later", due, "Small", 1)
    page = client(resque).get(f"/delayed/{due}").text
    assert len(page) < PAGE_LIMIT
    assert page.count(">Queue now</button>") == 1  # the small one's; Queue all now is apart
    assert "too large to act on alone" in page
