"""``resque metrics``: the farm's Prometheus metrics, printed once or served on a port."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any

import click
from prometheus_client import CollectorRegistry, start_http_server

from resque.cli import namespace_option, redis_option
from resque.client import Client
from resque.connection import check_credentials
from resque.errors import ResqueError
from resque.logs import setup_logging
from resque.prometheus.collector import FarmCollector, render

log = logging.getLogger("resque.prometheus")


@click.command()
@click.option("--port", type=click.IntRange(0, 65535),
              help="Serve /metrics on this port until TERM or INT (0: any free port, printed). "
              "Without it, print one scrape and exit.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 for a Prometheus on another host.")
@click.option("--no-marks", is_flag=True,
              help="Write nothing to Redis: queue ages come from marks other scrapers leave.")
@click.option("-v", "--verbose", count=True, help="-v info, -vv debug.")
@redis_option
@namespace_option
def metrics(port: int | None, host: str, no_marks: bool, verbose: int,
            redis_url: str | None, namespace: str | None) -> None:
    """The farm's Prometheus metrics (as the dashboard's /metrics)."""
    setup_logging(verbose)
    resque = Client(redis_url, namespace=namespace)
    if port is None:
        try:
            sys.stdout.write(render(resque, mark_queues=not no_marks)[0].decode("utf-8"))
        except ResqueError as exc:
            raise click.ClickException(str(exc)) from exc
        return
    check_credentials(resque.redis)  # a refused password is fatal now; an outage is scraped
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FarmCollector(resque, mark_queues=not no_marks))
    server, thread = start_http_server(port, host, registry)
    click.echo(f"serving metrics on http://{host}:{server.server_port}/metrics", err=True)
    _until_stopped()
    server.shutdown()
    thread.join(timeout=5)


def _until_stopped() -> None:
    """Block until TERM or INT; then return, so the command exits 0."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    while not stop.wait(1.0):
        pass
