"""The estimate covers everything forwarded (issue #19, finding 3): OpenAI-shaped bodies with members
the estimate has no recipe for, and members in the wrong place (a schema under `type: "text"`,
unknown fields in messages, parts, tools and calls), are never estimated below what the simulator
bills for them, the simulator billing every member it has no field for as prompt text."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st
from pydantic import BaseModel
from starlette.testclient import TestClient

from shared.core.tokens import NOT_PROMPT, request_prompt_tokens
from tests.unit.shared.test_estimates import CALL, HOSTILE, IMAGE_URL, MESSAGE, SCHEMA, TOOL, WORDS
from tools.simulator import Simulator, SimulatorConfig, create_app
from tools.simulator import schemas as sim
from tools.simulator.prompt import PARAMETERS

MODEL = "gpt-4o-mini"
# Names a client may put where they mean nothing (or something else): a misplaced known member, or
# a new one. Each level drops the names it models.
NAMES = st.one_of(st.sampled_from(["json_schema", "schema", "parameters", "tools", "content", "text", "description",
                                   "instructions", "system", "prompt", "input", "arguments", "name", "prediction"]),
                  st.from_regex(r"x_[a-z_]{0,10}", fullmatch=True))
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9), st.floats(allow_nan=False, allow_infinity=False),
              st.lists(HOSTILE, max_size=4).map("".join)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=16)


def _fields(*models: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for model in models for field, info in model.model_fields.items()
                     for name in (field, info.alias) if name)


# What each level models, in the gateway or the simulator: an extra member there must be another name.
MODELLED = {
    "body": _fields(sim.ChatRequest) | NOT_PROMPT | {"functions", "function_call", "prediction", "audio",
                                                    "web_search_options"},
    "message": _fields(sim.ChatMessage) | {"refusal"},
    "part": _fields(sim.TextPart, sim.ImagePart, sim.RefusalPart),
    "image_url": _fields(sim.ImageURL),
    "call": _fields(sim.ToolCall),
    "call_function": _fields(sim.FunctionCall),
    "tool": _fields(sim.Tool) | {"custom"},
    "function": _fields(sim.FunctionDefinition),
    "response_format": _fields(sim.ResponseFormat),
    "json_schema": _fields(sim.JsonSchemaFormat) | {"schema_"},
}


# The object member each level holds, and its level.
CHILD = {"part": ("image_url", "image_url"), "call": ("function", "call_function"), "tool": ("function", "function"),
         "response_format": ("json_schema", "json_schema")}


def extras(level: str, at_least: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(NAMES.filter(lambda name: name not in MODELLED[level]), JSON, min_size=at_least, max_size=2)


@st.composite
def sprinkled(draw: st.DrawFn, value: dict[str, Any], level: str) -> dict[str, Any]:
    """`value` with unknown members added at its level and at every level below it."""
    out = {**value, **draw(extras(level))}
    if level == "message" and isinstance(out.get("content"), list):
        out["content"] = [draw(sprinkled(part, "part")) for part in out["content"]]
    if level == "message" and out.get("tool_calls"):
        out["tool_calls"] = [draw(sprinkled(call, "call")) for call in out["tool_calls"]]
    child, below = CHILD.get(level, ("", ""))
    if isinstance(out.get(child), dict):
        out[child] = draw(sprinkled(out[child], below))
    return out


SCHEMA_FORMAT = st.builds(lambda kind, name, schema: {"type": kind, "json_schema": {"name": name, "schema": schema}},
                          st.sampled_from(["text", "json_object", "json_schema"]),
                          st.from_regex(r"[a-z_]{1,12}", fullmatch=True), SCHEMA)
FORMAT = st.one_of(st.just({"type": "text"}), st.just({"type": "json_object"}), SCHEMA_FORMAT)
# Not strict: the simulator checks a strict schema as the API does, and these are not strict ones.
def function_of(call: Any) -> dict[str, Any]:
    return dict(call["function"])


def loose(tool: Any) -> dict[str, Any]:
    return {**tool, "function": {key: value for key, value in tool["function"].items() if key != "strict"}}


LOOSE_TOOL = TOOL.map(loose)
FUNCTION = LOOSE_TOOL.map(lambda tool: tool["function"])
# Top-level members the gateway counts at a byte a token, in the shapes a provider takes them.
COUNTED_MEMBERS: dict[str, st.SearchStrategy[Any]] = {
    "stop": st.one_of(WORDS, st.lists(WORDS, max_size=4)),
    "prediction": st.builds(lambda text: {"type": "content", "content": text}, WORDS),
    "audio": st.builds(lambda voice: {"voice": voice, "format": "wav"}, st.sampled_from(["alloy", "verse"])),
    "web_search_options": JSON,
    "functions": st.lists(FUNCTION, min_size=1, max_size=2),
    "function_call": st.sampled_from(["auto", "none"]),
}
COUNTED = st.fixed_dictionaries({}, optional=COUNTED_MEMBERS)
ONE_COUNTED = st.sampled_from(sorted(COUNTED_MEMBERS)).flatmap(
    lambda name: COUNTED_MEMBERS[name].map(lambda value: {name: value}))
# Parameters the gateway does not count, with any value: the simulator must bill them nothing.
PARAMETER_VALUES = st.dictionaries(st.sampled_from(sorted(PARAMETERS)), JSON, max_size=3)
ONE_PARAMETER = st.dictionaries(st.sampled_from(sorted(PARAMETERS)), JSON, min_size=1, max_size=1)


def answering(message: dict[str, Any], called: list[str]) -> dict[str, Any]:
    """A tool message answers the first earlier call; with none, it becomes a user message."""
    if message["role"] != "tool":
        return message
    return {**message, "tool_call_id": called[0]} if called else {"role": "user", "content": message["content"]}


@st.composite
def plain_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A body of members with a recipe only (the property of test_estimates.py), holding an object
    of every level: text and image parts, tool calls, tools, a response format."""
    parts = [{"type": "text", "text": draw(WORDS)},
             {"type": "image_url", "image_url": {"url": IMAGE_URL, "detail": draw(st.sampled_from(["low", "high"]))}}]
    # JSON mode needs the word in a message; a tool message must answer an earlier call.
    calls = draw(st.lists(CALL, min_size=1, max_size=2))
    messages: list[dict[str, Any]] = [{"role": "system", "content": "Reply in json."},
                                      {"role": "user", "content": parts},
                                      {"role": "assistant", "content": None, "tool_calls": calls}]
    for message in draw(st.lists(MESSAGE, max_size=3)):
        messages.append(answering(message, [call["id"] for m in messages for call in m.get("tool_calls") or []]))
    modelled_format = FORMAT.filter(lambda f: "json_schema" not in f or f["type"] == "json_schema")
    return {"model": MODEL, "messages": messages, "tools": draw(st.lists(LOOSE_TOOL, min_size=1, max_size=3)),
            "response_format": draw(modelled_format)}


def legacy_message(draw: st.DrawFn) -> dict[str, Any]:
    """An assistant message replayed with a legacy function call and a refusal."""
    return {"role": "assistant", "content": None, "refusal": draw(WORDS), "function_call": function_of(draw(CALL))}


@st.composite
def sprinkled_everywhere(draw: st.DrawFn, plain: dict[str, Any]) -> dict[str, Any]:
    """`plain` with members out of place at every level, every kind at once."""
    body = draw(sprinkled(plain, "body"))
    body["messages"] = [draw(sprinkled(message, "message")) for message in body["messages"]]
    if draw(st.booleans()):
        body["messages"].append(draw(sprinkled(legacy_message(draw), "message")))
    body["tools"] = [draw(sprinkled(tool, "tool")) for tool in body["tools"]]
    body["tool_choice"] = draw(st.sampled_from(["none", "auto"]))
    body["response_format"] = draw(sprinkled(body["response_format"], "response_format"))
    return {**body, **draw(COUNTED), **draw(PARAMETER_VALUES)}


def places(body: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Every object of the body and its level."""
    found = [(body, "body")]
    for message in body["messages"]:
        found.append((message, "message"))
        for part in message["content"] if isinstance(message.get("content"), list) else []:
            found += [(part, "part")] + ([(part["image_url"], "image_url")] if "image_url" in part else [])
        for call in message.get("tool_calls") or []:
            found += [(call, "call"), (call["function"], "call_function")]
    for tool in body.get("tools", []):
        found += [(tool, "tool"), (tool["function"], "function")]
    if "response_format" in body:
        found.append((body["response_format"], "response_format"))
        if "json_schema" in body["response_format"]:
            found.append((body["response_format"]["json_schema"], "json_schema"))
    return found


@st.composite
def one_member_more(draw: st.DrawFn, plain: dict[str, Any]) -> dict[str, Any]:
    """`plain` with one kind of addition: unknown members in one object of one level, a
    member counted at a byte a token, a parameter, a schema under another type, or a legacy message."""
    body = copy.deepcopy(plain)
    found = places(body)
    kind = draw(st.sampled_from(sorted({level for _, level in found} | {"counted", "parameter", "schema", "legacy"})))
    format_type = body["response_format"]["type"]
    if kind == "schema" and format_type == "json_schema":  # a schema where it has a recipe already
        kind = "response_format"
    if kind in MODELLED:  # one object of the level: another's members must not cover for it
        place = draw(st.sampled_from([place for place, level in found if level == kind]))
        place.update(draw(extras(kind, at_least=1)))
    elif kind == "counted":
        body.update(draw(ONE_COUNTED))
    elif kind == "parameter":
        body.update(draw(ONE_PARAMETER))
    elif kind == "schema":
        body["response_format"] = {"type": format_type, "json_schema": draw(SCHEMA_FORMAT)["json_schema"]}
    else:
        body["messages"].append(legacy_message(draw))
    return body


@pytest.fixture(scope="module")
def simulator() -> Iterator[TestClient]:
    async def no_wait(_: float) -> None:
        return None

    app = create_app(simulator=Simulator(SimulatorConfig(region="west"), sleep=no_wait))
    with TestClient(app, base_url="http://sim") as client:
        yield client


def billed_and_estimated(simulator: TestClient, body: dict[str, Any]) -> tuple[int, int]:
    """What the simulator bills for the body, and the gateway's estimate of the same bytes."""
    sent = json.dumps(body, ensure_ascii=False).encode()
    answer = simulator.post("/v1/chat/completions", content=sent, headers={"api-key": "any"})
    assert answer.status_code == 200, answer.text  # a body a provider takes, not one it refuses
    return answer.json()["usage"]["prompt_tokens"], request_prompt_tokens(MODEL, json.loads(sent))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_a_body_with_members_out_of_place_everywhere_is_estimated_at_least_at_its_bill(
        simulator: TestClient, data: st.DataObject) -> None:
    body = data.draw(plain_bodies().flatmap(sprinkled_everywhere))
    billed, estimate = billed_and_estimated(simulator, body)
    assert estimate >= billed


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_each_member_out_of_place_adds_at_least_what_it_bills(simulator: TestClient, data: st.DataObject) -> None:
    """One member added to a body with recipes only: its own estimate, not the rest of the body's
    slack (images at 1,445, tools at 16), must cover what it adds to the bill."""
    plain = data.draw(plain_bodies())
    body = data.draw(one_member_more(plain))
    (plain_billed, plain_estimate), (billed, estimate) = (billed_and_estimated(simulator, plain),
                                                          billed_and_estimated(simulator, body))
    target(float((billed - plain_billed) - (estimate - plain_estimate)))  # seek the closest call
    assert estimate - plain_estimate >= billed - plain_billed, f"{body} adds {billed - plain_billed} billed tokens"
