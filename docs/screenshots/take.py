"""Take the README's screenshots of the dashboard, on realistic data.

    python docs/screenshots/take.py [--out docs/screenshots]

Starts a throwaway redis-server (resque.embedded), writes an hour of metrics samples with the
real ``record_sample`` (as workers and the dashboard would), queues, workers at work,
failures, delayed jobs and schedules, serves the dashboard in a thread, and photographs each
page with headless Chromium (Debian's, driven by Playwright). Needs the ``web`` and ``test``
extras and ``apt-get install chromium``.
"""

from __future__ import annotations

import argparse
import math
import random
import socket
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from resque import Resque, layout
from resque.embedded import EmbeddedRedis
from resque.metrics import record_sample
from resque.web.server import start_dashboard

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
QUEUES = {"critical": 3, "default": 240, "mailers": 57, "reports": 12, "images": 1310, "low": 0}
CLASSES = ["Billing::ChargeCard", "Mailer::Welcome", "ImageResize", "ReportBuilder",
           "app.jobs.sync_inventory"]


def fill(resque: Resque, rng: random.Random) -> None:
    r, keys = resque.redis, resque.keys
    now = time.time()
    processed = failed = 0
    lengths = {q: 0 for q in QUEUES}
    for step in range(0, 3600 + 1, 10):  # an hour of samples, as workers would have taken
        t = now - 3600 + step
        rate = 220 + 160 * math.sin(step / 600) + rng.uniform(-30, 30)
        processed += int(rate / 6)
        failed += rng.choice([0, 0, 0, 1, 2]) if step > 1500 else rng.choice([0, 0, 1])
        for i, queue in enumerate(QUEUES):
            swing = (math.sin(step / (300 + 130 * i)) + 1) / 2
            lengths[queue] = int(QUEUES[queue] * (0.3 + swing)) if QUEUES[queue] else 0
        with r.pipeline(transaction=False) as pipe:
            pipe.set(keys.stat("processed"), processed)
            pipe.set(keys.stat("failed"), failed)
            for queue, length in lengths.items():
                pipe.delete(keys.queue(queue))
                pipe.sadd(keys.queues, queue)
                if length:
                    pipe.rpush(keys.queue(queue), *(['{"class":"X","args":[]}'] * length))
            pipe.execute()
        record_sample(r, keys, now=t)
    for queue in QUEUES:
        r.delete(keys.queue(queue))
    for queue, size in QUEUES.items():
        name = {"images": "ImageResize", "mailers": "Mailer::Welcome",
                "reports": "ReportBuilder"}.get(queue, "Billing::ChargeCard")
        args = [[rng.randint(1000, 99999), {"size": rng.choice(["small", "large"])}]
                for _ in range(size)]
        if args:
            resque.enqueue_many(name, args, queue=queue)
        else:
            r.sadd(keys.queues, queue)
    hosts = ["web-1", "web-2", "batch-1"]
    workers = []
    for i in range(9):
        host = hosts[i % 3]
        queues = ["critical", "default", "mailers"] if host != "batch-1" else ["images", "reports"]
        worker = layout.worker_id(host, 4100 + i * 7, queues)
        workers.append(worker)
        started = now - rng.randint(3600, 86400)
        with r.pipeline(transaction=False) as pipe:
            pipe.sadd(keys.workers, worker)
            pipe.set(keys.worker_started(worker), layout.started_at(started))
            pipe.hset(keys.heartbeat, worker, layout.heartbeat_at(now - rng.randint(1, 50)))
            pipe.set(keys.worker_stat("processed", worker), rng.randint(2000, 40000))
            pipe.set(keys.worker_stat("failed", worker), rng.randint(0, 40))
            if i % 2 == 0:
                queue = queues[i % len(queues)]
                payload = layout.encode_job(CLASSES[i % len(CLASSES)], [rng.randint(1, 9999)])
                pipe.set(keys.worker(worker), layout.working_on(queue, payload, now - i * 13))
            pipe.execute()
    errors = [
        ("Stripe::CardError", "Your card was declined.", "Billing::ChargeCard", "critical"),
        ("Net::ReadTimeout", "Net::ReadTimeout with #<TCPSocket:(closed)>", "Mailer::Welcome",
         "mailers"),
        ("ValueError", "cannot resize to -40x600", "ImageResize", "images"),
        ("KeyError", "'warehouse_id'", "app.jobs.sync_inventory", "default"),
    ]
    for i in range(46):
        exception, error, name, queue = errors[i % len(errors)]
        record = layout.failure_record(
            payload={"class": name, "args": [rng.randint(1000, 99999)]}, exception=exception,
            error=error, backtrace=[f"app/jobs/{name.lower()}.rb:{20 + i}:in `perform'",
                                    "lib/resque/job.rb:165:in `perform'"],
            worker=workers[i % len(workers)], queue=queue, now=now - (46 - i) * 71)
        r.rpush(keys.failed, record)
    delayed = resque.delayed
    for i in range(14):
        delayed.enqueue_at_with_queue("mailers", now + 600 + i * 1800, "Mailer::Reminder",
                                      rng.randint(1, 5000), "weekly")
    try:
        schedules = resque.schedules
        schedules.set("nightly_report", {"cron": "0 2 * * *", "class": "ReportBuilder",
                                         "queue": "reports", "args": ["daily"],
                                         "description": "Sales report for yesterday"})
        schedules.set("sync_inventory", {"every": "5m", "class": "app.jobs.sync_inventory",
                                         "queue": "default", "args": [],
                                         "description": "Pull stock levels from the ERP"})
        r.set(keys.scheduler_master_lock(), f"{socket.gethostname()}:2231", ex=180)
    except ImportError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(Path(__file__).parent))
    out = Path(parser.parse_args().out)
    with EmbeddedRedis() as server:
        resque = Resque(server.url)
        fill(resque, random.Random(7))
        dashboard = start_dashboard(server.url)
        pages = {
            "overview": "",
            "queues": "queues?sort=size",
            "queue": "queues/images",
            "working": "working",
            "workers": "workers",
            "failed": "failed",
            "worker": "workers/" + "web-1%3A4100%3Acritical%2Cdefault%2Cmailers",
            "stats-keys": "stats/keys",
            "delayed": "delayed",
            "schedule": "schedule",
        }
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                for name, path in pages.items():
                    page.goto(dashboard.url + path)
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(out / f"{name}.png"),
                                    full_page=name not in ("failed", "queue", "stats-keys"))
                    print("wrote", out / f"{name}.png")
                browser.close()
        finally:
            dashboard.stop()


if __name__ == "__main__":
    main()
