"""resque in a Flask app: ``Resque(app)``.

* A client configured from ``app.config["RESQUE_REDIS"]`` (any form ``--redis`` takes, the
  namespace included: ``redis://host:6379/0?namespace=myapp``; default as everywhere:
  ``RESQUE_REDIS``, ``REDIS_URL``, localhost): ``resque.enqueue(job, *args, **kwargs)`` in a
  view, which returns the job's handle (``resque.Job``).
* ``@resque.job(queue=...)``: a job (a ``resque.Task``) that runs inside the app's application
  context, so it may use the app's config and extensions (a database session, say) as a view
  does; its own ``enqueue``, ``enqueue_in`` ... go to the app's client too.
* ``flask resque work``, ``flask resque stats`` and every other ``resque`` verb on the app's
  Redis, with the app loaded (so its jobs are registered): an entry point of this package.
* The dashboard as part of the app, behind the app's own login:
  ``Resque(app, dashboard="/resque", auth=admin_only)``, where ``auth`` is a
  ``before_request`` function: it returns None to let the request through, or a response
  (a redirect to the login page, a 403) to send instead.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from flask import Blueprint, Flask, current_app, request
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

import resque as _resque
from resque.facade import Resque as Client
from resque.tasks import AsyncTask, P, R, Task

if TYPE_CHECKING:
    from resque.handles import Job
    from resque.policies.unique import Unique
    from resque.tasks import Delay, When

__all__ = ["Resque", "public"]

F = TypeVar("F", bound=Callable[..., Any])
Auth = Callable[[], "ResponseReturnValue | None"]
METHODS = ["GET", "HEAD", "POST"]


def public() -> None:
    """An ``auth`` that lets everyone in: say so explicitly, the dashboard can delete jobs."""
    return None


class Resque:
    """The extension. ``Resque(app)``, or ``ext = Resque()`` then ``ext.init_app(app)`` in an
    app factory."""

    def __init__(self, app: Flask | None = None, *, dashboard: str | None = None,
                 auth: Auth | None = None, **web_settings: Any) -> None:
        self.app: Flask | None = None
        if app is not None:
            self.init_app(app, dashboard=dashboard, auth=auth, **web_settings)

    def init_app(self, app: Flask, *, dashboard: str | None = None, auth: Auth | None = None,
                 **web_settings: Any) -> None:
        """Configure for ``app``; mount the dashboard at ``dashboard`` (or
        ``RESQUE_DASHBOARD``) behind ``auth``. ``web_settings`` go to the dashboard
        (``read_only=True``, ...)."""
        app.config.setdefault("RESQUE_REDIS", None)
        app.config.setdefault("RESQUE_DASHBOARD", None)
        self.app = app
        app.extensions["resque"] = self
        prefix = dashboard or app.config["RESQUE_DASHBOARD"]
        if prefix:
            app.register_blueprint(self.dashboard_blueprint(prefix, auth, **web_settings))

    # --- the client -----------------------------------------------------------------------

    @property
    def client(self) -> Client:
        """The app's ``resque.Resque`` client (one per app, made on first use)."""
        app = self._app()
        found: Client | None = app.extensions.get("resque.client")
        if found is None:
            found = app.extensions["resque.client"] = Client(app.config["RESQUE_REDIS"])
        return found

    def enqueue(self, job: Any, /, *args: Any, **kwargs: Any) -> Job[Any] | None:
        """``client.enqueue``: push ``job(*args, **kwargs)`` to its own queue; its handle,
        or None if a ``before_enqueue`` hook said no."""
        return self.client.enqueue(job, *args, **kwargs)

    def enqueue_to(self, queue: str, job: Any, /, *args: Any, **kwargs: Any) -> Job[Any] | None:
        """``client.enqueue_to``: push ``job(*args, **kwargs)`` to ``queue``."""
        return self.client.enqueue_to(queue, job, *args, **kwargs)

    def enqueue_call(self, job: Any, args: Sequence[Any], kwargs: Mapping[str, Any], *,
                     queue: str | None = None, status: bool | None = None,
                     result_ttl: int | None = None, at: When | None = None,
                     delay: Delay | None = None, unique: Unique | None = None,
                     policies: Mapping[str, Any] | None = None) -> Job[Any] | None:
        """What this extension's tasks enqueue through (``resque.tasks.Enqueuer``): the
        client of the app in context, or of the app it was set up with."""
        return self.client.enqueue_call(job, args, kwargs, queue=queue, status=status,
                                        result_ttl=result_ttl, at=at, delay=delay,
                                        unique=unique, policies=policies)

    def _app(self) -> Flask:
        if current_app:
            return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]
        if self.app is None:
            raise RuntimeError("resque.contrib.flask.Resque has no app: call init_app(app), "
                               "or use it inside an application context")
        return self.app

    # --- jobs -----------------------------------------------------------------------------

    @overload
    def job(  # type: ignore[overload-overlap]
        self, func: Callable[P, Coroutine[Any, Any, R]], /
    ) -> AsyncTask[P, R]: ...
    @overload
    def job(self, func: Callable[P, R], /) -> Task[P, R]: ...
    @overload
    def job(self, /, *, queue: str | None = None, name: str | None = None,
            status: bool | None = None, result_ttl: int | None = None) -> _JobDecorator: ...
    def job(self, func: Any = None, /, *, queue: str | None = None, name: str | None = None,
            status: bool | None = None, result_ttl: int | None = None) -> Any:
        """``@resque.job(queue="mail")``, performed inside the app's application context.

        The payload's class is the function's own dotted name (or ``name``), as with
        ``resque.job``; the worker must have the app (``flask resque work`` has). The task
        takes keyword arguments, ``status=True`` and ``async def`` as ``resque.job`` does, and
        its calls (``send_welcome.enqueue(...)``) use the app's client unless the call or the
        application names another (``resque.set_default_client``, the test plugin).
        """
        decorate = _JobDecorator(self, queue, name, status, result_ttl)
        return decorate(func) if func is not None else decorate

    # --- the dashboard --------------------------------------------------------------------

    def dashboard_blueprint(self, url_prefix: str, auth: Auth | None,
                            **web_settings: Any) -> Blueprint:
        """A blueprint serving the dashboard at ``url_prefix``, ``auth`` its
        ``before_request``. The app's own hooks, sessions and error pages apply to it. Hosts
        are the app's to check (``allowed_hosts`` defaults to any)."""
        if auth is None:
            raise ValueError("the dashboard can remove queues and jobs: mount it behind your "
                             "login with auth=<a before_request function>, or pass "
                             "auth=resque.contrib.flask.public to show it to everyone")
        from resque.web import wsgi_app  # the 'web' part of the extra, loaded only when mounted

        web_settings.setdefault("allowed_hosts", ("*",))
        board = functools.partial(_lazy_dashboard, self, web_settings, wsgi_app)
        blueprint = Blueprint("resque_dashboard", __name__, url_prefix=url_prefix.rstrip("/"))
        blueprint.before_request(auth)

        def dashboard(path: str) -> Response:
            environ = dict(request.environ)
            environ["SCRIPT_NAME"] = request.script_root + blueprint.url_prefix  # type: ignore[operator]
            environ["PATH_INFO"] = "/" + request.environ["PATH_INFO"][
                len(blueprint.url_prefix or ""):].lstrip("/")
            return Response.from_app(board(), environ, buffered=True)

        blueprint.add_url_rule("/", "dashboard", dashboard, defaults={"path": ""},
                               methods=METHODS)
        blueprint.add_url_rule("/<path:path>", "dashboard", dashboard, methods=METHODS)
        return blueprint


class _JobDecorator:
    """What ``Resque.job(...)`` with options returns: a decorator, typed as ``resque.job``'s."""

    def __init__(self, ext: Resque, queue: str | None, name: str | None, status: bool | None,
                 result_ttl: int | None) -> None:
        self.ext, self.queue, self.name = ext, queue, name
        self.status, self.result_ttl = status, result_ttl

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, target: Callable[P, Coroutine[Any, Any, R]], /
    ) -> AsyncTask[P, R]: ...
    @overload
    def __call__(self, target: Callable[P, R], /) -> Task[P, R]: ...
    def __call__(self, target: Callable[..., Any], /) -> Any:
        app_of = self.ext._app
        in_app_context: Callable[..., Any]
        if inspect.iscoroutinefunction(target):
            @functools.wraps(target)
            async def in_app_context(*args: Any, **kwargs: Any) -> Any:
                with app_of().app_context():
                    return await target(*args, **kwargs)
        else:
            @functools.wraps(target)
            def in_app_context(*args: Any, **kwargs: Any) -> Any:
                with app_of().app_context():
                    return target(*args, **kwargs)

        task = _resque.job(queue=self.queue, name=self.name, status=self.status,
                           result_ttl=self.result_ttl)(in_app_context)
        task.client = self.ext  # its calls go to the app's Redis (resque.tasks: which client)
        return task


def _lazy_dashboard(ext: Resque, settings: dict[str, Any], make: Callable[..., Any]) -> Any:
    """The app's dashboard, built on first use (with the app's client)."""
    app = ext._app()
    found = app.extensions.get("resque.dashboard")
    if found is None:
        found = app.extensions["resque.dashboard"] = make(ext.client, **settings)
    return found
