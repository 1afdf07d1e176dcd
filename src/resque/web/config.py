"""The dashboard's settings, read from the environment in one place (Starlette's ``Config``
idea): every option of ``resque web`` and of ``create_app`` is a field here."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
ANY_HOST = "*"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in TRUE_WORDS


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip().lower() for name in text.split(",") if name.strip())


@dataclass(frozen=True)
class WebConfig:
    """How the dashboard behaves.

    ``password`` turns on HTTP basic auth (user ``username``). ``secret`` signs the CSRF
    cookie: give every process of one deployment the same secret (``RESQUE_WEB_SECRET``), or
    tokens issued by one process are refused by another; by default each process makes its own.
    ``trusted_origins`` are extra ``scheme://host[:port]`` origins whose POSTs are accepted
    besides the dashboard's own (behind a proxy that rewrites ``Host``).

    ``allowed_hosts`` are the only host names the ``Host`` header may carry; by default (or
    when empty) the loopback names, however the app is started, so a web page whose domain
    the attacker points at 127.0.0.1 (DNS rebinding) can neither read nor drive the dashboard.
    Served under a name, list it (``RESQUE_WEB_ALLOWED_HOSTS=resque.example.com``); mounted
    in an application that checks hosts itself (Django's ``ALLOWED_HOSTS``, Starlette's
    ``TrustedHostMiddleware``), ``("*",)`` leaves the decision to it.
    """

    read_only: bool = False
    username: str = "admin"
    password: str | None = None
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    poll_interval: float = 3.0
    trusted_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = LOOPBACK_NAMES  # ("*",): any (the host app decides)
    page_size: int = 20
    schedule_file: str | None = None  # a YAML schedule to show next to those stored in Redis

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> WebConfig:
        """Settings from ``RESQUE_WEB_*`` variables; keyword arguments that are not None win.

        ``RESQUE_WEB_PASSWORD``, ``RESQUE_WEB_USER`` (default ``admin``),
        ``RESQUE_WEB_SECRET``, ``RESQUE_WEB_READ_ONLY``, ``RESQUE_WEB_POLL`` (seconds),
        ``RESQUE_WEB_TRUSTED_ORIGINS`` and ``RESQUE_WEB_ALLOWED_HOSTS`` (comma-separated),
        ``RESQUE_WEB_SCHEDULE`` (a file).
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "read_only": _flag(env.get("RESQUE_WEB_READ_ONLY")),
            "username": env.get("RESQUE_WEB_USER") or "admin",
            "password": env.get("RESQUE_WEB_PASSWORD") or None,
            "trusted_origins": tuple(
                origin.strip().rstrip("/")
                for origin in env.get("RESQUE_WEB_TRUSTED_ORIGINS", "").split(",")
                if origin.strip()
            ),
            "allowed_hosts": _names(env.get("RESQUE_WEB_ALLOWED_HOSTS", "")) or None,
            "schedule_file": env.get("RESQUE_WEB_SCHEDULE") or None,
        }
        if env.get("RESQUE_WEB_SECRET"):
            values["secret"] = env["RESQUE_WEB_SECRET"]
        if env.get("RESQUE_WEB_POLL"):
            try:
                values["poll_interval"] = float(env["RESQUE_WEB_POLL"])
            except ValueError:
                raise ValueError(
                    f"RESQUE_WEB_POLL must be a number of seconds, not {env['RESQUE_WEB_POLL']!r}"
                ) from None
        values.update({name: value for name, value in overrides.items() if value is not None})
        config = cls(**{name: value for name, value in values.items() if value is not None})
        if config.poll_interval < 0.2:
            config = replace(config, poll_interval=0.2)  # keep a dashboard from hammering Redis
        return config

    def __post_init__(self) -> None:
        given: Any = self.allowed_hosts
        names = _names(given if isinstance(given, str) else ",".join(given))
        object.__setattr__(self, "allowed_hosts", names or LOOPBACK_NAMES)

    @property
    def any_host(self) -> bool:
        """Whether every ``Host`` is answered (the embedding application checks them)."""
        return ANY_HOST in self.allowed_hosts
