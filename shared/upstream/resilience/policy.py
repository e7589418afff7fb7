"""Runs one model call with retries (tenacity), failover across endpoints and a deadline.

Each attempt picks an endpoint from the pool. A failure parks the endpoint for its Retry-After
and feeds its breaker; the next attempt goes at once to another usable endpoint, and only when
none is usable does it wait (the provider's Retry-After, else jittered backoff). It does not wait
for an open breaker: when every endpoint is behind one, they are down, and a request that waited out
the open period would mostly find them down again; it ends at once with a 503 whose Retry-After is
the soonest reopening, or (a routed request) goes to the other tier. Attempts stop at the attempt
limit, at the request deadline, or when the process-wide retry budget says no.
The budget is spent only by attempts that go back to an endpoint this request already tried:
failing over to a fresh endpoint adds no load to the one that failed, and a cold start's first
burst against a dead region must still fail over in full.
An attempt cut by the request deadline (the caller's time, REQUEST_DEADLINE_S) is not held
against its endpoint; the endpoint's own timeout (MODEL_TIMEOUT_S: no byte for that long) is.
A non-streamed attempt has a time limit of its own instead, from what it asks for (its output cap
x n at the endpoint's slowest pace, plus MODEL_TIMEOUT_S, within RESPONSE_LIMIT_S of the call's
start): the deadline bounds when attempts and waits may begin, not how long a generation may take.
Running out of the own limit measures the request's size, not the endpoint's health, so it is not
held against the endpoint either.
An attempt the provider may have billed (cut after it accepted the call) is tried again only when
`before_retry` agrees: the caller's budget must hold another worst case, and the deadline a whole
attempt (docs/accounting.md, "Time limits").
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from shared.core.clock import Clock
from shared.core.errors import AppError, ServiceUnavailable, UpstreamRefused, UpstreamThrottled
from shared.core.settings import RESPONSE_LIMIT_S
from shared.core.values import UPSTREAM_REQUEST_ID
from shared.upstream.endpoints import Endpoint
from shared.upstream.failures import UpstreamFailure, classify, provider_error
from shared.upstream.resilience.backoff import next_wait
from shared.upstream.resilience.events import UNOBSERVED, ResilienceEvents
from shared.upstream.resilience.pool import EndpointPool
from shared.upstream.resilience.retry_budget import RetryBudget

log = logging.getLogger(__name__)
T = TypeVar("T")
# Asked before an attempt that follows a failed one, with the seconds left to the deadline and the
# next attempt's own time limit (None: none): False ends the call with the last failure.
BeforeRetry = Callable[[float, float | None], Awaitable[bool]]


@dataclass(frozen=True)
class RetrySettings:
    max_attempts: int = 3
    deadline_s: float = 30.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 8.0
    # A non-streamed attempt's time limit, before its output: MODEL_TIMEOUT_S.
    attempt_base_s: float = 20.0


class AttemptFailed(Exception):
    """One attempt's failure as the policy sees it (the SDK's exception is the cause)."""

    def __init__(self, endpoint: str | None, failure: UpstreamFailure) -> None:
        super().__init__(f"attempt on {endpoint or 'no endpoint'} failed: {failure.kind} {failure.status}")
        self.endpoint = endpoint
        self.failure = failure


class DeadlineReached(AttemptFailed):
    """The request's own deadline cut the attempt: the caller ran out of time, which says nothing of
    the endpoint's health (its own timeout, MODEL_TIMEOUT_S in the SDK client, is what counts)."""


class OwnLimitReached(AttemptFailed):
    """A non-streamed attempt ran out of the time its own request asked for: slow or long work,
    which says nothing of the endpoint's health (its breaker is left alone)."""


class RetryDeclined(AttemptFailed):
    """The caller declined another attempt after one the provider may have billed (before_retry)."""


def _retryable(exc: BaseException) -> bool:
    # A call that outgrew its own time limit would outgrow it elsewhere too, and was maybe billed:
    # it ends there, paid once (docs/accounting.md, "Time limits").
    return (isinstance(exc, AttemptFailed) and not isinstance(exc, DeadlineReached | OwnLimitReached | RetryDeclined)
            and exc.failure.kind != "refused")


class _Trail:
    """Where one call's attempts went, for their spans and the retry and failover metrics."""

    __slots__ = ("events", "idle_s", "last", "number", "previous", "wait_s")

    def __init__(self, events: ResilienceEvents) -> None:
        self.events = events
        self.number, self.wait_s, self.idle_s, self.previous = 0, 0.0, 0.0, ""
        self.last: AttemptFailed | None = None  # the latest attempt's failure

    def next(self, state: RetryCallState) -> None:
        self.number = state.attempt_number
        self.wait_s, self.idle_s = state.idle_for - self.idle_s, state.idle_for

    def chose(self, endpoint: str) -> None:
        if self.number > 1:
            self.events.retried(endpoint, self.previous)
        self.previous = endpoint


class ResiliencePolicy:
    def __init__(self, pool: EndpointPool, budget: RetryBudget, settings: RetrySettings, clock: Clock,
                 *, rng: random.Random | None = None, events: ResilienceEvents = UNOBSERVED) -> None:
        self.pool = pool
        self.events = events
        self.budget = budget
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311  jitter, not security

    def reset(self) -> None:
        """The process's resilience state as after a start: breakers closed, no endpoint parked,
        the retry budget full. Only LOCAL_CONTROL's route calls it (docs/breakers.md)."""
        self.pool.reset()
        self.budget.reset()

    def time_limit_s(self, endpoint: Endpoint, work_tokens: int | None) -> float | None:
        """A non-streamed attempt's own time limit: `work_tokens` (output cap x n) at the endpoint's
        slowest pace, plus the base; None for an attempt without one (a stream until its first content)."""
        if work_tokens is None:
            return None
        return self.settings.attempt_base_s + work_tokens / endpoint.config.slowest_tokens_per_s

    def call_limit_s(self, endpoints: Sequence[Endpoint], work_tokens: int | None) -> float | None:
        """The longest time limit an attempt of this call may get (the slowest endpoint's), before
        the RESPONSE_LIMIT_S cap."""
        limits = [self.time_limit_s(e, work_tokens) for e in endpoints]
        return max((x for x in limits if x is not None), default=None)

    async def call(self, endpoints: Sequence[Endpoint], attempt: Callable[[Endpoint], Awaitable[T]], *,
                   work_tokens: int | None = None, before_retry: BeforeRetry | None = None) -> T:
        """`attempt` on the best endpoint, again on failure while allowed; AppError when all failed.
        `work_tokens`: a non-streamed call's output cap x n, which sets each attempt's own time limit."""
        started = self.clock.now()
        deadline = started + self.settings.deadline_s
        tried: set[str] = set()
        # Endpoints that refused our credentials (401/403): never asked again in this request.
        barred: set[str] = set()

        def live() -> list[Endpoint]:
            return [e for e in endpoints if e.name not in barred]

        def stop(state: RetryCallState) -> bool:
            # tenacity has already asked `wait` for the coming sleep (state.upcoming_sleep).
            if state.attempt_number >= self.settings.max_attempts or not live():
                return True
            if self._all_down(live()):
                return True  # an open breaker is not waited for (module docstring)
            if self.clock.now() + state.upcoming_sleep >= deadline:
                return True  # fail now rather than sleep into the deadline
            if self._fresh_endpoint_left(live(), tried):
                return False
            if not self.budget.try_spend():
                log.warning("retry budget exhausted: not retrying")
                return True
            return False

        retrying = AsyncRetrying(
            stop=stop,
            wait=lambda state: self._wait_after(state, live(), tried),
            retry=retry_if_exception(_retryable),
            sleep=self.clock.sleep,
            reraise=True,
        )
        self.budget.record_first_attempt()
        trail = _Trail(self.events)
        try:
            async for state in retrying:
                with state:
                    trail.next(state.retry_state)
                    try:
                        return await self._attempt(live(), attempt, tried, barred, (started, deadline),
                                                   trail=trail, work_tokens=work_tokens, before_retry=before_retry)
                    except AttemptFailed as exc:
                        if not isinstance(exc, RetryDeclined):
                            trail.last = exc
                        raise
        except AttemptFailed as exc:
            last = trail.last or exc  # a declined retry ends the call with the failure before it
            if isinstance(last, OwnLimitReached):
                raise ServiceUnavailable(
                    "The model did not finish within this request's time limit. Ask for fewer tokens "
                    "(max_tokens), or stream the answer (stream: true).") from exc
            raise self._give_up(endpoints, last.failure) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _attempt(self, endpoints: Sequence[Endpoint], attempt: Callable[[Endpoint], Awaitable[T]],
                       tried: set[str], barred: set[str], times: tuple[float, float], *, trail: _Trail,
                       work_tokens: int | None, before_retry: BeforeRetry | None) -> T:
        endpoint = self.pool.choose(endpoints, avoid=tried)
        if endpoint is None:
            raise AttemptFailed(None, UpstreamFailure("retryable", None, self.pool.available_in(endpoints)))
        started, deadline = times
        now = self.clock.now()
        remaining = deadline - now
        own = self.time_limit_s(endpoint, work_tokens)
        if own is not None:
            own = min(own, started + RESPONSE_LIMIT_S - now)
        if trail.number > 1 and before_retry is not None and not await before_retry(remaining, own):
            self.pool.release(endpoint)  # chosen (a half-open probe taken) but never called
            log.warning("not failing over: the attempt before may have been billed and another does not fit")
            raise RetryDeclined(endpoint.name, UpstreamFailure("retryable", None))
        trail.chose(endpoint.name)
        timer = asyncio.timeout(max(0.001, own if own is not None else remaining))
        try:
            async with timer:
                result = await self.events.attempt(endpoint, trail.number, trail.wait_s,
                                         self.pool.breakers[endpoint.name].state.value, lambda: attempt(endpoint))
        except (asyncio.CancelledError, AppError):
            self.pool.release(endpoint)  # the call told nothing of the endpoint's health
            raise
        except TimeoutError as exc:
            if not timer.expired():
                raise self._failed(endpoint, tried, exc) from exc
            # Neither a failure nor a success of the endpoint: its breaker and parking are untouched.
            self.pool.release(endpoint)
            tried.add(endpoint.name)
            cut = UpstreamFailure("retryable", None, maybe_processed=True)
            if own is not None:
                log.warning("model call ran out of its own time limit (%.0f s): endpoint=%s", own, endpoint.name)
                raise OwnLimitReached(endpoint.name, cut) from exc
            log.warning("model call cut at the request deadline: endpoint=%s", endpoint.name)
            raise DeadlineReached(endpoint.name, cut) from exc
        except Exception as exc:
            failed = self._failed(endpoint, tried, exc)
            if failed.failure.kind == "misconfigured":
                barred.add(endpoint.name)  # the key was already re-read once (shared/upstream/clients.py)
            raise failed from exc
        self.pool.record_success(endpoint)
        return result

    def _failed(self, endpoint: Endpoint, tried: set[str], exc: Exception) -> AttemptFailed:
        """The endpoint's own failure (its status, its timeout, a broken connection): it counts."""
        failure = classify(exc)
        tried.add(endpoint.name)
        self.pool.record_failure(endpoint, failure)
        log.warning("model call failed: endpoint=%s kind=%s status=%s error=%s",
                    endpoint.name, failure.kind, failure.status, type(exc).__name__)
        return AttemptFailed(endpoint.name, failure)

    def _wait_after(self, state: RetryCallState, endpoints: Sequence[Endpoint], tried: set[str]) -> float:
        """No wait while another endpoint is usable; else the provider's Retry-After or backoff."""
        if self._fresh_endpoint_left(endpoints, tried):
            return 0.0
        exc = state.outcome.exception() if state.outcome else None
        failure = exc.failure if isinstance(exc, AttemptFailed) else None
        retry_after = failure.retry_after_s if failure else None
        until_usable = self.pool.available_in(endpoints) or 0.0
        wait = next_wait(state.attempt_number, retry_after, base_s=self.settings.backoff_base_s,
                         cap_s=self.settings.backoff_cap_s, rng=self.rng)
        return max(wait, until_usable)

    def _all_down(self, endpoints: Sequence[Endpoint]) -> bool:
        """Every endpoint is behind an open breaker (not only parked for a Retry-After)."""
        return all(self.pool.breakers[e.name].reopens_in() > 0 for e in endpoints)

    def _fresh_endpoint_left(self, endpoints: Sequence[Endpoint], tried: set[str]) -> bool:
        return any(self.pool.usable(e) for e in endpoints if e.name not in tried)

    def _give_up(self, endpoints: Sequence[Endpoint], failure: UpstreamFailure) -> AppError:
        headers = {UPSTREAM_REQUEST_ID: failure.request_id} if failure.request_id else {}
        if failure.kind == "refused":
            return UpstreamRefused("The model endpoint refused this request (for example its content or size).",
                                   provider=provider_error(failure.refusal, failure.status, _ours(endpoints)),
                                   headers=headers)
        retry_after = self.pool.available_in(endpoints) or failure.retry_after_s or 5.0
        if failure.status == 429 and not any(self.pool.breakers[e.name].reopens_in() for e in endpoints):
            # Throttled to the last attempt, and no region down behind an open breaker: the client
            # may come back when the soonest region frees up (its SDK retries a 429, not a 503).
            return UpstreamThrottled("Every model endpoint is at its rate limit. Retry after the Retry-After.",
                                     retry_after_s=max(1.0, retry_after), headers=headers)
        return ServiceUnavailable("No model endpoint could answer right now. Try again later.",
                                  retry_after_s=max(1.0, retry_after), headers=headers)


def _ours(endpoints: Sequence[Endpoint]) -> set[str]:
    """What a provider's message must not tell the client: our endpoints, deployments and hosts."""
    names: set[str] = set()
    for e in endpoints:
        host = urlsplit(e.config.endpoint).hostname or ""
        names |= {e.name, e.config.deployment, e.config.embedding_deployment or "", host, host.split(".")[0]}
    return names
