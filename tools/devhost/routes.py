"""HTTP route templates as the Functions host reads them, and its first-match route table."""

from __future__ import annotations

import itertools
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from tools.devhost.constraints import Constraint, make_constraint
from tools.devhost.errors import StartupError

T = TypeVar("T")


@dataclass(frozen=True)
class Param:
    """One `{name:constraint=default?}` or `{*name}` of a template."""

    name: str
    constraints: tuple[Constraint, ...] = ()
    optional: bool = False
    default: str | None = None
    catch_all: bool = False

    def accepts(self, value: str) -> bool:
        return all(c.accepts(value) for c in self.constraints)

    def sample(self) -> str | None:
        """A value every constraint accepts, or None when one cannot say (regex)."""
        samples = [c.sample for c in self.constraints]
        if any(s is None for s in samples):
            return None
        return next((s for s in [*samples, "x"] if s and self.accepts(s)), None)


Part = str | Param


@dataclass(frozen=True)
class Segment:
    """The text between two slashes: literals and parameters."""

    parts: tuple[Part, ...]

    @property
    def param(self) -> Param | None:
        only = self.parts[0] if len(self.parts) == 1 else None
        return only if isinstance(only, Param) else None

    def match(self, text: str) -> dict[str, str] | None:
        if len(self.parts) == 1:
            part = self.parts[0]
            if isinstance(part, str):
                return {} if part.upper() == text.upper() else None
            return {part.name: text} if text and part.accepts(text) else None
        # Complex segment ("{name}.{ext}"): literals anchor the parameters, the rightmost occurrence winning.
        pattern = "".join(f"(?P<p{i}>.+)" if isinstance(p, Param) else re.escape(p) for i, p in enumerate(self.parts))
        found = re.fullmatch(pattern, text, re.IGNORECASE | re.DOTALL)
        if not found:
            return None
        values = {p.name: found.group(f"p{i}") for i, p in enumerate(self.parts) if isinstance(p, Param)}
        params = {p.name: p for p in self.parts if isinstance(p, Param)}
        return values if all(params[k].accepts(v) for k, v in values.items()) else None


@dataclass(frozen=True)
class RouteTemplate:
    """A parsed template such as `api/items/{id:int}`."""

    text: str
    segments: tuple[Segment, ...]

    def match(self, path: Sequence[str]) -> dict[str, str] | None:
        """Route values for a request path split by split_path, or None. Missing optionals are absent."""
        values: dict[str, str] = {}
        for i, segment in enumerate(self.segments):
            param = segment.param
            if param is not None and param.catch_all:
                rest = "/".join(path[i:])
                if rest and not param.accepts(rest):
                    return None
                if rest or param.default is not None:
                    values[param.name] = rest or str(param.default)
                return values
            if i >= len(path):
                return self._fill_missing(i, values)
            found = segment.match(path[i])
            if found is None:
                return None
            values.update(found)
        return values if len(path) <= len(self.segments) else None

    def _fill_missing(self, start: int, values: dict[str, str]) -> dict[str, str] | None:
        for segment in self.segments[start:]:
            param = segment.param
            if param is None or not (param.optional or param.catch_all or param.default is not None):
                return None
            if param.default is not None:
                values[param.name] = param.default
        return values

    def sample_path(self) -> str | None:
        """A request path this template matches, used to spot routes an earlier one would take."""
        texts: list[str] = []
        for segment in self.segments:
            pieces = [p if isinstance(p, str) else p.sample() for p in segment.parts]
            if any(piece is None for piece in pieces):
                return None
            texts.append("".join(piece for piece in pieces if piece is not None))
        return "/" + "/".join(texts)


@dataclass(frozen=True)
class Route(Generic[T]):
    """A function's template and methods (None: every method)."""

    name: str
    route: str  # as the function declared it, before the prefix
    template: RouteTemplate
    methods: frozenset[str] | None
    target: T

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


class RouteTable(Generic[T]):
    """Routes tried in order, the first template and method match winning, as the host's RouteCollection."""

    def __init__(self, routes: Sequence[Route[T]]) -> None:
        self.routes = list(routes)

    def match(self, raw_path: str, method: str) -> tuple[Route[T], dict[str, str]] | None:
        path = split_path(raw_path)
        for route in self.routes:
            values = route.template.match(path)
            if values is not None and route.allows(method):
                return route, values
        return None

    def shadowed(self) -> list[tuple[Route[T], Route[T], str]]:
        """(earlier, later, path): requests for `later`'s route that `earlier` takes first."""
        found = []
        for i, later in enumerate(self.routes):
            sample = later.template.sample_path()
            if sample is None:
                continue
            for earlier in self.routes[:i]:
                if _methods_overlap(earlier.methods, later.methods) and earlier.template.match(split_path(sample)):
                    found.append((earlier, later, sample))
                    break
        return found


def host_order(name: str) -> str:
    """The host sorts functions with OrdinalIgnoreCase, which compares upper-cased text."""
    return name.upper()


def routes_conflict(route_a: str, methods_a: frozenset[str] | None,
                    route_b: str, methods_b: frozenset[str] | None) -> bool:
    """The host's check: same route text (ignoring case and outer slashes) and a shared method."""
    return route_a.strip("/").upper() == route_b.strip("/").upper() and _methods_overlap(methods_a, methods_b)


def split_path(raw_path: str) -> list[str]:
    """Decoded path segments; %2F stays encoded and a trailing slash is ignored, as in ASP.NET Core."""
    segments: list[str] = []
    for raw in raw_path.split("/")[1:]:
        text = urllib.parse.unquote(re.sub("%2[fF]", "%252F", raw))
        if text == "..":
            if segments:
                segments.pop()
        elif text != ".":
            segments.append(text)
    if segments and segments[-1] == "":
        segments.pop()
    return segments


def parse_template(text: str) -> RouteTemplate:
    """Parse like ASP.NET Core's RoutePatternParser; a bad template raises StartupError."""
    body = text[2:] if text.startswith("~/") else text[1:] if text.startswith("/") else text
    segments: list[Segment] = []
    parts: list[Part] = []
    literal = ""
    i = 0
    while i < len(body):
        char, ahead = body[i], body[i + 1:i + 2]
        if char in "{}" and ahead == char:
            literal, i = literal + char, i + 2
        elif char == "{":
            inner, i = _read_parameter(text, body, i + 1)
            if literal:
                parts, literal = [*parts, literal], ""
            parts.append(_parse_parameter(text, inner))
        elif char == "}":
            raise StartupError(f"route '{text}': unmatched '}}' (write '}}}}' for a literal brace)")
        elif char == "/":
            if literal:
                parts, literal = [*parts, literal], ""
            if not parts:
                raise StartupError(f"route '{text}': the separator '/' cannot appear consecutively")
            segments.append(_segment(text, parts))
            parts, i = [], i + 1
        elif char == "?":
            raise StartupError(f"route '{text}': a literal section cannot contain '?'")
        else:
            literal, i = literal + char, i + 1
    if literal:
        parts.append(literal)
    if parts:
        segments.append(_segment(text, parts))
    _validate(text, segments)
    return RouteTemplate(text, tuple(segments))


def _read_parameter(text: str, body: str, start: int) -> tuple[str, int]:
    inner, j = "", start
    while j < len(body):
        char, ahead = body[j], body[j + 1:j + 2]
        if char in "{}" and ahead == char:
            inner, j = inner + char, j + 2
        elif char == "}":
            return inner, j + 1
        elif char == "{":
            raise StartupError(f"route '{text}': unescaped '{{' inside a parameter")
        else:
            inner, j = inner + char, j + 1
    raise StartupError(f"route '{text}': a parameter is missing its closing '}}'")


def _parse_parameter(text: str, inner: str) -> Param:
    catch_all = inner.startswith("*")
    inner = inner.lstrip("*")
    optional = inner.endswith("?")
    head, default = _split_default(inner.removesuffix("?"))
    pieces = _split_top_level(head)
    name = pieces[0].strip()
    if not name or any(c in name for c in "/{}?*:="):
        raise StartupError(f"route '{text}': the parameter name '{name}' is invalid")
    if optional and (catch_all or default is not None):
        raise StartupError(f"route '{text}': parameter '{name}' cannot be both optional and a catch-all or defaulted")
    return Param(name, tuple(make_constraint(text, c) for c in pieces[1:]), optional, default, catch_all)


def _split_default(inner: str) -> tuple[str, str | None]:
    """`id:int=5` -> ('id:int', '5'); an '=' inside a constraint's parentheses is not a default."""
    depth = 0
    for i, char in enumerate(inner):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "=" and depth == 0:
            return inner[:i], inner[i + 1:]
    return inner, None


def _split_top_level(inner: str) -> list[str]:
    """`id:int:range(1,5)` -> ['id', 'int', 'range(1,5)']; colons inside parentheses stay."""
    pieces, depth, current = [], 0, ""
    for char in inner:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == ":" and depth == 0:
            pieces.append(current)
            current = ""
        else:
            current += char
    return [*pieces, current]


def _segment(text: str, parts: list[Part]) -> Segment:
    for first, second in itertools.pairwise(parts):
        if isinstance(first, Param) and isinstance(second, Param):
            raise StartupError(f"route '{text}': a segment cannot hold two consecutive parameters")
    if len(parts) > 1 and any(isinstance(p, Param) and (p.catch_all or p.optional) for p in parts):
        raise StartupError(f"route '{text}': optional and catch-all parameters must fill their whole segment "
                           "(complex optional segments are not supported by devhost)")
    return Segment(tuple(parts))


def _validate(text: str, segments: list[Segment]) -> None:
    names = [p.name.upper() for s in segments for p in s.parts if isinstance(p, Param)]
    if len(names) != len(set(names)):
        raise StartupError(f"route '{text}': a parameter name appears more than once")
    for segment in segments[:-1]:
        if segment.param is not None and segment.param.catch_all:
            raise StartupError(f"route '{text}': a catch-all parameter can only be the last segment")


def _methods_overlap(a: frozenset[str] | None, b: frozenset[str] | None) -> bool:
    return a is None or b is None or bool(a & b)

