"""Jobs: how a payload's ``class`` becomes something to call, and how hooks wrap the call.

A job is any of:

* a class with ``perform(*args)`` (static, class or instance method) and a ``queue``
  attribute, the Ruby style;
* a plain function decorated with ``@resque.job(queue="mail")``;
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
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from resque.errors import DontPerform, JobForbidden, JobNotFound, NoQueueError

QUOTE_LIMIT = 2048  # characters of a job's input an error message quotes

log = logging.getLogger("resque.jobs")

HOOK_KINDS = (
    "before_enqueue",
    "after_enqueue",
    "before_dequeue",
    "after_dequeue",
    "before_perform",
    "around_perform",
    "after_perform",
    "on_failure",
    # resque-scheduler's, run when a delayed or recurring job is scheduled or queued
    "before_schedule",
    "after_schedule",
    "before_delayed_enqueue",
)

T = TypeVar("T")


class JobFunction:
    """A plain function registered as a job; call it directly or enqueue it."""

    def __init__(self, func: Callable[..., Any], name: str, queue: str | None) -> None:
        self.func = func
        self.name = name
        self.queue = queue
        self.hooks: dict[str, list[Callable[..., Any]]] = {}
        self.__doc__ = func.__doc__
        self.__wrapped__ = func

    def perform(self, *args: Any) -> Any:
        return self.func(*args)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def hook(self, kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator adding a hook, e.g. ``@send_mail.hook("on_failure")``."""
        if kind not in HOOK_KINDS:
            raise ValueError(f"unknown hook kind {kind!r}; expected one of {HOOK_KINDS}")

        def add(hook: Callable[..., Any]) -> Callable[..., Any]:
            self.hooks.setdefault(kind, []).append(hook)
            return hook

        return add

    def __repr__(self) -> str:
        return f"<job {self.name} queue={self.queue!r}>"


class Registry:
    """Names that payloads may use, mapped to Python callables."""

    def __init__(self) -> None:
        self._by_name: dict[str, Any] = {}

    def register(self, target: Any, name: str | None = None, queue: str | None = None) -> Any:
        """Register a class or function (wrapping functions in ``JobFunction``)."""
        if inspect.isclass(target):
            name = name or _dotted_name(target)
            setattr(target, "__resque_name__", name)  # noqa: B010 - classes of any shape
            if queue is not None:
                setattr(target, "queue", queue)  # noqa: B010
        elif isinstance(target, JobFunction):
            if name:
                target.name = name
            if queue is not None:
                target.queue = queue
            name = target.name
        elif callable(target):
            target = JobFunction(target, name or _dotted_name(target), queue)
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
        allowed = _check_dotted(name, allowed_modules)
        importable = {_clean(p) for p in (*allowed_modules, *named)} - {""}
        target = _find_path(name, allowed, importable)
        # Importing a module the application named may have registered the job just now:
        # the registered object, as every later payload of this name will get.
        found = self._by_name.get(name)
        if found is not None:
            return found
        if target is None:
            raise JobNotFound(f"cannot find {name!r}: no such attribute in a module that is "
                              "imported (a payload never causes an import: import the module "
                              "with --app, or name it in allowed_modules / RESQUE_JOB_MODULES)")
        # Only a class or function defined under an allowed prefix: a name the allowed module
        # imported (its ``os``, a ``from subprocess import Popen``) is not the app's job.
        defined_in = getattr(inspect.unwrap(target), "__module__", None)
        if not (inspect.isclass(target) or inspect.isfunction(target)
                or isinstance(target, JobFunction)) or not (
                isinstance(defined_in, str) and any(_under(defined_in, p) for p in allowed)):
            raise JobForbidden(
                f"{name!r} is not a job class or function defined under an allowed prefix "
                f"(it comes from {defined_in!r}); it is never called"
            )
        return target


def _clean(prefix: str) -> str:
    return prefix.strip().rstrip(".")


def _under(path: str, prefix: str) -> bool:
    prefix = _clean(prefix)
    return bool(prefix) and (path == prefix or path.startswith(prefix + "."))


def _check_dotted(name: str, allowed_modules: Iterable[str]) -> list[str]:
    """The allowed prefixes ``name`` lies under; refuses a name that is no dotted Python
    path, names a dunder, or lies outside every prefix, before anything is looked up."""
    if "." not in name or name.startswith(".") or ".." in name:
        raise JobNotFound(
            f"no job is registered as {name!r}; register it with "
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
            f"job class {name!r} is not registered and its module is not under an allowed "
            "prefix, so it is not imported; register it with @resque.job or allow its "
            "module with allowed_modules= / RESQUE_JOB_MODULES"
        )
    return allowed


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


@overload
def job(func: T, /) -> T: ...
@overload
def job(
    *, queue: str | None = None, name: str | None = None, registry: Registry | None = None
) -> Callable[[T], Any]: ...
def job(
    func: Any = None,
    /,
    *,
    queue: str | None = None,
    name: str | None = None,
    registry: Registry | None = None,
) -> Any:
    """Register a function or class as a job: ``@resque.job(queue="mail", name="Mail::Send")``.

    Functions become ``JobFunction`` objects (still callable directly). Classes are returned
    unchanged, with ``queue`` set when given.
    """
    target_registry = registry or globals()["registry"]

    def decorate(target: Any) -> Any:
        return target_registry.register(target, name=name, queue=queue)

    return decorate(func) if func is not None else decorate


def class_name(target: Any) -> str:
    """The ``class`` string written into a payload for a job target."""
    if isinstance(target, str):
        if not target:
            raise ValueError("a job class name cannot be empty")
        return target
    if isinstance(target, JobFunction):
        return target.name
    name = getattr(target, "__resque_name__", None)
    if isinstance(name, str):
        return name
    if inspect.isclass(target) or callable(target):
        return _dotted_name(target)
    raise TypeError(f"{target!r} is not a job: pass a class, a @resque.job function or a name")


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


def hooks(target: Any, kind: str) -> list[Callable[..., Any]]:
    """The hooks of a kind, in Ruby's order: methods named ``<kind>*`` sorted by name."""
    if isinstance(target, JobFunction):
        return list(target.hooks.get(kind, ()))
    if not inspect.isclass(target):
        return []
    names = _hook_names.get((target, kind))
    if names is None:  # dir() is slow; a class's hook methods are fixed once it is defined
        names = [name for name in sorted(dir(target)) if name.startswith(kind)]
        _hook_names[(target, kind)] = names
    return [getattr(target, name) for name in names]


_hook_names: dict[tuple[Any, str], list[str]] = {}


def perform_callable(target: Any) -> Callable[..., Any]:
    """What to call with the job's args: ``perform`` (instantiating for instance methods)."""
    if isinstance(target, JobFunction):
        return target.func
    if inspect.isclass(target):
        raw = inspect.getattr_static(target, "perform", None)
        if raw is None:
            raise JobNotFound(f"{class_name(target)} has no perform method")
        owner: Any = target if isinstance(raw, (staticmethod, classmethod)) else target()
        perform: Callable[..., Any] = owner.perform
        return perform
    if callable(target):
        return target  # type: ignore[no-any-return]
    raise JobNotFound(f"{target!r} is not callable")


_signatures: dict[Any, inspect.Signature | None] = {}


def _signature_of(func: Callable[..., Any]) -> inspect.Signature | None:
    key = getattr(func, "__func__", func)
    if key not in _signatures:
        try:
            _signatures[key] = inspect.signature(func)
        except (TypeError, ValueError):
            _signatures[key] = None
    return _signatures[key]


def check_arguments(func: Callable[..., Any], args: list[Any], name: str) -> None:
    """Raise a clear ``TypeError`` when the payload's args do not fit ``perform``."""
    signature = _signature_of(func)
    if signature is None:
        return
    try:
        signature.bind(*args)
    except TypeError as exc:
        from resque.failure.records import clipped

        # The message is stored in the failure record: quote the input, not megabytes of it.
        raise TypeError(f"args {clipped(repr(args), QUOTE_LIMIT)} do not fit "
                        f"{clipped(name, QUOTE_LIMIT)}.perform{signature}: {exc}") from None


def warm(target: Any) -> None:
    """Fill, in a forking worker's parent, the caches every child would otherwise refill:
    the hook names and the signature of ``perform`` (never instantiating the class)."""
    for kind in ("before_perform", "around_perform", "after_perform", "on_failure"):
        hooks(target, kind)
    if isinstance(target, JobFunction):
        _signature_of(target.func)
    elif inspect.isclass(target):
        if isinstance(inspect.getattr_static(target, "perform", None), (staticmethod, classmethod)):
            _signature_of(getattr(target, "perform"))  # noqa: B009 - any class


def run(target: Any, args: list[Any], name: str) -> bool:
    """Perform a job with its hooks in Ruby's order; return False if a hook skipped it.

    ``before_perform`` (``DontPerform`` skips quietly), ``around_perform`` (generator hooks
    that yield once; the first in name order is outermost), ``perform``, ``after_perform``
    (only when nothing raised), and ``on_failure(exc, *args)`` for any exception, which is
    then re-raised for the caller to record.
    """
    try:
        try:
            for hook in hooks(target, "before_perform"):
                hook(*args)
        except DontPerform:
            return False
        func = perform_callable(target)
        check_arguments(func, args, name)
        arounds = hooks(target, "around_perform")
        performed = _around(arounds, func, args) if arounds else _call(func, args)
        if performed:
            for hook in hooks(target, "after_perform"):
                hook(*args)
        return performed
    except BaseException as exc:
        run_failure_hooks(target, exc, args)
        raise


def _call(func: Callable[..., Any], args: list[Any]) -> bool:
    result = func(*args)
    if inspect.isawaitable(result):  # an ``async def`` job
        awaiter(result)
    return True


async def as_coroutine(awaitable: Any) -> Any:
    """Any awaitable as a coroutine, which is what event loops are handed."""
    return await awaitable


def _run_awaitable(awaitable: Any) -> Any:
    """Run an ``async def`` job to completion on an event loop of its own."""
    import asyncio  # only when a job is async: asyncio is heavy to import

    return asyncio.run(as_coroutine(awaitable))


awaiter: Callable[[Any], Any] = _run_awaitable
"""How ``async def`` jobs are run; a concurrent worker points it at its shared loop."""


def _around(arounds: list[Callable[..., Any]], func: Callable[..., Any], args: list[Any]) -> bool:
    """Nest generator hooks around the call; a hook that does not yield skips the job."""
    if not arounds:
        return _call(func, args)
    generator = arounds[0](*args)
    if not inspect.isgenerator(generator):
        raise TypeError(f"around_perform hook {arounds[0]!r} must be a generator that yields once")
    try:
        next(generator)
    except StopIteration:
        return False
    try:
        performed = _around(arounds[1:], func, args)
    except BaseException as exc:
        try:
            generator.throw(exc)
        except StopIteration:
            return False
        raise
    try:
        next(generator)
    except StopIteration:
        pass
    return performed


def run_failure_hooks(target: Any, exc: BaseException, args: list[Any]) -> None:
    """``on_failure*`` hooks; a failing hook is logged, never raised over the job's error."""
    for hook in hooks(target, "on_failure"):
        try:
            hook(exc, *args)
        except Exception:
            log.exception("on_failure hook %r failed", hook)
