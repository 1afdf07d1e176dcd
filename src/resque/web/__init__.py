"""The web dashboard: everything Ruby's resque-web shows, plus charts, a live view, delayed
and recurring jobs; secure by default and mountable in any ASGI or WSGI application.

Needs ``pip install 'resque[web]'``. Workers never import this package.

* ``app``       — ``create_app`` (ASGI) and ``wsgi_app``; the routes.
* ``pages``     — the pages, read through ``resque.admin``; ``stats`` — the Stats tab;
  ``live`` — the polled JSON and the chart images; ``charts`` — SVG drawn on the server.
* ``actions``   — every state change, each a CSRF-checked POST.
* ``security``  — allowed hosts, authentication, CSRF, origin checks, security headers.
* ``server``    — ``resque web`` (uvicorn) and ``start_dashboard`` for the demo.
"""

from __future__ import annotations

from resque.web.app import create_app, wsgi_app
from resque.web.config import WebConfig

__all__ = ["WebConfig", "create_app", "wsgi_app"]
