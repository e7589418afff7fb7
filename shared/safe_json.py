"""Parsing untrusted JSON within documented bounds (docs/api-limits.md), before any validation."""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64  # arrays and objects nested in each other, the top-level object counting as 1
MAX_INT_DIGITS = 40  # far above any count or id here; below Python's 4300-digit int limit
MAX_FLOAT_CHARS = 64  # a float literal's length, sign, fraction and exponent included
_EXACT_INT = 2**53  # every integer up to here is exact in a float
_SURROGATE = re.compile("[\ud800-\udfff]")


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
    try:
        data = json.loads(body, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_refuse_constant)
    except RecursionError:
        # The C scanner recurses per level and stops at the interpreter's limit (~1000): deeper
        # than MAX_DEPTH by far, so this is the same refusal the walk below makes.
        raise UnsafeJson(f"The body nests arrays or objects deeper than {MAX_DEPTH} levels.") from None
    _check_tree(data)
    return data


def _check_tree(data: Any) -> None:
    """One iterative walk (no recursion, so no depth can overflow it): depth and lone surrogates.

    A lone surrogate (an unpaired `\\ud800`..`\\udfff` escape) is valid JSON but not Unicode text:
    pydantic, the model SDKs and any UTF-8 encoder fail on it later, with the text in the error.
    """
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, str):
            if not value.isascii() and _SURROGATE.search(value):
                raise UnsafeJson(f"The string at {_where(path)} contains a lone UTF-16 surrogate "
                                 "(\\ud800-\\udfff); send valid Unicode text.")
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise UnsafeJson(f"The body nests arrays or objects deeper than {MAX_DEPTH} levels.")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            if isinstance(key, str) and not key.isascii() and _SURROGATE.search(key):
                raise UnsafeJson(f"A key under {_where(path)} contains a lone UTF-16 surrogate "
                                 "(\\ud800-\\udfff); send valid Unicode text.")
            stack.append((child, depth + 1, f"{path}.{key}" if path else str(key)))


def _where(path: str) -> str:
    # Keys are the client's own, echoed only in the problem body (never a log); long ones are cut.
    if not path:
        return "the top level"
    return path if len(path) <= 120 else path[:117] + "..."
