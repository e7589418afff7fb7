"""Hostile JSON is refused at parse time with a message naming the problem, never the input."""

from __future__ import annotations

import json

import pytest

from shared.core import safe_json
from shared.core.safe_json import MAX_DEPTH, MAX_FLOAT_CHARS, MAX_INT_DIGITS, MAX_NODES, UnsafeJson


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize(("body", "mentions"), [
    (nested(10_000), f"deeper than {MAX_DEPTH} levels"),  # json.loads alone: RecursionError
    (nested(MAX_DEPTH + 1), f"deeper than {MAX_DEPTH} levels"),
    ('{"a": ' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1), f"deeper than {MAX_DEPTH} levels"),
    ('{"max_tokens": ' + "9" * 5000 + "}", f"more than {MAX_INT_DIGITS} digits"),  # alone: ValueError
    ('{"n": -' + "1" * (MAX_INT_DIGITS + 1) + "}", f"more than {MAX_INT_DIGITS} digits"),
    ('{"t": 0.' + "5" * MAX_FLOAT_CHARS + "}", f"longer than {MAX_FLOAT_CHARS} characters"),
    ('{"t": 1e400}', "too large"),
    ('{"t": NaN}', "NaN is not a JSON value"),
    ('{"t": -Infinity}', "-Infinity is not a JSON value"),
    ('{"messages": [{"content": "my secret prompt \\ud800"}]}', "messages.0.content contains a lone UTF-16"),
    ('{"text": "\\udfff"}', "text contains a lone UTF-16"),
    ('"\\ud800"', "the top level contains a lone"),
    ('{"input": {"k\\ud800ey": 1}}', "A key under input contains a lone"),
])
def test_hostile_json_is_refused_naming_the_problem(body: str, mentions: str) -> None:
    with pytest.raises(UnsafeJson) as err:
        safe_json.loads(body.encode())
    assert mentions in str(err.value)
    assert "secret" not in str(err.value) and "999" not in str(err.value)


@pytest.mark.parametrize("body", [
    nested(MAX_DEPTH),
    '{"n": ' + "9" * MAX_INT_DIGITS + ', "m": -' + "9" * MAX_INT_DIGITS + "}",
    '{"t": 0.7, "e": 1.5e-300, "big": 1e308}',
    '{"text": "paired surrogates are fine: \\ud83d\\ude00 and so is \\u00e9"}',
    '{"text": "' + "x" * 100_000 + '"}',
    "null", "1", "true", '"text"',  # the top level may be any value here (read_json then wants an object)
])
def test_json_within_the_bounds_parses_as_json_loads_does(body: str) -> None:
    assert safe_json.loads(body.encode()) == json.loads(body)


def test_long_paths_are_cut_in_the_message() -> None:
    body = json.dumps({"k" * 500: "\ud800"}, ensure_ascii=True)
    with pytest.raises(UnsafeJson) as err:
        safe_json.loads(body)
    assert len(str(err.value)) < 250


def test_syntax_errors_stay_json_decode_errors() -> None:
    with pytest.raises(json.JSONDecodeError):
        safe_json.loads(b"{not json")


def test_a_number_with_a_zero_fraction_is_an_integer_as_json_schema_says() -> None:
    parsed = safe_json.loads(b'{"max_words": 386.0, "n": 3.86e2, "t": 0.5, "big": 1e300, "neg": -2.0}')
    assert parsed == {"max_words": 386, "n": 386, "t": 0.5, "big": 1e300, "neg": -2}
    assert type(parsed["max_words"]) is int and type(parsed["big"]) is float


def values(data: object) -> int:
    """The documented count: the top level, every array element and object member, nested ones included."""
    if isinstance(data, list):
        return 1 + sum(values(child) for child in data)
    if isinstance(data, dict):
        return 1 + sum(values(child) for child in data.values())
    return 1


def shaped(kind: str, total: int) -> object:
    """A document of exactly `total` values, of a shape the count could get wrong."""
    if kind == "empty arrays":  # `[]` adds a container and no element
        return {"messages": [[] for _ in range(total - 2)]}
    if kind == "objects":  # `:` and `,` inside objects; empty objects
        return [{"k": {}} for _ in range((total - 1) // 2)] + [{}] * ((total - 1) % 2)
    # strings holding every character the count looks at, escaped quotes and backslashes included
    return ['a, [b] {c}: \\"d\\\\' for _ in range(total - 1)]


@pytest.mark.parametrize("kind", ["empty arrays", "objects", "punctuation in strings"])
@pytest.mark.parametrize("indent", [None, 1])
def test_the_value_count_is_exact_at_the_limit(kind: str, indent: int | None) -> None:
    at_limit = shaped(kind, MAX_NODES)
    assert values(at_limit) == MAX_NODES
    assert safe_json.loads(json.dumps(at_limit, indent=indent).encode()) == at_limit
    over = shaped(kind, MAX_NODES + 2)
    assert values(over) > MAX_NODES
    with pytest.raises(UnsafeJson) as err:
        safe_json.loads(json.dumps(over, indent=indent).encode())
    assert str(err.value) == (f"The body holds more than {MAX_NODES} JSON values (array elements and object "
                              "members, nested ones included).")


def test_a_quarter_million_arrays_are_refused_before_json_loads_builds_them(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> object:
        raise AssertionError("parsed")

    monkeypatch.setattr(json, "loads", never)  # the module safe_json parses with
    with pytest.raises(UnsafeJson, match="more than"):
        safe_json.loads(b'{"messages": [' + b",".join([b"[]"] * 250_000) + b"]}")
