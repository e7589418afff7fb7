"""The Responses API's input estimate is never below what the simulated provider bills (issue 24):
instructions, input strings and items (messages with text parts, function calls and their
outputs), function tools and members without a recipe, against the simulator's `input_tokens`."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from shared.upstream.responses_protocol import prompt_estimate
from tests.unit.shared.test_estimates import SCHEMA, WORDS
from tools.simulator import Simulator, SimulatorConfig, create_app

MODEL = "gpt-4o-mini"
CLIENT = TestClient(create_app(simulator=Simulator(SimulatorConfig(ms_per_token=0, base_latency_ms=0))))
TEXT_PART = st.builds(lambda text, kind: {"type": kind, "text": text}, WORDS, st.sampled_from(["input_text",
                                                                                                "output_text"]))
MESSAGE = st.builds(lambda role, content: {"role": role, "content": content},
                    st.sampled_from(["user", "system", "developer", "assistant"]),
                    st.one_of(WORDS, st.lists(TEXT_PART, min_size=1, max_size=3)))
TOOL = st.builds(lambda name, text, schema: {"type": "function", "name": name, "description": text,
                                             "parameters": schema},
                 st.from_regex(r"[a-z_]{1,12}", fullmatch=True), WORDS, SCHEMA)


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    items: list[Any] = draw(st.lists(MESSAGE, min_size=1, max_size=3))
    for i in range(draw(st.integers(0, 2))):  # a call and its output, as a turn of a tool loop replays them
        call_id = f"call_{i}"
        items += [{"type": "function_call", "id": f"fc_{i}", "call_id": call_id, "name": draw(WORDS.filter(str.strip)),
                   "arguments": draw(WORDS), "status": "completed"},
                  {"type": "function_call_output", "call_id": call_id, "output": draw(WORDS)}]
    body: dict[str, Any] = {"model": MODEL, "input": draw(st.one_of(WORDS, st.just(items)))}
    if draw(st.booleans()):
        body["instructions"] = draw(WORDS)
    if draw(st.booleans()):
        body["tools"] = draw(st.lists(TOOL, min_size=1, max_size=2, unique_by=lambda t: t["name"]))
        body["tool_choice"] = "none"  # the bill of the input, whatever the model would do
    return body


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_the_estimate_is_never_below_the_bill(body: dict[str, Any]) -> None:
    answer = CLIENT.post("/v1/responses/input_tokens", headers={"api-key": "x"}, json=body)
    assert answer.status_code == 200, answer.text
    billed = answer.json()["input_tokens"]
    estimate = prompt_estimate(MODEL, body)
    assert estimate >= billed
    assert estimate <= billed * 2 + 64, "close enough not to starve a budget"


def test_members_without_a_recipe_are_counted_at_a_byte_a_token() -> None:
    plain = {"model": MODEL, "input": "hello"}
    odd = {**plain, "x_hidden": "a" * 400}
    assert prompt_estimate(MODEL, odd) >= prompt_estimate(MODEL, plain) + 400
