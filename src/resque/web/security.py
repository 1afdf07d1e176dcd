"""Who may look, and who may act: authentication, CSRF tokens, origin checks, headers.

Every request passes ``Guard`` (pure ASGI, so it also guards static files and works under
any host). Pages are only ever rendered with autoescaping, and the Content-Security-Policy
below allows no inline script at all, so a ``<script>`` that slipped into a job's args could
not run even if escaping failed somewhere.

CSRF: a signed double-submit token. The cookie holds ``<random>.<HMAC(secret, random)>``
(``SameSite=Strict``, ``HttpOnly``); every form carries the same value, and a POST is accepted
only if both match and the signature is ours (so a cookie planted from a sibling domain is
refused), and its ``Origin`` (else ``Referer``), when sent, is this host or a trusted origin.
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
from urllib.parse import urlsplit

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


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


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
    """ASGI middleware: authentication first, then a CSRF cookie and security headers.

    ``auth`` (the host application's hook) decides alone when given; otherwise HTTP basic
    auth applies when a password is configured; otherwise everyone may look.
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
        refusal = await self._refusal(request)
        if refusal is not None:
            await self._with_headers(refusal, scope)(scope, receive, send)
            return
        token = request.cookies.get(CSRF_COOKIE)
        fresh = None
        if not token_is_ours(self.config.secret, token):
            token = fresh = new_token(self.config.secret)
        scope.setdefault("state", {})["csrf_token"] = token

        root = scope.get("root_path") or ""
        path = scope["path"][len(root):] if scope["path"].startswith(root) else scope["path"]
        static = path.startswith("/static/")  # versioned URLs (?v=): cacheable

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if static:
                    headers.setdefault("cache-control", "private, max-age=86400")
                for name, value in SECURITY_HEADERS:
                    if name not in headers:
                        headers[name] = value
                if fresh is not None:
                    headers.append("set-cookie", self._cookie(scope, fresh))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _refusal(self, request: Request) -> Response | None:
        allowed = self.config.allowed_hosts
        if allowed and "*" not in allowed:
            if host_name(request.headers.get("host", "")) not in allowed:
                log.warning("refused a request for host %r", request.headers.get("host"))
                return PlainTextResponse(
                    "Bad request: this dashboard does not answer to that host name "
                    "(RESQUE_WEB_ALLOWED_HOSTS).", 400)
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

    @staticmethod
    def _with_headers(response: Response, scope: Scope) -> Response:
        for name, value in SECURITY_HEADERS:
            response.headers.setdefault(name, value)
        return response

    @staticmethod
    def _cookie(scope: Scope, token: str) -> str:
        path = scope.get("root_path") or "/"
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        return f"{CSRF_COOKIE}={token}; Path={path}; HttpOnly; SameSite=Strict{secure}"
