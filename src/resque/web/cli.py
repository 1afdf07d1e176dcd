"""``resque web``: serve the dashboard (imported only when the verb runs)."""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING

import click

from resque.cli import namespace_option, redis_option
from resque.connection import check_credentials
from resque.facade import Resque
from resque.logs import setup_logging

if TYPE_CHECKING:
    from resque.web.config import WebConfig

log = logging.getLogger("resque.web")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _warn_exposed(host: str, config: WebConfig) -> None:
    if config.password is None:
        log.warning("listening on %s without a password: anyone who can reach it can retry, "
                    "remove and clear jobs; set RESQUE_WEB_PASSWORD or --read-only", host)
    if not config.any_host:
        log.warning("answering only to the host names %s; list the names it is reached by "
                    "in RESQUE_WEB_ALLOWED_HOSTS", ", ".join(config.allowed_hosts))


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Loopback by default: anything else exposes the "
              "dashboard to the network (set RESQUE_WEB_PASSWORD).")
@click.option("--port", "-p", default=5678, show_default=True, type=click.IntRange(0, 65535))
@click.option("--prefix", default="/", show_default=True,
              help="Serve under this path, e.g. /resque (behind a proxy that keeps the path).")
@click.option("--read-only", is_flag=True, default=None,
              help="No actions: no POST route and no buttons (RESQUE_WEB_READ_ONLY).")
@click.option("--poll", "poll_interval", type=float,
              help="Seconds between live refreshes (RESQUE_WEB_POLL, default 3).")
@click.option("--schedule", "schedule_file", type=click.Path(dir_okay=False),
              help="A resque-scheduler YAML file to show on the Schedule tab "
              "(RESQUE_WEB_SCHEDULE).")
@click.option("-v", "--verbose", count=True, help="-v info, -vv debug (with access log).")
@redis_option
@namespace_option
def web(
    host: str,
    port: int,
    prefix: str,
    read_only: bool | None,
    poll_interval: float | None,
    schedule_file: str | None,
    verbose: int,
    redis_url: str | None,
    namespace: str | None,
) -> None:
    """Serve the web dashboard (Ruby's resque-web), on http://127.0.0.1:5678/ by default.

    Authentication: set RESQUE_WEB_PASSWORD (user RESQUE_WEB_USER, default admin) for HTTP
    basic auth. Several processes behind one address need one RESQUE_WEB_SECRET. It answers
    to loopback names and --host; list other names in RESQUE_WEB_ALLOWED_HOSTS.
    """
    setup_logging(max(verbose, 1))
    try:
        from resque.web.app import create_app
        from resque.web.config import WebConfig
        from resque.web.server import answering_to, serve, with_prefix
    except ImportError as exc:
        raise click.ClickException(
            f"the dashboard needs its extra: pip install 'resque[web]' ({exc})") from exc
    try:
        config = WebConfig.from_env(read_only=read_only, poll_interval=poll_interval,
                                    schedule_file=schedule_file)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    config = answering_to(config, host)
    if not _is_loopback(host):
        _warn_exposed(host, config)
    resque = Resque(redis_url, namespace=namespace)
    check_credentials(resque.redis)  # a refused password is fatal now; an outage is waited out
    app = with_prefix(create_app(resque, config=config), prefix)
    shown = f"[{host}]" if ":" in host else host
    path = "/" + prefix.strip("/") + ("/" if prefix.strip("/") else "")
    click.echo(f"resque web: http://{shown}:{port}{path}"
               f"{' (read-only)' if config.read_only else ''}", err=True)
    import setproctitle

    # Our own title, so ps never shows the command line (and a password in --redis); Ruby's
    # pruning leaves "resque-web" processes alone.
    setproctitle.setproctitle(f"resque-web: {host}:{port}{path}")
    try:
        serve(app, host, port, "debug" if verbose > 1 else "warning")
    except KeyboardInterrupt:  # uvicorn stops cleanly, then re-raises Ctrl-C: nothing to say
        pass
