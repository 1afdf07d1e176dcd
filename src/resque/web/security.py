"""Who may look, and who may act: host checks, authentication, CSRF tokens, origin checks,
headers.

Every request passes ``Guard`` (pure ASGI, so it also guards static files and works under
any host), and every response ``SecurityHeaders``, the outermost layer. Pages are only ever
rendered with autoescaping, and the Content-Security-Policy below allows no inline script at
all, so a ``<script>`` that slipped into a job's args could not run even if escaping failed
somewhere.

Hosts: only the names in ``WebConfig.allowed_hosts`` (loopback by default) are answered,
however the app is started, against DNS rebinding.

CSRF: a signed double-submit token. The cookie (one name per dashboard address) holds
``<random>.<HMAC(secret, random)>`` (``SameSite=Strict``, ``HttpOnly``); every form carries
the same value, and a POST is accepted only if both match and the signature is ours (so a
cookie planted from a sibling domain is refused), and its ``Origin`` (else ``Referer``), when
sent, is this host or a trusted origin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import inspect
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resque.web.config import WebConfig

log = logging.getLogger("resque.web")

CSRF_COOKIE = "resque_web_csrf"
CSRF_FIELD = "csrf_token"

AuthHook = Callable[[Request], "bool | Awaitable[bool]"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cache-control", "no-store"),
)


def _sign(secret: str, nonce: str) -> str:
    mac = hmac.new(secret.encode(), nonce.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def new_token(secret: str) -> str:
    nonce = secrets.token_urlsafe(24)
    return f"{nonce}.{_sign(secret, nonce)}"


def token_is_ours(secret: str, token: str | None) -> bool:
    """Whether a token was signed with our secret (cookie values are attacker-settable)."""
    if not token or token.count(".") != 1:
        return False
    nonce, signature = token.split(".")
    return hmac.compare_digest(_sign(secret, nonce), signature)


def csrf_ok(secret: str, cookie: str | None, submitted: str | None) -> bool:
    """The double-submit check: the form's token is the cookie's, and the cookie is ours."""
    if not cookie or not submitted or not token_is_ours(secret, cookie):
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())


def _netloc(scheme: str, netloc: str) -> str:
    """``host[:port]`` lowercased, the scheme's default port left out."""
    netloc = netloc.lower()
    for default in ((":80",) if scheme == "http" else (":443",) if scheme == "https" else ()):
        if netloc.endswith(default):
            netloc = netloc[: -len(default)]
    return netloc


def origin_ok(request: Request, trusted: tuple[str, ...]) -> bool:
    """The POST comes from a page of ours, judged by ``Origin`` (else ``Referer``).

    Hosts are compared, not schemes, so a dashboard behind a TLS-terminating proxy still
    accepts its own pages. No header at all is accepted: the token is then the guard (some
    privacy tools strip both). ``Origin: null`` (sandboxed frames, data: URLs) is refused.
    """
    source = request.headers.get("origin")
    if source is None:
        referer = request.headers.get("referer")
        if not referer:
            return True
        parts = urlsplit(referer)
        source = f"{parts.scheme}://{parts.netloc}"
    if source.strip().lower() == "null":
        return False
    source = source.strip().rstrip("/")
    if source in trusted:
        return True
    parts = urlsplit(source)
    host = request.headers.get("host", "")
    scheme = request.url.scheme
    return bool(parts.netloc) and _netloc(parts.scheme, parts.netloc) == _netloc(scheme, host)


def host_name(header: str) -> str:
    """The host name of a ``Host`` header, without port or IPv6 brackets, lowercased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_refusal(config: WebConfig, request: Request) -> Response | None:
    """A 400 for a ``Host`` the dashboard does not answer to (see ``WebConfig``)."""
    if config.any_host or host_name(request.headers.get("host", "")) in config.allowed_hosts:
        return None
    log.warning("refused a request for host %r", request.headers.get("host"))
    return PlainTextResponse(
        "Bad request: this dashboard does not answer to that host name; list the names it "
        "is reached by in RESQUE_WEB_ALLOWED_HOSTS (or allowed_hosts=).", 400)


def csrf_cookie_name(request: Request) -> str:
    """The CSRF cookie's name for this dashboard: one per address and mount path.

    Browsers keep cookies per host name, not per port, and send a parent path's cookies to
    its sub-paths; with one name for all, two dashboards on one host would overwrite each
    other's token and break each other's forms.
    """
    host = _netloc(request.url.scheme, request.headers.get("host", ""))
    place = f"{host}{request.scope.get('root_path') or ''}".encode("utf-8", "surrogateescape")
    return f"{CSRF_COOKIE}_{hashlib.sha256(place).hexdigest()[:12]}"


def basic_auth_ok(header: str | None, username: str, password: str) -> bool:
    """Constant-time check of an ``Authorization: Basic`` header."""
    if not header or not header[:6].lower() == "basic ":
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, colon, given = decoded.partition(":")
    user_ok = hmac.compare_digest(user.encode(), username.encode())
    password_ok = hmac.compare_digest(given.encode(), password.encode())
    return bool(colon) and user_ok and password_ok


class Guard:
    """ASGI middleware: the host check, authentication, read-only, then the CSRF cookie.

    ``auth`` (the host application's hook) decides alone when given; otherwise HTTP basic
    auth applies when a password is configured; otherwise everyone may look. Read-only
    refuses every method but GET and HEAD (405), whatever the path.
    """

    def __init__(self, app: ASGIApp, config: WebConfig, auth: AuthHook | None = None) -> None:
        self.app = app
        self.config = config
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = (host_refusal(self.config, request) or await self._auth_refusal(request)
                   or self._read_only_refusal(request))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        name = csrf_cookie_name(request)
        token = request.cookies.get(name)
        fresh = None
        if not token_is_ours(self.config.secret, token):
            token = fresh = new_token(self.config.secret)
        scope.setdefault("state", {}).update(csrf_token=token, csrf_cookie=name)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and fresh is not None:
                MutableHeaders(scope=message).append("set-cookie",
                                                     self._cookie(scope, name, fresh))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    async def _auth_refusal(self, request: Request) -> Response | None:
        if self.auth is not None:
            verdict = self.auth(request)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict:
                return None
            log.info("refused %s %s: the auth hook said no", request.method, request.url.path)
            return PlainTextResponse("Forbidden: the application's auth hook refused.", 403)
        if self.config.password is None:
            return None
        header = request.headers.get("authorization")
        if basic_auth_ok(header, self.config.username, self.config.password):
            return None
        if header:
            log.info("refused %s %s: wrong credentials", request.method, request.url.path)
        return PlainTextResponse(
            "Authentication required.", 401,
            headers={"www-authenticate": 'Basic realm="resque", charset="UTF-8"'},
        )

    def _read_only_refusal(self, request: Request) -> Response | None:
        if not self.config.read_only or request.method in ("GET", "HEAD"):
            return None
        return PlainTextResponse("Method not allowed: this dashboard is read-only.", 405,
                                 headers={"allow": "GET, HEAD"})

    @staticmethod
    def _cookie(scope: Scope, name: str, token: str) -> str:
        path = scope.get("root_path") or "/"
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        return f"{name}={token}; Path={path}; HttpOnly; SameSite=Strict{secure}"


class AllowedHosts:
    """ASGI middleware: only the host check, for an app around the dashboard (``--prefix``)."""

    def __init__(self, app: ASGIApp, config: WebConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = host_refusal(self.config, Request(scope)) if scope["type"] == "http" else None
        await (refusal or self.app)(scope, receive, send)


class SecurityHeaders:
    """ASGI middleware adding ``SECURITY_HEADERS`` to every response it passes (those a
    response sets itself win); static files, whose URLs are versioned, may be cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = scope.get("root_path") or ""
        path = scope["path"][len(root):] if scope["path"].startswith(root) else scope["path"]
        static = path.startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if static:
                    headers.setdefault("cache-control", "private, max-age=86400")
                for name, value in SECURITY_HEADERS:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SecureStarlette(Starlette):
    """Starlette with ``SecurityHeaders`` outside everything, its error middleware included,
    so a 500 page carries the headers too; and no slash redirects, whose absolute
    ``Location`` would repeat whatever ``Host`` the request named."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.router.redirect_slashes = False

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())
