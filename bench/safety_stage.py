"""`python -m bench safety_stage`: what the guard stage adds to a request, p50 and p99: the built-in
layers alone, then with the local Content Safety and Language server (tools/contentsafety) behind them.

Each request is a 4,000-character benign look-alike prompt (bench/data/safety) through the real
Guard stage (screening, then the redaction of a whole 1,000-character answer with the tenant's
kinds), against the same exchange with no guard: the difference is the stage's cost. In process,
no app: what is measured is the stage, not HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic import SecretStr

from bench.safety import mark, percentile
from bench.safety_corpus import labelled
from shared.core.clock import SystemClock
from shared.core.models import ChatMessage, Usage
from shared.core.safety_policy import SafetyPolicy
from shared.core.values import Completion, Delta
from shared.identity.auth import Principal
from shared.identity.secrets import LocalSecrets
from shared.moderation.contentsafety import ContentSafety
from shared.moderation.language import Language
from shared.moderation.screening import Screening
from shared.moderation.service import KeyOrIdentity
from shared.pipeline.exchange import CallContext, Exchange, Reply
from shared.pipeline.guard import Guard
from shared.pipeline.prompt import MessagesPrompt
from shared.safety.detector import detect_injection
from shared.state.budget import Estimate
from tools.contentsafety.rules import attack
from tools.localenv import free_port

PROMPT_CHARS = 4000
ANSWER = ("The order 4471-22 shipped on 2024-05-03; version 3.2.1 of the build is live. " * 14)[:1000]
KEY = "bench-safety-key"


async def _drain(ex: Exchange) -> Reply:
    async def reply() -> Reply:
        async for delta in ex.source():
            yield delta

    return reply()


def _exchange(prompt: str, policy: SafetyPolicy) -> Exchange:
    whole = Completion(ANSWER, "stop", "m", Usage(prompt_tokens=1000, completion_tokens=250, total_tokens=1250), "e")

    async def source() -> AsyncIterator[Delta]:
        yield Delta(content=whole.content, whole=whole)

    principal = Principal("bench", "k", safety=policy)
    return Exchange(CallContext(principal, "cid"), "chat", "m", None, Estimate(1000, 250), source,
                    prompt=MessagesPrompt([ChatMessage(role="user", content=prompt)]))


async def _timed(guard: Guard | None, prompts: list[str], policy: SafetyPolicy) -> list[float]:
    spent = []
    for prompt in prompts:
        ex = _exchange(prompt, policy)
        start = time.perf_counter()
        reply = await (guard.stage(ex, _drain) if guard is not None else _drain(ex))
        [_ async for _ in reply]
        spent.append((time.perf_counter() - start) * 1000)
    return spent


async def _measure(label: str, guard: Guard, prompts: list[str], policy: SafetyPolicy,
                   target_ms: float | None) -> bool:
    await _timed(guard, prompts[:20], policy)  # warm: compiled rules, connections
    base = await _timed(None, prompts, policy)
    with_guard = await _timed(guard, prompts, policy)
    p50 = percentile(with_guard, 0.5) - percentile(base, 0.5)
    p99 = percentile(with_guard, 0.99) - percentile(base, 0.99)
    met = target_ms is None or p50 <= target_ms
    target = f"  target p50 <= {target_ms:g} ms: {mark(met)}" if target_ms is not None else ""
    print(f"{label}: added p50 {p50:.3f} ms, p99 {p99:.3f} ms over {len(prompts)} requests{target}")
    return met


def _server() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tools.contentsafety", "--port", str(port), "--key", KEY])
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{url}/_cs/stats", timeout=1).raise_for_status()
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("the local Content Safety server did not start")


async def run(requests: int) -> bool:
    # Look-alikes the detector lets through (a blocked one would measure a refusal, not the stage),
    # and no 4,000 characters of them the Prompt Shields rules would block either.
    benign = [i.text for i in labelled() if i.label == "benign" and detect_injection(i.text) is None
              and not attack(i.text)]
    prompts: list[str] = []
    for i in range(requests * 3):
        text = ""
        while len(text) < PROMPT_CHARS:
            text += benign[(i * 7 + len(text)) % len(benign)] + " "
        if detect_injection(text[:PROMPT_CHARS]) is None and len(prompts) < requests:
            prompts.append(text[:PROMPT_CHARS])
    everything = SafetyPolicy(redact=("secrets", "email", "phone", "credit_card", "iban", "ip", "us_ssn"))
    met = await _measure("built-in layers (detector + every kind redacted)", Guard(Screening(None), None), prompts,
                         everything, 2.0)
    proc, url = _server()
    secrets: Any = LocalSecrets({"k": SecretStr(KEY)})
    clock = SystemClock()
    service = ContentSafety(url, KeyOrIdentity(None, secrets, "k"), clock, timeout_s=5)
    language = Language(url, KeyOrIdentity(None, secrets, "k"), clock, timeout_s=5)
    try:
        await _measure("with the local Content Safety server (Prompt Shields)", Guard(Screening(service), None),
                       prompts, SafetyPolicy(), None)
        await _measure("with Prompt Shields, harm analysis and Language PII", Guard(Screening(service), language),
                       prompts, SafetyPolicy(harm={"hate": 4}, redact=("secrets", "person")), None)
    finally:
        await service.close()
        await language.close()
        proc.terminate()
        proc.wait(10)
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench safety_stage", description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)
    met = asyncio.run(run(args.requests))
    print("target met" if met else "target NOT met")
    return 0
