"""What a cut attempt is charged, and when another attempt may follow one (issue 19)."""

from __future__ import annotations

from shared.core.metering import Meter
from shared.core.tokens import TOKENS_PER_TOOL_CALL, counter_for


def test_a_whole_answer_cut_unseen_is_charged_its_worst_case() -> None:
    meter = Meter("gpt-4o-mini", prompt_tokens=120, completion_cap=4 * 12000)
    meter.attempt_failed(billable=True, whole=True)
    total = meter.total()
    assert (total.prompt_tokens, total.completion_tokens) == (120, 48000)


def test_a_stream_cut_after_tool_calls_began_is_charged_each_calls_framing() -> None:
    meter = Meter("gpt-4o-mini", prompt_tokens=50, completion_cap=1000)
    for _ in range(3):  # three choices each begin a call: the name comes with the call's id
        meter.received("get_weather", calls=1)
    meter.received('{"city":')
    names = counter_for("gpt-4o-mini")("get_weather" * 3 + '{"city":')
    assert meter.total().completion_tokens == max(names, 4) + 3 * TOKENS_PER_TOOL_CALL


async def test_another_attempt_after_a_charged_one_needs_time_for_it_and_room_for_its_worst_case() -> None:
    held: list[int] = []

    async def hold_more() -> bool:
        held.append(1)
        return len(held) < 2  # the budget holds one more worst case, not two

    meter = Meter("gpt-4o-mini", prompt_tokens=10, completion_cap=100, hold_more=hold_more)
    meter.attempt_failed(billable=False)  # a 429: never billed, so nothing more to hold
    assert await meter.before_retry(1.0, 50.0)
    assert held == []
    meter.attempt_failed(billable=True, whole=True)
    assert not await meter.before_retry(10.0, 50.0), "the deadline cannot fit a whole attempt"
    assert held == []
    assert await meter.before_retry(60.0, 50.0)
    assert await meter.before_retry(60.0, 50.0), "that charged attempt's room is held already"
    meter.attempt_failed(billable=True, whole=True)
    assert not await meter.before_retry(60.0, 50.0), "no room for a third worst case"
    assert held == [1, 1]
