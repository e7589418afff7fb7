"""Parsing untrusted JSON within documented bounds (docs/api-limits.md), before any validation."""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64  # arrays and objects nested in each other, the top-level object counting as 1
MAX_INT_DIGITS = 40  # far above any count or id here; below Python's 4300-digit int limit
MAX_FLOAT_CHARS = 64  # a float literal's length, sign, fraction and exponent included
# Values (the top level, every array element and every object member), counted before parsing: a
# body within MAX_REQUEST_BYTES may hold 250,000 empty arrays, whose parse and walk would hold the
# event loop (and every other tenant's request) for a fraction of a second each. 100,000 leaves
# room for any honest body: 2,048 embedding inputs, a long conversation, a large tool schema.
MAX_NODES = 100_000
_EXACT_INT = 2**53  # every integer up to here is exact in a float
_SURROGATE = re.compile("[\ud800-\udfff]")
_WHITESPACE = b" \t\r\n"
_TOO_MANY = (f"The body holds more than {MAX_NODES} JSON values (array elements and object members, "
             "nested ones included).")


class UnsafeJson(ValueError):
    """The body is JSON we refuse; the message names the problem and never quotes the input."""


def _parse_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        raise UnsafeJson(f"An integer in the body has more than {MAX_INT_DIGITS} digits.")
    return int(literal)


def _parse_float(literal: str) -> float | int:
    if len(literal) > MAX_FLOAT_CHARS:
        raise UnsafeJson(f"A number in the body is longer than {MAX_FLOAT_CHARS} characters.")
    value = float(literal)
    if not math.isfinite(value):
        raise UnsafeJson("A number in the body is too large for a 64-bit float.")
    # JSON has one number type: `386.0` and `3.86e2` are the integer 386 (as JSON Schema and our
    # OpenAPI document say), so an integer field must accept them. Float fields take an int as is.
    if value.is_integer() and abs(value) <= _EXACT_INT:
        return int(value)
    return value


def _refuse_constant(name: str) -> Any:
    raise UnsafeJson(f"{name} is not a JSON value.")


def loads(body: bytes | bytearray | str) -> Any:
    """`json.loads` that refuses deep nesting, huge numbers, NaN/Infinity and lone surrogates.

    Raises `UnsafeJson` for those, `json.JSONDecodeError` and `UnicodeDecodeError` as `json.loads` does.
    """
    _check_nodes(body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body)
    try:
        data = json.loads(body, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_refuse_constant)
    except RecursionError:
        # The C scanner recurses per level and stops at the interpreter's limit (~1000): deeper
        # than MAX_DEPTH by far, so this is the same refusal the walk below makes.
        raise UnsafeJson(f"The body nests arrays or objects deeper than {MAX_DEPTH} levels.") from None
    _check_tree(data)
    return data


def _check_nodes(body: bytes | bytearray) -> None:
    """Refuse more than MAX_NODES values in time linear in the bytes, at C speed, before any parse.

    Outside strings, every value is the top-level one, the first of a non-empty array or object,
    or one after a `,`: their count is 1 + commas + non-empty containers. Counted in the raw body
    (strings may hold `,` `[` `{` too) that is an upper bound, enough for almost every body. Past
    it, the strings are emptied: the commas alone may then already be too many (a hostile body
    ends there); else the exact count, whitespace dropped and empty containers taken off.
    """
    if _upper_bound(body) <= MAX_NODES:
        return
    if b"\\" in body:  # escaped backslashes and quotes gone, every `"` left opens or closes a string
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    # The even pieces between quotes lie outside strings (10x faster than a regular expression).
    bare = b'""'.join(body.split(b'"')[0::2])
    if 1 + bare.count(b",") > MAX_NODES:
        raise UnsafeJson(_TOO_MANY)
    if _upper_bound(bare) <= MAX_NODES:
        return
    bare = bare.translate(None, _WHITESPACE)
    if _upper_bound(bare) - bare.count(b"[]") - bare.count(b"{}") > MAX_NODES:
        raise UnsafeJson(_TOO_MANY)


def _upper_bound(body: bytes | bytearray) -> int:
    return 1 + body.count(b",") + body.count(b"[") + body.count(b"{")


def _check_tree(data: Any) -> None:
    """One iterative walk (no recursion, so no depth can overflow it): depth and lone surrogates.

    A lone surrogate (an unpaired `\\ud800`..`\\udfff` escape) is valid JSON but not Unicode text:
    pydantic, the model SDKs and any UTF-8 encoder fail on it later, with the text in the error.
    Only containers are stacked, each with its place as a (parent's place, key) pair: a path is
    spelled out only for the refusal, so the walk costs tens of nanoseconds a value.
    """
    if not isinstance(data, dict | list):
        if isinstance(data, str):
            _check_text(data, None)
        return
    stack: list[tuple[Any, int, _Place]] = [(data, 1, None)]
    while stack:
        value, depth, place = stack.pop()
        if depth > MAX_DEPTH:
            raise UnsafeJson(f"The body nests arrays or objects deeper than {MAX_DEPTH} levels.")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            if type(key) is str and not key.isascii() and _SURROGATE.search(key):
                raise UnsafeJson(f"A key under {_where(place)} contains a lone UTF-16 surrogate "
                                 "(\\ud800-\\udfff); send valid Unicode text.")
            if type(child) is str:
                _check_text(child, (place, key))
            elif type(child) is dict or type(child) is list:
                stack.append((child, depth + 1, (place, key)))


_Place = tuple[Any, str | int] | None  # (the parent's place, the key or index), None at the top level


def _check_text(text: str, place: _Place) -> None:
    if not text.isascii() and _SURROGATE.search(text):
        raise UnsafeJson(f"The string at {_where(place)} contains a lone UTF-16 surrogate "
                         "(\\ud800-\\udfff); send valid Unicode text.")


def _where(place: _Place) -> str:
    # Keys are the client's own, echoed only in the problem body (never a log); long ones are cut.
    keys: list[str] = []
    while place is not None:
        place, key = place
        keys.append(str(key))
    if not keys:
        return "the top level"
    path = ".".join(reversed(keys))
    return path if len(path) <= 120 else path[:117] + "..."
