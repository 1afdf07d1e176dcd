"""JSON as Ruby's json gem writes it, and read as strictly as a job payload needs.

Ruby resque encodes with MultiJson over the json gem: compact, insertion order, raw UTF-8,
``/`` unescaped, no NaN. Its one difference from Python's C encoder is how floats are spelled:
Ruby writes ``1.0e+20`` and ``1.0e-05`` where Python writes ``1e+20`` and ``1e-05``, and
``1.0e+15`` where Python writes ``1000000000000000.0`` (Ruby puts a whole number of 16 digits
in exponent form, Python waits for 17). Byte-exact output matters: Ruby's ``Resque.dequeue`` and
resque-scheduler's ``timestamps:<item>`` keys match the exact string. So we encode with the C
encoder, and only when its output may hold such a float do we respell the floats in it.

Reading a job payload is strict: no ``NaN``/``Infinity`` literals, no number so large that it
becomes infinite, valid UTF-8 and no lone surrogate escape. Such a payload would otherwise run
its job with a ``nan`` or a broken string. Other readers stay tolerant (see ``decode``).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

__all__ = ["decode", "decode_strict", "encode", "ruby_float"]

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)

# A JSON string (kept as is) or a number (floats respelled), in our encoder's output.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|-?\d+(?:\.\d+)?(?:e[+-]\d+)?')
# How Python writes the floats that Ruby spells otherwise: a negative exponent, and a whole
# number of 16 digits (Ruby: 1.0e+15). Both start with a literal, which the regex engine
# finds at C speed (single characters are found faster still, with ``in``).
_NEGATIVE_EXPONENT = re.compile(r"e-(?<=\de-)\d")
_SIXTEEN_DIGITS = re.compile(r"\.0(?<=\d{16}\.0)")


def ruby_float(value: float) -> str:
    """``Float#to_s``: the shortest round-trip digits, as Python's ``repr``, but a whole
    number of 16 digits or more in exponent form (Python: from 17), and every exponent form
    with a decimal: ``1.0e+15``, ``1.5e-07``."""
    text = float.__repr__(value)  # a float subclass's own repr is not JSON (numpy's is not)
    mantissa, exponent_mark, exponent = text.partition("e")
    if exponent_mark:
        if "." not in mantissa:
            mantissa += ".0"
        return f"{mantissa}e{exponent}"
    if 1e15 <= abs(value) < 1e16 and mantissa.endswith(".0"):  # 16 digits, no fraction
        sign = "-" if value < 0 else ""
        digits = mantissa.lstrip("-")[:-2].rstrip("0")
        return f"{sign}{digits[0]}.{digits[1:] or '0'}e+15"
    return text


def _spelled_differently(value: float) -> bool:
    size = abs(value)
    return size >= 1e16 or 0 < size < 1e-4 or (size >= 1e15 and size.is_integer())


_IN_VALUES, _IN_KEYS = 1, 2


def _floats_to_respell(value: Any) -> int:
    """Where a value holds a float that Ruby spells differently from Python: 0 nowhere,
    ``_IN_VALUES`` among its values only, ``_IN_KEYS`` as a dict key too."""
    found = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if _spelled_differently(item):
                found = _IN_VALUES
        elif isinstance(item, dict):
            if any(isinstance(key, float) and _spelled_differently(key) for key in item):
                return _IN_KEYS
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found


def _respell(match: re.Match[str]) -> str:
    token = match.group()
    if token[0] == '"' or ("." not in token and "e" not in token):
        return token
    return ruby_float(float(token))


def _encode_float_keys(value: Any) -> str:
    """The rarest path: a dict keyed by a float Ruby spells otherwise. Ruby writes a key as
    its ``to_s``, so ``{1e20 => 1}`` is ``{"1.0e+20":1}`` where Python writes ``"1e+20"``;
    a string key that looks like a float is kept, so the text alone cannot tell them apart."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{_ENCODER.encode(_key_text(key))}:{_encode_float_keys(item)}"
                              for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_encode_float_keys(item) for item in value) + "]"
    return encode(value)


def _key_text(key: Any) -> str:
    """A dict key as text: floats as Ruby spells them, the rest as Python's encoder writes
    keys (``true``, ``null``, ``5``); the C encoder has refused other types already."""
    if isinstance(key, str):
        return key
    if isinstance(key, float):
        return ruby_float(key)
    return _ENCODER.encode(key)


def encode(value: Any) -> str:
    """Compact JSON spelled as Ruby's ``Resque.encode`` spells it (byte-identical for JSON
    types). ``TypeError`` for values JSON cannot hold; ``ValueError`` for NaN, infinities and
    nesting too deep to encode.

    Cost: one C-encoder pass and a few scans of its output; only a payload whose text may
    hold such a float (a "+", a digit before "e-", 16 digits before ".0") is walked to be
    sure, and only one that really holds one takes the slower respelling pass (a float as
    a dict key, rarer still, a pass in Python).
    """
    try:
        text = _ENCODER.encode(value)
    except RecursionError:
        raise ValueError("value nested too deeply to encode as JSON") from None
    # Inline, not a helper: this runs for every job enqueued. "+" is rare in payloads, and
    # a positive exponent always has one.
    if ("+" in text or ("-" in text and _NEGATIVE_EXPONENT.search(text))
            or ("." in text and _SIXTEEN_DIGITS.search(text))):
        where = _floats_to_respell(value)
        if where == _IN_KEYS:
            try:
                return _encode_float_keys(value)
            except RecursionError:
                raise ValueError("value nested too deeply to encode as JSON") from None
        if where:
            return _TOKEN.sub(_respell, text)
    return text


# --- reading ---------------------------------------------------------------------------------


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ValueError(f"number {shown} is too large for a float")
    return value


# A \u escape of a UTF-16 surrogate; an unpaired one decodes to a str that is not text.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

# Only a float or a NaN/Infinity literal calls back into Python; the rest stays in C.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def decode(raw: str | bytes) -> Any:
    """Decode JSON written by Ruby, Perl or us, tolerantly: bytes that are not UTF-8 become
    lone surrogates (so they survive a round trip). NaN, infinities and overflowing numbers
    are refused (``ValueError``): Ruby never writes them, and we could not write them back."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="surrogateescape")
    try:
        return _DECODER.decode(raw)
    except RecursionError:  # deeper than the interpreter's stack: bad data, not a crash
        raise ValueError("JSON nested too deeply to decode") from None


def decode_strict(raw: str | bytes) -> Any:
    """Decode JSON that must be text all through (a job payload, args typed by a user):
    as ``decode``, and also ``ValueError`` for bytes that are not UTF-8 and for a ``\\u``
    escape naming half a surrogate pair."""
    if isinstance(raw, bytes):
        text = raw.decode("utf-8")  # UnicodeDecodeError is a ValueError
    else:
        text = raw
        text.encode("utf-8")  # a str may hold lone surrogates already (argv, surrogateescape)
    value = decode(text)
    if "\\" in text and _SURROGATE_ESCAPE.search(text):  # rare: only then look closer
        try:
            _ENCODER.encode(value).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a \\u escape names half a surrogate pair, not a character") \
                from None
    return value
