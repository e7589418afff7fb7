"""Instances the simulator builds for tool arguments and json_schema answers validate against their schema."""

from __future__ import annotations

import random
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, Field

from tools.simulator.instances import SchemaInstance

WORDS = ["Paris", "weather", "a", "tomorrow", "harbour"]


class Leaf(BaseModel):
    name: str = Field(min_length=3, max_length=5)
    score: float = Field(gt=0, lt=1)


class Tree(BaseModel):
    label: str
    children: list[Tree]
    leaf: Leaf | None
    count: int = Field(ge=10, le=20, multiple_of=5)


SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {}, "additionalProperties": False},
    {"type": "string", "enum": ["b", "a"]},
    {"const": 42},
    {"type": ["null", "integer"], "exclusiveMinimum": 3},
    {"type": "number", "minimum": -5, "maximum": -2},
    {"type": "integer", "exclusiveMaximum": -1},
    {"type": "string", "format": "date-time"},
    {"type": "string", "minLength": 12, "maxLength": 14},
    {"type": "string", "pattern": "^[A-Z][a-z]+$"},
    {"type": "array", "items": {"type": "boolean"}, "minItems": 3, "maxItems": 3},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "minItems": 2},
    {"anyOf": [{"type": "null"}, {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}]},
    {"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"required": ["b"]}]},
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "where": {
                "type": "object",
                "properties": {"lat": {"type": "number"}, "tags": {"type": "array", "items": {"type": "string"}}},
                "required": ["lat", "tags"],
                "additionalProperties": False,
            },
        },
        "required": ["city", "unit", "where"],
        "additionalProperties": False,
    },
    Tree.model_json_schema(),  # $defs, a recursive $ref, Optional as anyOf, numeric bounds
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_every_instance_validates(schema: dict[str, Any]) -> None:
    instance = SchemaInstance(schema, WORDS, random.Random(0)).build()

    jsonschema.validate(instance, schema)


def test_a_recursive_schema_ends_and_pydantic_accepts_the_result() -> None:
    instance = SchemaInstance(Tree.model_json_schema(), WORDS, random.Random(1)).build()

    tree = Tree.model_validate(instance)
    depth = 0
    while tree.children:
        tree, depth = tree.children[0], depth + 1
    assert 1 <= depth < 10


def test_strings_come_from_the_words_and_the_same_dice_give_the_same_instance() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

    first = SchemaInstance(schema, WORDS, random.Random(5)).build()

    assert first == SchemaInstance(schema, WORDS, random.Random(5)).build()
    assert first["city"] in WORDS
