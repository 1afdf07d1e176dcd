"""Serving the dashboard: under a path prefix, in the foreground (``resque web``) or in a
background thread (``resque demo``), with uvicorn.

Why uvicorn: the reference ASGI server, pure Python with optional speed-ups, that can also
run inside a thread with its signal handling left to the host process.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route

from resque.errors import ResqueError
from resque.web.config import WebConfig
from resque.web.security import AllowedHosts, AuthHook, SecureStarlette, host_name

log = logging.getLogger("resque.web")


def with_prefix(app: Starlette, prefix: str) -> Starlette:
    """``app`` mounted at ``prefix`` (``/`` and ``prefix`` redirect to ``prefix/``), its
    lifespan kept running. The outer app checks hosts and sets the security headers as the
    dashboard does, and its redirects name a path, never the request's ``Host``."""
    prefix = "/" + prefix.strip("/")
    if prefix == "/":
        return app
    config: WebConfig = app.state.dashboard.config

    @contextlib.asynccontextmanager
    async def lifespan(outer: Starlette) -> AsyncIterator[None]:
        async with app.router.lifespan_context(app):
            yield

    def to_prefix(request: Request) -> RedirectResponse:
        return RedirectResponse(prefix + "/", 302)

    return SecureStarlette(routes=[Route("/", to_prefix), Route(prefix, to_prefix),
                                   Mount(prefix, app=app)],
                           middleware=[Middleware(AllowedHosts, config=config)],
                           lifespan=lifespan)


def answering_to(config: WebConfig, host: str) -> WebConfig:
    """The settings plus the address served on as an allowed ``Host`` (``--host 127.0.0.2``
    is reached by that name), unless they allow any host or it is a wildcard address."""
    name = host_name(host)
    if config.any_host or name in config.allowed_hosts or _is_wildcard(name):
        return config
    return replace(config, allowed_hosts=(*config.allowed_hosts, name))


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _uvicorn_config(app: Starlette, host: str, port: int, log_level: str) -> Any:
    import uvicorn

    # proxy_headers stays on (uvicorn's default) for a TLS proxy on the same host only.
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on",
                          access_log=log_level == "debug", server_header=False)


def serve(app: Starlette, host: str, port: int, log_level: str = "info") -> None:
    """Run in the foreground until interrupted (SIGINT/SIGTERM)."""
    import uvicorn

    uvicorn.Server(_uvicorn_config(app, host, port, log_level)).run()


@dataclass
class RunningDashboard:
    """A dashboard served from a background thread; ``stop()`` ends it."""

    url: str
    server: Any
    thread: threading.Thread

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def start_dashboard(
    redis_url: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    prefix: str = "/",
    namespace: str | None = None,
    auth: AuthHook | None = None,
    timeout: float = 10.0,
    **settings: Any,
) -> RunningDashboard:
    """Serve the dashboard from a daemon thread of this process and return its address once
    it answers; ``port=0`` picks a free one. Settings are ``create_app``'s; it answers to
    loopback names and ``host`` unless ``allowed_hosts`` says otherwise.

    Raises ``ImportError`` without the ``web`` extra, ``ResqueError`` if it did not start.
    """
    import uvicorn

    from resque.web.app import create_app

    config = answering_to(WebConfig.from_env(**settings), host)
    app = with_prefix(create_app(redis_url, namespace=namespace, auth=auth, config=config),
                      prefix)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    server = uvicorn.Server(_uvicorn_config(app, host, bound, "warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="resque-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ResqueError(f"the dashboard did not start on {host}:{bound}")
        time.sleep(0.02)
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{bound}{'/' + prefix.strip('/') if prefix.strip('/') else ''}/"
    log.info("dashboard at %s", url)
    return RunningDashboard(url, server, thread)
