"""A small valid instance of a JSON schema: the arguments of a simulated tool call or a structured answer."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from typing import Any

# Past this depth a recursive schema ($ref to itself) takes its smallest branch: null, [] or {}.
_MAX_DEPTH = 6

_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00",
    "duration": "P1D",
    "email": "someone@example.com",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


class SchemaInstance:
    """Builds instances of one schema (resolving its local $refs), filling strings with words.

    The words come from the prompt, picked by seeded dice, so the same request gets the same
    instance; what the schema constrains (type, enum, const, required, bounds, formats, items)
    always wins over the words.
    """

    def __init__(self, root: dict[str, Any], words: Sequence[str], rng: random.Random) -> None:
        self._root = root
        self._words = [word for word in words if word] or ["value"]
        self._rng = rng

    def build(self) -> Any:
        return self._instance(self._root, 0)

    def _instance(self, schema: Any, depth: int) -> Any:  # noqa: PLR0911 - one return per keyword
        if not isinstance(schema, dict):
            return None if schema is False else self._word(0, None)
        if "$ref" in schema:
            return self._instance(self._resolve(schema["$ref"]), depth + 1)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                return self._instance(self._branch(schema[key], depth), depth + 1)
        if schema.get("allOf"):
            merged = _merge([self._deref(part) for part in schema["allOf"]], schema)
            return self._instance(merged, depth + 1)
        return self._typed(schema, _pick_type(schema, deep=depth >= _MAX_DEPTH), depth)

    def _typed(self, schema: dict[str, Any], kind: str, depth: int) -> Any:
        if kind == "null":
            return None
        if kind == "boolean":
            return True
        if kind in ("integer", "number"):
            return _number(schema, integer=kind == "integer")
        if kind == "string":
            return self._string(schema)
        if kind == "array":
            return self._array(schema, depth)
        return self._object(schema, depth)

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties: dict[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        # Deep in a recursion only the required keys, so the instance ends; otherwise every declared
        # property, which any schema allows and which shows a client more of the shape.
        keys = [key for key in properties if depth < _MAX_DEPTH or key in required]
        value = {key: self._instance(properties[key], depth + 1) for key in keys}
        for key in sorted(required - set(value)):  # required without a declared schema: anything
            value[key] = self._word(0, None)
        return value

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        count = max(low, 0 if depth >= _MAX_DEPTH else 1)
        count = min(count, int(high)) if high is not None else count
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", {})
        return [self._instance(prefix[i] if i < len(prefix) else items, depth + 1) for i in range(count)]

    def _string(self, schema: dict[str, Any]) -> str:
        if (fmt := schema.get("format")) in _FORMATS:
            return _FORMATS[fmt]
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        pattern = schema.get("pattern")
        candidates = self._rng.sample(self._words, len(self._words))
        for word in candidates:
            text = self._fit(word, low, high)
            if pattern is None or re.search(pattern, text):
                return text
        return self._fit(candidates[0], low, high)  # a pattern none of the words match: documented

    def _word(self, low: int, high: int | None) -> str:
        return self._fit(self._rng.choice(self._words), low, high)

    @staticmethod
    def _fit(word: str, low: int, high: int | None) -> str:
        text = word if len(word) >= low else word + "x" * (low - len(word))
        return text if high is None else text[: int(high)]

    def _branch(self, branches: list[Any], depth: int) -> Any:
        # The first non-null branch reads best; deep in a recursion null (or the first) ends it.
        resolved = [self._deref(branch) for branch in branches]
        nulls = [b for b in resolved if isinstance(b, dict) and b.get("type") == "null"]
        others = [b for b in resolved if b not in nulls]
        if depth >= _MAX_DEPTH and nulls:
            return nulls[0]
        return (others or nulls)[0]

    def _deref(self, schema: Any) -> Any:
        while isinstance(schema, dict) and "$ref" in schema:
            schema = self._resolve(schema["$ref"])
        return schema

    def _resolve(self, ref: str) -> Any:
        # Local refs only ("#", "#/$defs/Name", "#/definitions/Name"), as structured outputs allow.
        node: Any = self._root
        for part in ref.removeprefix("#").strip("/").split("/") if ref != "#" else []:
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node


def _pick_type(schema: dict[str, Any], *, deep: bool) -> str:
    declared = schema.get("type")
    types = declared if isinstance(declared, list) else [declared] if declared else []
    if not types:
        if "properties" in schema or "required" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return "string"
    if deep and "null" in types:
        return "null"
    return next((t for t in types if t != "null"), "null")


def _number(schema: dict[str, Any], *, integer: bool) -> int | float:
    """0 when the bounds allow it, else the bound nearest to 0 that is inside them."""
    value: float = 0
    low, high = schema.get("minimum"), schema.get("maximum")
    above, below = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if low is not None and value < low:
        value = low
    if above is not None and value <= above:
        value = math.floor(above) + 1 if integer else above + (1 if below is None else (below - above) / 2)
    if high is not None and value > high:
        value = high
    if below is not None and value >= below:
        value = math.ceil(below) - 1 if integer else below - (1 if above is None else (below - above) / 2)
    if step := schema.get("multipleOf"):
        value = math.ceil(value / step) * step
    return math.ceil(value) if integer else value


def _merge(parts: list[Any], outer: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {key: value for key, value in outer.items() if key != "allOf"}
    for part in parts:
        if not isinstance(part, dict):
            continue
        for key, value in part.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged
