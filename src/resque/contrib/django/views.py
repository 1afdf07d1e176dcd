"""The dashboard as a Django view, for staff: ``path("admin/resque/",
include("resque.contrib.django.urls"))``.

The view hands the request to the dashboard's WSGI app (``resque.web.wsgi_app``) at the
path it is mounted on, and returns its answer as Django's response, cookies included. The
dashboard checks its own CSRF token on every POST (Django's check would refuse its forms),
and leaves hosts to Django's ``ALLOWED_HOSTS``. ``dashboard_view(check, backend=...)`` makes
one with another check (a permission, a group).
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterable
from http.cookies import SimpleCookie
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt

from resque.contrib.django.backend import resque_backend

_boards: dict[str, Any] = {}
_boards_lock = threading.Lock()


def dashboard_view(check: Callable[[HttpRequest], bool] | None = None, *,
                   backend: str = "default", **web_settings: Any) -> Callable[..., HttpResponse]:
    """A view serving the dashboard of a task backend's Redis. ``check(request)``: who may
    see it (default: staff, through Django's admin login); ``web_settings``: the dashboard's
    (``read_only=True``, ...)."""

    def serve(request: HttpRequest, path: str = "") -> HttpResponse:
        if check is not None and not check(request):
            return HttpResponseForbidden("The Resque dashboard is not for you.")
        return forward(request, path, _board(backend, web_settings))

    view = serve if check is not None else staff_member_required(serve)
    exempt: Callable[..., HttpResponse] = csrf_exempt(view)
    return exempt


dashboard = dashboard_view()
"""The dashboard of the ``default`` backend, for staff (``resque.contrib.django.urls``)."""


def _board(alias: str, web_settings: dict[str, Any]) -> Any:
    found = _boards.get(alias)
    if found is None:
        with _boards_lock:
            found = _boards.get(alias)
            if found is None:
                from resque.web import wsgi_app  # the 'web' extra, loaded when first shown

                settings = {"allowed_hosts": ("*",), **web_settings}
                found = _boards[alias] = wsgi_app(resque_backend(alias).client, **settings)
    return found


def forward(request: HttpRequest, path: str, app: Any) -> HttpResponse:
    """Run a WSGI app on this request, mounted where ``path`` starts."""
    mount = request.path[: len(request.path) - len(path)] if path else request.path
    environ = _environ(request, mount.rstrip("/"), "/" + path)
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer["status"], answer["headers"] = status, headers
        return lambda data: None

    chunks: Iterable[bytes] = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    response = HttpResponse(body, status=int(answer["status"].split(" ", 1)[0]))
    for name, value in answer["headers"]:
        if name.lower() == "set-cookie":
            cookie: SimpleCookie = SimpleCookie()
            cookie.load(value)
            response.cookies.update(cookie)
        else:
            response[name] = value
    return response


def _wsgi_text(text: str) -> str:
    """A path as WSGI spells it: its UTF-8 bytes, one character each (PEP 3333)."""
    return text.encode("utf-8").decode("latin-1")


def _environ(request: HttpRequest, script_name: str, path_info: str) -> dict[str, Any]:
    body = request.body
    environ: dict[str, Any] = {key: value for key, value in request.META.items()
                               if isinstance(value, str) and not key.startswith("wsgi.")}
    host, _, port = request.get_host().partition(":")
    environ.update({
        "REQUEST_METHOD": request.method or "GET",
        "SCRIPT_NAME": _wsgi_text(script_name),
        "PATH_INFO": _wsgi_text(path_info),
        "QUERY_STRING": request.META.get("QUERY_STRING", ""),
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": environ.get("SERVER_NAME") or host,
        "SERVER_PORT": str(environ.get("SERVER_PORT") or port
                           or ("443" if request.is_secure() else "80")),
        "SERVER_PROTOCOL": environ.get("SERVER_PROTOCOL") or "HTTP/1.1",
        "wsgi.version": (1, 0), "wsgi.url_scheme": request.scheme or "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
    })
    return environ
