"""Performing a job: its hooks in Ruby's order around ``perform``, the check that the
payload's arguments fit it, and how ``async def`` jobs are awaited.

Every execution mode calls ``run`` (through ``resque.current``) once per job: it is the hot
path, so the lookups it repeats (hook names, signatures, arities) are cached per class or
function, and ``warm`` fills those caches in a forking worker's parent.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from resque.errors import DontPerform, JobNotFound
from resque.layout import split_kwargs
from resque.tasks import TaskBase

__all__ = ["SKIPPED", "check_arguments", "hooks", "run", "run_failure_hooks", "warm"]

QUOTE_LIMIT = 2048  # characters of a job's input an error message quotes

log = logging.getLogger("resque.jobs")


class _Skipped:
    def __repr__(self) -> str:
        return "SKIPPED"


SKIPPED: Any = _Skipped()
"""What ``run`` returns when a ``before_perform`` or ``around_perform`` hook skipped the job."""


def signature_target(target: Any) -> Callable[..., Any] | None:
    """The callable whose parameters name a job's arguments (for error messages)."""
    if isinstance(target, TaskBase):
        return target.func
    if inspect.isclass(target):
        raw = inspect.getattr_static(target, "perform", None)
        if isinstance(raw, (staticmethod, classmethod)):
            perform: Callable[..., Any] = getattr(target, "perform")  # noqa: B009
            return perform
    return None


def hooks(target: Any, kind: str) -> Sequence[Callable[..., Any]]:
    """The hooks of a kind, in Ruby's order: methods named ``<kind>*`` sorted by name.
    A task's own list is returned, not a copy (four lookups per job): iterate, never change."""
    if isinstance(target, TaskBase):
        return target.hooks.get(kind, ())
    if not inspect.isclass(target):
        return ()
    names = _hook_names.get((target, kind))
    if names is None:  # dir() is slow; a class's hook methods are fixed once it is defined
        names = [name for name in sorted(dir(target)) if name.startswith(kind)]
        _hook_names[(target, kind)] = names
    return [getattr(target, name) for name in names]


_hook_names: dict[tuple[Any, str], list[str]] = {}


def perform_callable(target: Any) -> Callable[..., Any]:
    """What to call with the job's args: ``perform`` (instantiating for instance methods)."""
    if isinstance(target, TaskBase):
        return target.func
    if inspect.isclass(target):
        raw = inspect.getattr_static(target, "perform", None)
        if raw is None:
            name = getattr(target, "__resque_name__", None) or target.__qualname__
            raise JobNotFound(f"{name} has no perform method")
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


# Per function: (fewest, most) positional arguments it takes (most None: ``*args``), or None
# when a count alone cannot tell (required keyword-only parameters, no signature).
_arities: dict[Any, tuple[int, int | None] | None] = {}


def _arity(func: Callable[..., Any]) -> tuple[int, int | None] | None:
    key = getattr(func, "__func__", func)
    if key not in _arities:
        signature = _signature_of(func)
        found: tuple[int, int | None] | None = None
        if signature is not None:
            params = list(signature.parameters.values())
            positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY,
                                                          p.POSITIONAL_OR_KEYWORD)]
            if not any(p.kind is p.KEYWORD_ONLY and p.default is p.empty for p in params):
                fewest = sum(p.default is p.empty for p in positional)
                most = None if any(p.kind is p.VAR_POSITIONAL for p in params) else len(positional)
                found = (fewest, most)
        _arities[key] = found
    return _arities[key]


def check_arguments(func: Callable[..., Any], args: list[Any], name: str,
                    kwargs: dict[str, Any] | None = None) -> None:
    """Raise a clear ``TypeError`` when the payload's args do not fit ``perform``.

    Positional args alone are checked by their count against the function's arity, cached:
    ``Signature.bind`` (the slow, exact check) runs only when the count cannot tell."""
    if not kwargs:
        arity = _arity(func)
        if arity is not None and arity[0] <= len(args) and (arity[1] is None
                                                             or len(args) <= arity[1]):
            return
    signature = _signature_of(func)
    if signature is None:
        return
    try:
        signature.bind(*args, **kwargs) if kwargs else signature.bind(*args)
    except TypeError as exc:
        from resque.failure.records import clipped

        given = repr(args) + (f" and keywords {kwargs!r}" if kwargs else "")
        # The message is stored in the failure record: quote the input, not megabytes of it.
        raise TypeError(f"args {clipped(given, QUOTE_LIMIT)} do not fit "
                        f"{clipped(name, QUOTE_LIMIT)}.perform{signature}: {exc}") from None


def warm(target: Any) -> None:
    """Fill, in a forking worker's parent, the caches every child would otherwise refill:
    the hook names and the signature of ``perform`` (never instantiating the class)."""
    for kind in ("before_perform", "around_perform", "after_perform", "on_failure"):
        hooks(target, kind)
    func = signature_target(target)
    if func is not None:
        _arity(func)


def run(target: Any, args: list[Any], name: str) -> Any:
    """Perform a job with its hooks in Ruby's order; return what it returned, or ``SKIPPED``
    if a hook skipped it.

    ``args`` are the payload's: keyword arguments, if any, are split off its last element
    (``layout.split_kwargs``) and every hook and ``perform`` get ``(*args, **kwargs)``.
    ``before_perform`` (``DontPerform`` skips quietly), ``around_perform`` (generator hooks
    that yield once; the first in name order is outermost), ``perform``, ``after_perform``
    (only when nothing raised), and ``on_failure(exc, *args, **kwargs)`` for any exception,
    which is then re-raised for the caller to record.
    """
    kwargs = _NO_KEYWORDS
    if args and type(args[-1]) is dict:  # only then can there be keywords: every job runs this
        args, kwargs = split_kwargs(args)
    try:
        try:
            for hook in hooks(target, "before_perform"):
                hook(*args, **kwargs)
        except DontPerform:
            return SKIPPED
        func = perform_callable(target)
        check_arguments(func, args, name, kwargs)
        arounds = hooks(target, "around_perform")
        result = _around(arounds, func, args, kwargs) if arounds else _call(func, args, kwargs)
        if result is not SKIPPED:
            for hook in hooks(target, "after_perform"):
                hook(*args, **kwargs)
        return result
    except BaseException as exc:
        run_failure_hooks(target, exc, args, kwargs)
        raise


_NO_KEYWORDS: dict[str, Any] = {}  # shared, never changed: most jobs have no keywords


def _call(func: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    result = func(*args, **kwargs) if kwargs else func(*args)
    if inspect.isawaitable(result):  # an ``async def`` job
        return awaiter(result)
    return result


async def as_coroutine(awaitable: Any) -> Any:
    """Any awaitable as a coroutine, which is what event loops are handed."""
    return await awaitable


def _run_awaitable(awaitable: Any) -> Any:
    """Run an ``async def`` job to completion on an event loop of its own."""
    import asyncio  # only when a job is async: asyncio is heavy to import

    return asyncio.run(as_coroutine(awaitable))


awaiter: Callable[[Any], Any] = _run_awaitable
"""How ``async def`` jobs are run; a concurrent worker points it at its shared loop. The
loop runs the coroutine in the caller's context (``contextvars``), so ``current_job()`` works
inside it."""


def _around(arounds: Sequence[Callable[..., Any]], func: Callable[..., Any], args: list[Any],
            kwargs: dict[str, Any]) -> Any:
    """Nest generator hooks around the call; a hook that does not yield skips the job."""
    if not arounds:
        return _call(func, args, kwargs)
    generator = arounds[0](*args, **kwargs)
    if not inspect.isgenerator(generator):
        raise TypeError(f"around_perform hook {arounds[0]!r} must be a generator that yields once")
    try:
        next(generator)
    except StopIteration:
        return SKIPPED
    try:
        result = _around(arounds[1:], func, args, kwargs)
    except BaseException as exc:
        try:
            generator.throw(exc)
        except StopIteration:
            return SKIPPED
        raise
    try:
        next(generator)
    except StopIteration:
        pass
    return result


def run_failure_hooks(target: Any, exc: BaseException, args: list[Any],
                      kwargs: dict[str, Any] | None = None) -> None:
    """``on_failure*`` hooks; a failing hook is logged, never raised over the job's error.
    ``args`` may still carry the keywords (a dead child's payload): they are split off."""
    if kwargs is None:
        args, kwargs = split_kwargs(args)
    for hook in hooks(target, "on_failure"):
        try:
            hook(exc, *args, **kwargs)
        except Exception:
            log.exception("on_failure hook %r failed", hook)
