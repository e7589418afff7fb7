"""The Structured Outputs rules a `strict: true` schema must follow, refused with the API's 400 otherwise."""

from __future__ import annotations

from typing import Any

from tools.simulator.schemas import ChatRequest, InvalidRequest

# Keywords whose values are schemas, or maps or lists of schemas, that the rules also apply to.
_NESTED_ONE = ("items", "not", "additionalProperties")
_NESTED_MAP = ("properties", "$defs", "definitions")
_NESTED_LIST = ("anyOf", "allOf", "prefixItems")


def check_strict(request: ChatRequest) -> None:
    """Refuse a strict tool or json_schema whose schema Structured Outputs does not support.

    The rules the API enforces first: the root is an object; every object sets
    `additionalProperties: false` and lists every property in `required`.
    """
    for index, tool in enumerate(request.tools or []):
        if tool.function.strict and tool.function.parameters is not None:
            _check(tool.function.parameters, f"tools.{index}.function.parameters", f"function '{tool.function.name}'")
    fmt = request.response_format
    if fmt is not None and fmt.json_schema is not None and fmt.json_schema.strict:
        what = f"response_format '{fmt.json_schema.name}'"
        _check(fmt.json_schema.schema_ or {}, "response_format.json_schema.schema", what)


def _check(schema: dict[str, Any], field: str, what: str) -> None:
    if schema.get("type") != "object":
        raise InvalidRequest(f"{field}: invalid schema for {what}: the root schema must be of type 'object'")
    problem = _first_problem(schema, ())
    if problem is not None:
        context, rule = problem
        raise InvalidRequest(f"{field}: invalid schema for {what}: in context={context}, {rule}")


def _first_problem(schema: Any, context: tuple[str, ...]) -> tuple[tuple[str, ...], str] | None:
    if not isinstance(schema, dict):
        return None
    types = schema.get("type")
    if types == "object" or (isinstance(types, list) and "object" in types) or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return context, "'additionalProperties' is required to be supplied and to be false"
        properties = schema.get("properties") or {}
        missing = [key for key in properties if key not in (schema.get("required") or [])]
        if missing:
            return context, f"'required' must list every key in properties; missing {missing[0]!r}"
    for nested, path in _children(schema):
        if (found := _first_problem(nested, (*context, *path))) is not None:
            return found
    return None


def _children(schema: dict[str, Any]) -> list[tuple[Any, tuple[str, ...]]]:
    """The schemas nested in this one, with the path from it to each."""
    children: list[tuple[Any, tuple[str, ...]]] = [(schema.get(key), (key,)) for key in _NESTED_ONE]
    for key in _NESTED_MAP:
        children += [(nested, (key, name)) for name, nested in (schema.get(key) or {}).items()]
    for key in _NESTED_LIST:
        children += [(nested, (key, str(index))) for index, nested in enumerate(schema.get(key) or [])]
    return children
