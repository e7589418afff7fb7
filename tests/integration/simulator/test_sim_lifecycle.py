"""Simulator behaviour around connection and process lifetimes: clients leaving, servers stopping."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bpe_openai
import httpx
import pytest

from tools.simulator.process import SimulatorProcess

PROMPT = [{"role": "user", "content": "Explain why the deployment failed and what to roll back first."}]


@pytest.fixture
def slow_simulator(tmp_path: Path) -> Iterator[SimulatorProcess]:
    # 40 ms per token makes a stream last seconds, so a client can leave half way through.
    args = ("--region", "slow", "--ms-per-token", "40", "--base-latency-ms", "0")
    with SimulatorProcess(*args, log_path=tmp_path / "simulator.log") as sim:
        yield sim


def wait_for_stats(sim: SimulatorProcess, outcome: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        stats: dict[str, Any] = httpx.get(f"{sim.url}/_sim/stats").json()
        if outcome in stats["by_status"]:
            return stats
        time.sleep(0.05)
    pytest.fail(f"no {outcome!r} outcome in {stats}")


def test_a_client_leaving_mid_stream_is_billed_for_what_was_sent(slow_simulator: SimulatorProcess) -> None:
    body = {"model": "m", "messages": PROMPT, "stream": True}
    received: list[str] = []
    with (
        httpx.Client(base_url=slow_simulator.url, headers={"api-key": "k"}) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        for line in response.iter_lines():
            received += [line] if line else []
            if len(received) == 3:  # the role chunk and two content tokens, then hang up
                break

    stats = wait_for_stats(slow_simulator, "client_disconnected")

    assert stats["requests"] == 1
    # The prompt as gpt-4o-mini bills it: o200k tokens of the message, 3 per message, 3 for the reply.
    assert stats["prompt_tokens"] == len(bpe_openai.get_encoding("o200k_base").encode(PROMPT[0]["content"])) + 1 + 3 + 3
    # The server may slip one more token out before it notices; never the whole answer.
    assert 2 <= stats["completion_tokens"] <= 4
    assert "POST /v1/chat/completions -> client_disconnected" in slow_simulator.log()


def test_stopping_the_server_releases_a_request_hanging_on_a_timeout_fault(
    slow_simulator: SimulatorProcess,
) -> None:
    httpx.post(f"{slow_simulator.url}/_sim/faults", json={"status": "timeout"})
    outcome: list[int | str] = []

    def call() -> None:
        try:
            response = httpx.post(
                f"{slow_simulator.url}/v1/embeddings",
                json={"model": "e", "input": "x"},
                headers={"api-key": "k"},
                timeout=30,
            )
            outcome.append(response.status_code)
        except httpx.HTTPError as exc:
            outcome.append(type(exc).__name__)

    caller = threading.Thread(target=call)
    caller.start()
    wait_for_stats(slow_simulator, "timeout")

    started = time.monotonic()
    exit_code = slow_simulator.stop()
    caller.join(timeout=5)

    # uvicorn re-raises SIGTERM once it has shut down cleanly, so the process reports it.
    assert exit_code in (0, -signal.SIGTERM)
    assert "Finished server process" in slow_simulator.log()
    assert time.monotonic() - started < 3, "a hanging request must not hold the server for 600 s"
    assert outcome == [504]
