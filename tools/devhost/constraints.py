"""ASP.NET Core inline route constraints ({id:int}, {key:guid}, {code:length(3)}), each with a sample value."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

from tools.devhost.errors import StartupError

_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")
_HEX = "[0-9a-fA-F]"
_GUID = re.compile(
    rf"\s*(?:{_HEX}{{32}}"
    rf"|(?P<b>[{{(])?{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}(?(b)[)}}]))\s*")


@dataclass(frozen=True)
class Constraint:
    """`accepts` decides a route value; `sample` is a value it accepts ('' when any will do, None if unknown)."""

    name: str
    accepts: Callable[[str], bool]
    sample: str | None


def make_constraint(template: str, spec: str) -> Constraint:
    """Build one constraint; an unknown name fails the start with ASP.NET Core's message."""
    found = re.fullmatch(r"\s*([A-Za-z]+)\s*(?:\((.*)\))?\s*", spec, re.DOTALL)
    if not found:
        raise StartupError(f"route '{template}': the inline constraint '{spec}' is invalid")
    name, arg = found.group(1).lower(), found.group(2)
    factory = _FACTORIES.get(name)
    if factory is None:
        raise StartupError(f"route '{template}': The constraint reference '{name}' could not be resolved to a type.")
    try:
        return factory(name, arg)
    except (TypeError, ValueError, re.error) as exc:
        raise StartupError(f"route '{template}': constraint '{spec}': {exc}") from None


def _integer(bits: int) -> Callable[[str], bool]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return lambda v: bool(_INTEGER.fullmatch(v)) and low <= int(v) <= high


def _as_long(value: str) -> int | None:
    return int(value) if _INTEGER.fullmatch(value) else None


def _is_datetime(value: str) -> bool:
    try:
        datetime.datetime.fromisoformat(value.strip())
    except ValueError:
        return False
    return True


def _args(arg: str | None, count: int) -> list[int]:
    if arg is None:
        raise ValueError("needs an argument")
    values = [int(a) for a in arg.split(",")]
    if len(values) != count:
        raise ValueError(f"takes {count} argument(s)")
    return values


def _no_arg(accepts: Callable[[str], bool], sample: str | None) -> Callable[[str, str | None], Constraint]:
    def build(name: str, arg: str | None) -> Constraint:
        if arg is not None:
            raise ValueError("takes no argument")
        return Constraint(name, accepts, sample)

    return build


def _length(name: str, arg: str | None) -> Constraint:
    bounds = _args(arg, 2) if arg and "," in arg else _args(arg, 1) * 2
    return Constraint(name, lambda v: bounds[0] <= len(v) <= bounds[1], "x" * max(bounds[0], 1))


def _min_length(name: str, arg: str | None) -> Constraint:
    (low,) = _args(arg, 1)
    return Constraint(name, lambda v: len(v) >= low, "x" * max(low, 1))


def _max_length(name: str, arg: str | None) -> Constraint:
    (high,) = _args(arg, 1)
    return Constraint(name, lambda v: len(v) <= high, "x")


def _range(name: str, arg: str | None) -> Constraint:
    if name == "range":
        low, high = _args(arg, 2)
    elif name == "min":
        (low,), high = _args(arg, 1), 2 ** 63 - 1
    else:
        low, (high,) = -(2 ** 63), _args(arg, 1)

    def accepts(value: str) -> bool:
        number = _as_long(value)
        return number is not None and low <= number <= high

    return Constraint(name, accepts, str(max(low, min(high, 1))))


def _regex(name: str, arg: str | None) -> Constraint:
    if not arg:
        raise ValueError("needs a pattern")
    pattern = re.compile(arg, re.IGNORECASE)
    # RegexRouteConstraint calls IsMatch: the pattern is not anchored unless it anchors itself.
    return Constraint(name, lambda v: pattern.search(v) is not None, None)


def _is_file(value: str) -> bool:
    last = value.rsplit("/", 1)[-1]
    dot = last.rfind(".")
    return 0 <= dot < len(last) - 1


_FACTORIES: dict[str, Callable[[str, str | None], Constraint]] = {
    "int": _no_arg(_integer(32), "1"),
    "long": _no_arg(_integer(64), "1"),
    "bool": _no_arg(lambda v: v.strip().lower() in {"true", "false"}, "true"),
    "guid": _no_arg(lambda v: bool(_GUID.fullmatch(v)), "00000000-0000-0000-0000-000000000001"),
    "decimal": _no_arg(lambda v: bool(_NUMBER.fullmatch(v)) and "e" not in v.lower(), "1"),
    "double": _no_arg(lambda v: bool(_NUMBER.fullmatch(v)), "1"),
    "float": _no_arg(lambda v: bool(_NUMBER.fullmatch(v)), "1"),
    "datetime": _no_arg(_is_datetime, "2024-01-01"),
    "alpha": _no_arg(lambda v: bool(re.fullmatch("[a-z]*", v, re.IGNORECASE)), "a"),
    "required": _no_arg(lambda v: v != "", ""),
    "file": _no_arg(_is_file, "x.txt"),
    "nonfile": _no_arg(lambda v: not _is_file(v), "x"),
    "length": _length,
    "minlength": _min_length,
    "maxlength": _max_length,
    "min": _range,
    "max": _range,
    "range": _range,
    "regex": _regex,
}
