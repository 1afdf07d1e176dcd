"""A call's arguments as a payload's ``args``, and clear errors for those JSON cannot carry.

Positional arguments are the array; keyword arguments, if any, are one more element, an
object marked with ``"__kwargs__": true`` (``layout.kwargs_argument``). A positional dict
carrying that marker is refused: a worker would take it for the keywords.

When encoding fails, ``unencodable`` finds the argument at fault and names it (position and
parameter name), with what to pass instead. That search runs only after a failure, so a good
call pays nothing for it.
"""

from __future__ import annotations

import datetime
import decimal
import inspect
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from resque import layout


def pack(args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[Any]:
    """The payload's ``args``: the positional arguments, then the keywords' object if any."""
    marker = layout.KWARGS_MARKER
    for position, value in enumerate(args):
        if type(value) is dict and marker in value:  # inlined: this runs on every enqueue
            raise ValueError(
                f"positional argument {position} is a dict with the key "
                f"{layout.KWARGS_MARKER!r}, which marks keyword arguments in a payload: a worker "
                "would pass it as keywords; rename that key or pass the values as keywords")
    if not kwargs:
        return list(args)
    if layout.KWARGS_MARKER in kwargs:
        raise ValueError(f"{layout.KWARGS_MARKER!r} cannot be a keyword argument's name")
    return [*args, layout.kwargs_argument(dict(kwargs))]


_HINTS: list[tuple[type | tuple[type, ...], str]] = [
    ((datetime.datetime, datetime.date, datetime.time), "pass {name}.isoformat() and parse "
                                                         "it in the job"),
    (datetime.timedelta, "pass {name}.total_seconds()"),
    ((set, frozenset), "pass sorted({name}) (a list)"),
    ((bytes, bytearray, memoryview), "pass text: {name}.decode() or base64"),
    (decimal.Decimal, "pass str({name})"),
    (uuid.UUID, "pass str({name})"),
    (float, "pass None or a finite number: JSON has no NaN or infinity"),
]


def unencodable(job: str, func: Callable[..., Any] | None, args: Sequence[Any],
                kwargs: Mapping[str, Any], error: Exception) -> Exception:
    """The error to raise when a call's arguments are not JSON: which one, and what to do."""
    names, rest = _parameter_names(func)
    for position, value in enumerate(args):
        problem = _problem(value)
        if problem:
            name = names[position] if position < len(names) else None
            shown = name or (f"*{rest}" if rest else None)
            label = f"argument {position}" + (f" ({shown})" if shown else "")
            return _error(job, label, name or "it", value, problem)
    for name, value in kwargs.items():
        problem = _problem(value)
        if problem:
            return _error(job, f"keyword argument {name}", name, value, problem)
    kind = TypeError if isinstance(error, TypeError) else ValueError
    return kind(f"the arguments of {job} are not JSON: {error}")


def _error(job: str, label: str, name: str, value: Any, problem: str) -> Exception:
    kind = ValueError if isinstance(value, (float, str)) else TypeError
    hint = next((text for types, text in _HINTS if isinstance(value, types)),
                "pass only str, int, float, bool, None, lists and dicts with string keys")
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return kind(f"{label} of {job} cannot travel as JSON: {problem} ({shown}); "
                f"{hint.format(name=name)}")


def _problem(value: Any, depth: int = 0) -> str | None:
    """Why JSON cannot carry ``value`` (searching inside lists and dicts), or None."""
    if isinstance(value, (str, float, bool, int)) or value is None:
        return _scalar_problem(value)
    if depth > 100:
        return None  # let the encoder report what it finds that deep
    if isinstance(value, (list, tuple)):
        return next((p for p in (_problem(item, depth + 1) for item in value) if p), None)
    if isinstance(value, dict):
        return _dict_problem(value, depth)
    return f"a {type(value).__module__}.{type(value).__qualname__}".replace("builtins.", "")


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "a string with a lone surrogate, which is not UTF-8"
    elif isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a JSON number"
    return None


def _dict_problem(value: dict[Any, Any], depth: int) -> str | None:
    for key, item in value.items():
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            return f"a dict key of type {type(key).__name__}"
        problem = _problem(item, depth + 1)
        if problem:
            return problem
    return None


def _parameter_names(func: Callable[..., Any] | None) -> tuple[list[str], str | None]:
    """The names of the positional parameters, and of ``*args`` if there is one."""
    if func is None:
        return [], None
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return [], None
    names = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    rest = next((p.name for p in parameters if p.kind is p.VAR_POSITIONAL), None)
    return names, rest
