"""resque in a FastAPI (or Starlette) app: the asyncio client as a dependency, closed with the
app, and the dashboard mounted behind the app's own check.

    resque = Resque()                                   # RESQUE_REDIS, REDIS_URL, localhost
    app = FastAPI(lifespan=resque.lifespan)
    resque.mount_dashboard(app, "/resque", auth=is_admin)

    @app.post("/reports")
    async def create(month: str, client: AsyncResque = Depends(resque)):
        job = await client.enqueue_call(monthly_report, [month], {}, status=True)

The dashboard is the same ASGI app as ``resque web`` (``resque.web.create_app``); its pages
read Redis with the sync client on Starlette's thread pool. Workers are ``resque work --app
<your jobs module>``, as for any app.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from resque.aio import AsyncResque

__all__ = ["Resque", "public"]

Auth = Callable[..., Any]


def public(request: Any) -> bool:
    """An ``auth`` that lets everyone in: say so explicitly, the dashboard can delete jobs."""
    return True


class Resque:
    """The app's Redis: ``Depends(resque)`` gives the ``AsyncResque`` client (made on first
    use, closed by ``lifespan``); ``redis`` and ``options`` are ``AsyncResque``'s."""

    def __init__(self, redis: Any = None, **options: Any) -> None:
        self.redis = redis
        self.options = options
        self._client: AsyncResque | None = None

    @property
    def client(self) -> AsyncResque:
        if self._client is None:
            self._client = AsyncResque(self.redis, **self.options)
        return self._client

    async def __call__(self) -> AsyncResque:
        """The dependency: ``client: AsyncResque = Depends(resque)``."""
        return self.client

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        """``FastAPI(lifespan=resque.lifespan)``: closes the client's connections at exit."""
        try:
            yield
        finally:
            if self._client is not None:
                await self._client.aclose()
                self._client = None

    def mount_dashboard(self, app: Any, path: str = "/resque", *, auth: Auth | None,
                        **web_settings: Any) -> None:
        """Serve the dashboard at ``path``, to whom ``auth(request)`` (sync or async) says
        yes. Hosts are the app's to check (``allowed_hosts`` defaults to any);
        ``web_settings``: the dashboard's (``read_only=True``, ...). Needs the ``web`` extra."""
        if auth is None:
            raise ValueError("the dashboard can remove queues and jobs: mount it behind your "
                             "check with auth=<callable(request) -> bool>, or pass "
                             "auth=resque.contrib.fastapi.public to show it to everyone")
        from resque.web import create_app

        web_settings.setdefault("allowed_hosts", ("*",))
        namespace = self.options.get("namespace")
        app.mount(path.rstrip("/"), create_app(self.redis, namespace=namespace, auth=auth,
                                               **web_settings))
