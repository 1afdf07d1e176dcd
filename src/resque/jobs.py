"""Jobs: how a payload's ``class`` becomes something to call, and how hooks wrap the call.

A job is any of:

* a class with ``perform(*args)`` (static, class or instance method) and a ``queue``
  attribute, the Ruby style;
* a plain function decorated with ``@resque.job(queue="mail")``, which makes it a typed
  ``Task`` (``resque/tasks.py``);
* either of them registered under an explicit name (``name="Mailer::Welcome"``) so that jobs
  enqueued by Ruby or Perl map to Python code.

Resolution never imports a module because Redis data named it: a dotted class path resolves
only under a module prefix the application allowed, through modules already imported or named
by the application itself. A payload naming ``os.system`` fails as ``JobForbidden``, one naming
a module nobody imported as ``JobNotFound``, without any import.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from resque.errors import JobForbidden, JobNotFound, NoQueueError
from resque.policies import timeout as timeouts
from resque.policies.retry import Retry
from resque.tasks import HOOK_KINDS, AsyncTask, P, R, Task, TaskBase

if TYPE_CHECKING:
    from resque.policies.limits import Limit
    from resque.policies.unique import Unique

__all__ = ["HOOK_KINDS", "Registry", "job", "registry"]

log = logging.getLogger("resque.jobs")

C = TypeVar("C", bound=type)


class Registry:
    """Names that payloads may use, mapped to Python callables."""

    def __init__(self) -> None:
        self._by_name: dict[str, Any] = {}

    def register(self, target: Any, name: str | None = None, queue: str | None = None, *,
                 status: bool | None = None, result_ttl: int | None = None,
                 unique: Unique | None = None, limit: Limit | None = None,
                 retry: Retry | None = None, timeout: float | None = None) -> Any:
        """Register a class or function (wrapping functions in ``Task``/``AsyncTask``)."""
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError(f"retry= takes a resque.Retry, not {retry!r}")
        seconds = timeouts.check(timeout)
        target = self._register(target, name, queue, status, result_ttl, unique, limit)
        # policies: on the task, or as a class's __resque_retry__ / __resque_timeout__
        dunder = inspect.isclass(target)
        if retry is not None:
            setattr(target, "__resque_retry__" if dunder else "retry", retry)
        if seconds is not None:
            setattr(target, "__resque_timeout__" if dunder else "timeout", seconds)
        return target

    def _register(self, target: Any, name: str | None, queue: str | None,
                  status: bool | None, result_ttl: int | None,
                  unique: Unique | None, limit: Limit | None) -> Any:
        if inspect.isclass(target):
            _mark_class(target, name, queue, status, result_ttl)
            _mark_policies(target, unique, limit)
            name = target.__resque_name__  # type: ignore[attr-defined]
        elif isinstance(target, TaskBase):
            if name:
                target.name, target.unreachable = name, None
            if queue is not None:
                target.queue = queue
            if status is not None:
                target.status = status
            if result_ttl is not None:
                target.result_ttl = result_ttl
            if unique is not None:
                target.unique = unique
            if limit is not None:
                target.limit = limit
            name = target.name
        elif callable(target):
            kind = AsyncTask if inspect.iscoroutinefunction(target) else Task
            target = kind(target, name or _dotted_name(target), queue, status=bool(status),
                          result_ttl=result_ttl, unique=unique, limit=limit)
            target.unreachable = None if name else unreachable(target.func)
            name = target.name
        else:
            raise TypeError(f"cannot register {target!r} as a job: not a class or function")
        self._by_name[name] = target
        return target

    def get(self, name: str) -> Any | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def resolve(self, name: str, allowed_modules: Iterable[str] = (),
                named: Iterable[str] = ()) -> Any:
        """The job for a payload's class name, or ``JobNotFound``/``JobForbidden``.

        Registered names win. A dotted path resolves only under one of ``allowed_modules``,
        and only through modules already imported, or modules the application named: an
        ``allowed_modules`` entry itself, or one of ``named`` (``preload``). Redis data never
        causes an import: ``myapp.sideeffect.Job`` with ``myapp`` allowed does not import
        ``myapp.sideeffect`` (its top-level code would run) unless the application did.
        Anything outside the prefixes (``os.system``, ``builtins.eval``) is refused first.
        """
        found = self._by_name.get(name)
        if found is not None:
            return found
        allowed = self._check_dotted(name, allowed_modules)
        importable = {_clean(p) for p in (*allowed_modules, *named)} - {""}
        target = _find_path(name, allowed, importable)
        # Importing a module the application named may have registered the job just now:
        # the registered object, as every later payload of this name will get.
        found = self._by_name.get(name)
        if found is not None:
            return found
        if target is None:
            raise JobNotFound(f"cannot find {name!r}: no such attribute in a module that is "
                              f"imported{self._suggestion(name)}; a payload never causes an "
                              "import: import the module with --app, or name it in "
                              "allowed_modules / RESQUE_JOB_MODULES")
        # Only a class or function defined under an allowed prefix: a name the allowed module
        # imported (its ``os``, a ``from subprocess import Popen``) is not the app's job.
        defined_in = getattr(inspect.unwrap(target), "__module__", None)
        if not (inspect.isclass(target) or inspect.isfunction(target)
                or isinstance(target, TaskBase)) or not (
                isinstance(defined_in, str) and any(_under(defined_in, p) for p in allowed)):
            raise JobForbidden(
                f"{name!r} is not a job class or function defined under an allowed prefix "
                f"(it comes from {defined_in!r}); it is never called"
            )
        return target

    def _check_dotted(self, name: str, allowed_modules: Iterable[str]) -> list[str]:
        """The allowed prefixes ``name`` lies under; refuses a name that is no dotted Python
        path, names a dunder, or lies outside every prefix, before anything is looked up."""
        if "." not in name or name.startswith(".") or ".." in name:
            raise JobNotFound(
                f"no job is registered as {name!r}{self._suggestion(name)}; register it with "
                f"@resque.job(name={name!r}) in the module the worker loads with --app"
            )
        parts = name.split(".")
        if not all(part.isidentifier() for part in parts):
            raise JobNotFound(f"job class {name!r} is not a dotted Python name")
        if any(part.startswith("__") for part in parts):
            raise JobForbidden(f"job class {name!r} names a dunder attribute: never resolved")
        allowed = [p for p in allowed_modules if _under(name, p)]
        if not allowed:
            raise JobForbidden(
                f"job class {name!r} is not registered{self._suggestion(name)} and its module "
                "is not under an allowed prefix, so it is not imported; register it with "
                "@resque.job or allow its module with allowed_modules= / RESQUE_JOB_MODULES"
            )
        return allowed

    def _suggestion(self, name: str) -> str:
        """`` (did you mean myapp.jobs.send_welcome?)`` for a near miss of a registered name
        (a typo, a module moved): the worker's failure record then says what to fix."""
        import difflib  # only when a name is not found: it imports heapq and more

        close = difflib.get_close_matches(name, self._by_name, n=1, cutoff=0.75)
        if not close:  # a moved module: the same function name under another package
            last = _last_part(name)
            close = [known for known in sorted(self._by_name) if _last_part(known) == last][:1]
        return f" (did you mean {close[0]}?)" if close else ""


def _last_part(name: str) -> str:
    return name.rpartition(".")[2].rpartition("::")[2]


def _mark_class(target: type, name: str | None, queue: str | None, status: bool | None,
                result_ttl: int | None) -> None:
    """Record a class's job settings on it: its name, queue, and whether it is tracked."""
    setattr(target, "__resque_name__", name or _dotted_name(target))  # noqa: B010
    if queue is not None:
        setattr(target, "queue", queue)  # noqa: B010
    if status is not None:
        setattr(target, "__resque_status__", status)  # noqa: B010
    if result_ttl is not None:
        setattr(target, "__resque_result_ttl__", result_ttl)  # noqa: B010


def _mark_policies(target: type, unique: Unique | None, limit: Limit | None) -> None:
    """Record a class's policies on it (``resque.policies``), as a task holds them."""
    if unique is not None:
        setattr(target, "__resque_unique__", unique)  # noqa: B010
    if limit is not None:
        setattr(target, "__resque_limit__", limit)  # noqa: B010


def _clean(prefix: str) -> str:
    return prefix.strip().rstrip(".")


def _under(path: str, prefix: str) -> bool:
    prefix = _clean(prefix)
    return bool(prefix) and (path == prefix or path.startswith(prefix + "."))


def _find_path(path: str, allowed: list[str], importable: set[str]) -> Any | None:
    """The longest module prefix of ``path`` that is imported (or that the application
    named, which is imported now), then the rest walked as attributes, never through a
    module that lies outside the allowed prefixes."""
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        if not any(_under(module_name, p) for p in allowed):
            return None  # the allowed prefix names an attribute path, not a module
        module = _module(module_name, importable)
        if module is None:
            continue  # not imported, and only the payload names it: never imported here
        obj: Any = module
        for attribute in parts[split:]:
            obj = getattr(obj, attribute, None)
            if obj is None:
                return None
            if inspect.ismodule(obj) and not any(_under(obj.__name__, p) for p in allowed):
                raise JobForbidden(f"{path!r} reaches module {obj.__name__!r}, which is not "
                                   "under an allowed prefix")
        return obj
    return None


def _module(name: str, importable: set[str]) -> Any | None:
    """An imported module, or one the application named, imported now; else None."""
    module = sys.modules.get(name)
    if module is not None or name not in importable:
        return module
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            return None  # the name is an attribute path, not a module
        raise


def _dotted_name(target: Any) -> str:
    return f"{target.__module__}.{target.__qualname__}"


registry = Registry()
"""The registry that ``@resque.job`` uses unless told otherwise."""


class _Decorator:
    """What ``@resque.job(...)`` with options returns: a decorator, typed per target kind."""

    def __init__(self, registry: Registry, name: str | None, queue: str | None,
                 status: bool | None, result_ttl: int | None,
                 unique: Unique | None = None, limit: Limit | None = None,
                 retry: Retry | None = None, timeout: float | None = None) -> None:
        self.registry, self.name, self.queue = registry, name, queue
        self.status, self.result_ttl = status, result_ttl
        self.unique, self.limit = unique, limit
        self.retry, self.timeout = retry, timeout

    @overload
    def __call__(self, target: C, /) -> C: ...  # type: ignore[overload-overlap]
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, target: Callable[P, Coroutine[Any, Any, R]], /
    ) -> AsyncTask[P, R]: ...
    @overload
    def __call__(self, target: Callable[P, R], /) -> Task[P, R]: ...
    def __call__(self, target: Any, /) -> Any:
        return self.registry.register(target, name=self.name, queue=self.queue,
                                      status=self.status, result_ttl=self.result_ttl,
                                      unique=self.unique, limit=self.limit,
                                      retry=self.retry, timeout=self.timeout)


@overload
def job(func: C, /) -> C: ...  # type: ignore[overload-overlap]
@overload
def job(  # type: ignore[overload-overlap]
    func: Callable[P, Coroutine[Any, Any, R]], /
) -> AsyncTask[P, R]: ...
@overload
def job(func: Callable[P, R], /) -> Task[P, R]: ...
@overload
def job(
    *, queue: str | None = None, name: str | None = None, status: bool | None = None,
    result_ttl: int | None = None, registry: Registry | None = None,
    unique: Unique | None = None, limit: Limit | None = None,
    retry: Retry | None = None, timeout: float | None = None,
) -> _Decorator: ...
def job(
    func: Any = None,
    /,
    *,
    queue: str | None = None,
    name: str | None = None,
    status: bool | None = None,
    result_ttl: int | None = None,
    registry: Registry | None = None,
    unique: Unique | None = None,
    limit: Limit | None = None,
    retry: Retry | None = None,
    timeout: float | None = None,
) -> Any:
    """Register a function or class as a job: ``@resque.job(queue="mail", name="Mail::Send")``.

    A function becomes a ``Task`` (an ``async def`` one an ``AsyncTask``): still callable
    directly, and typed for ``enqueue``. A class is returned unchanged, with ``queue`` set
    when given. ``status=True`` tracks every call's status, progress and result, kept
    ``result_ttl`` seconds after the job ends (default: the client's ``result_ttl``).
    ``unique=resque.Unique(...)``: a second enqueue of the same call while the first is
    pending queues nothing and returns the first one's handle; ``limit=resque.Limit(...)``:
    at most N running at once, M starts per period (``docs/guides/limits.md``).
    ``retry=Retry(...)``: a failed attempt comes back later (``resque.policies.retry``);
    ``timeout=30``: seconds it may run (``resque.policies.timeout``).
    """
    timeouts.check(timeout)  # refused now, not when the decorator is applied
    decorator = _Decorator(registry or globals()["registry"], name, queue, status, result_ttl,
                           unique, limit, retry, timeout)
    return decorator(func) if func is not None else decorator


def class_name(target: Any) -> str:
    """The ``class`` string written into a payload for a job target.

    Refuses, at once and with the fix, a target a worker could never import by that name:
    a lambda, a function or class defined inside a function, or one defined in ``__main__``
    (unless it was registered under an explicit name).
    """
    if isinstance(target, str):
        if not target:
            raise ValueError("a job class name cannot be empty")
        return target
    if isinstance(target, TaskBase):
        if target.unreachable:
            raise TypeError(target.unreachable)
        return target.name
    name = getattr(target, "__resque_name__", None)
    if isinstance(name, str):
        return name
    if inspect.isclass(target) or callable(target):
        problem = unreachable(target)
        if problem:
            raise TypeError(problem)
        return _dotted_name(target)
    raise TypeError(f"{target!r} is not a job: pass a class, a @resque.job function or a name")


def unreachable(target: Any) -> str | None:
    """Why a worker could not find ``target`` by its dotted name, with the fix; or None."""
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", "") or ""
    dotted = f"{module}.{qualname}"
    if "<lambda>" in qualname:
        why = "is a lambda, which has no name a worker can import"
    elif "<locals>" in qualname:
        why = "is defined inside a function, so a worker cannot import it"
    elif module == "__main__":
        why = ("is defined in __main__ (the script being run), which a worker does not "
               "import under that name")
    else:
        return None
    return (f"{dotted} {why}: define it at the top level of a module the worker imports "
            "(resque work --app myapp.jobs), or register it under an explicit name with "
            "@resque.job(name=...) in code the worker also loads")


def queue_of(target: Any, registry: Registry | None = None) -> str:
    """The queue a job declares (``queue`` attribute), as Ruby's ``queue_from_class``."""
    if isinstance(target, str) and registry is not None:
        target = registry.get(target) or target
    queue = getattr(target, "queue", None)
    if callable(queue) and not isinstance(queue, str):
        queue = queue()
    if not queue:
        raise NoQueueError(
            f"{target!r} has no queue: give it a queue attribute, register it with "
            "@resque.job(queue=...), or use enqueue_to(queue, ...)"
        )
    return str(queue)


def tracking(target: Any) -> tuple[bool, int | None]:
    """``(status, result_ttl)`` a job asked for with ``@resque.job(status=..., ...)``."""
    if isinstance(target, TaskBase):
        return target.status, target.result_ttl
    return (bool(getattr(target, "__resque_status__", False)),
            getattr(target, "__resque_result_ttl__", None))
