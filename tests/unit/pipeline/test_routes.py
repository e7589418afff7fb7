"""Model routing (shared/pipeline/routes.py, shared/core/routes.py): which tier a request goes to,
what the tenant may ask for, a tier down, the settings the app refuses, and the savings it reports."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.core.errors import ConfigError, Forbidden, ServiceUnavailable
from shared.core.models import Usage
from shared.core.routes import ROUTE_HEADER, Route, RouteDecision, SecondOpinion
from shared.core.settings import EndpointConfig, ModelPrice, TenantLimits, load_settings
from shared.core.values import Delta
from shared.identity.auth import Principal
from shared.observability import names as n
from shared.observability import tracing
from shared.observability.record import Record
from shared.pipeline.exchange import CallContext, Exchange
from shared.pipeline.routes import Router, stream_or_fallback, whole_or_fallback
from shared.state.budget import Estimate
from shared.upstream.endpoints import Endpoint
from shared.upstream.failures import UpstreamFailure
from shared.upstream.groups import ModelGroups
from tests.unit.resilience.helpers import FakeClock, policy
from tests.unit.shared.test_telemetry_spans import _points, telemetry_on  # noqa: F401  a fixture
from tools.appsettings import environment

AUTO = Route(simple="small", complex="large", threshold=0.5)
EASY = [{"role": "user", "content": "Hi! Thanks a lot."}]
HARD = [{"role": "user", "content": "Write a Python function that parses a CSV, then compute the totals, prove the "
                                    "bound, and explain step by step. Constraints: no pandas, must stream, must "
                                    "return JSON. ```python\ndef parse(path):\n    pass\n```"}]
PRICES = {"small": ModelPrice(input_per_1m=0.15, output_per_1m=0.6), "large": ModelPrice(input_per_1m=2.5,
                                                                                           output_per_1m=10.0)}


def groups() -> ModelGroups:
    """Two model groups of two endpoints each, behind one real pool of breakers."""
    names = ["small-1", "small-2", "large-1", "large-2"]
    endpoints = [Endpoint(EndpointConfig(name=name, kind="openai", endpoint=f"http://{name}",
                                         model=name.split("-")[0], priority=int(name[-1])), wire=None)  # type: ignore[arg-type]
                 for name in names]
    return ModelGroups(endpoints, policy(FakeClock(), names))


def principal(routes: dict[str, Route] | None = None, allowed: tuple[str, ...] | None = None) -> Principal:
    return Principal("t", "k", limits=TenantLimits(allowed_models=allowed), routes=routes or {})


def down(router: Router, model: str) -> None:
    """Every endpoint of the model's group with its breaker open."""
    assert router.groups is not None
    for endpoint in router.groups.group(model):
        for _ in range(5):
            router.groups.policy.pool.record_failure(endpoint, UpstreamFailure("retryable", 503))


def test_a_route_sends_each_request_to_the_tier_its_score_chooses() -> None:
    router = Router({"auto": AUTO}, groups(), PRICES)

    easy, hard = router.decide(principal(), "auto", EASY), router.decide(principal(), "auto", HARD)

    assert easy is not None and (easy.tier, easy.model, easy.fallback) == ("simple", "small", False)
    assert hard is not None and (hard.tier, hard.model, hard.fallback) == ("complex", "large", False)
    assert easy.score < 0.5 <= hard.score and easy.complex_model == hard.complex_model == "large"
    assert router.decide(principal(), "small", EASY) is None, "a model's own name is no route"
    assert router.decide(principal(), None, EASY) is None


def test_a_tenants_own_route_wins_and_its_allow_list_bars_a_route_to_a_model_it_may_not_use() -> None:
    router = Router({"auto": AUTO}, groups(), PRICES)
    own = principal({"auto": AUTO.model_copy(update={"threshold": 1.0})})

    decision = router.decide(own, "auto", HARD)

    assert decision is not None and decision.model == "small"
    barred = principal(allowed=("small",))
    assert router.routes(barred) == {} and router.routes(principal(allowed=("small", "large"))) == {"auto": AUTO}
    with pytest.raises(Forbidden, match="allowed_models"):
        router.decide(barred, "auto", EASY)


def test_a_tier_whose_endpoints_are_all_down_is_skipped_unless_the_route_forbids_it() -> None:
    router = Router({"auto": AUTO, "strict": AUTO.model_copy(update={"fallback_across_tiers": False})}, groups(),
                    PRICES)
    down(router, "small")

    skipped, kept = router.decide(principal(), "auto", EASY), router.decide(principal(), "strict", EASY)

    assert skipped is not None and (skipped.tier, skipped.model, skipped.fallback) == ("simple", "large", True)
    assert skipped.served_tier == "complex"
    assert kept is not None and (kept.model, kept.fallback) == ("small", False)
    assert router.fallback(principal(), kept) is None, "the route forbids it"
    assert router.fallback(principal(), skipped) is None, "once only"


def test_a_failed_tier_is_offered_the_other_once() -> None:
    router = Router({"auto": AUTO}, groups(), PRICES)
    decision = router.decide(principal(), "auto", HARD)

    other = router.fallback(principal(), decision)

    assert other is not None and (other.model, other.tier, other.fallback) == ("small", "complex", True)
    assert other.header().startswith("auto -> small (simple, ") and other.header().endswith(
        "; fallback: complex tier unavailable)")
    assert router.fallback(principal(), None) is None


def test_the_header_names_route_model_tier_and_score() -> None:
    assert RouteDecision("auto", "complex", 0.8234, "gpt-4o", "gpt-4o").header() == "auto -> gpt-4o (complex, 0.82)"


JUDGED = AUTO.model_copy(update={"second_opinion": SecondOpinion(model="small", band=(0.2, 0.8))})


def test_a_second_opinion_is_asked_only_inside_its_band_and_of_a_model_the_tenant_may_use() -> None:
    router = Router({"auto": JUDGED, "plain": AUTO}, groups(), PRICES)
    inside = RouteDecision("auto", "complex", 0.5, "large", "large")

    assert router.second_opinion(principal(), inside) == "small"
    assert router.second_opinion(principal(), replace(inside, score=0.2)) == "small", "the band's low end is in"
    assert router.second_opinion(principal(), replace(inside, score=0.8)) is None, "its high end is out"
    assert router.second_opinion(principal(), replace(inside, score=0.1)) is None
    assert router.second_opinion(principal(), replace(inside, route="plain")) is None, "a route without one"
    assert router.second_opinion(principal(), None) is None
    barred = Router({"auto": JUDGED.model_copy(update={"second_opinion": SecondOpinion(model="other")})},
                    groups(), PRICES)
    assert barred.second_opinion(principal(allowed=("small", "large")), inside) is None, "not in allowed_models"


def test_the_second_opinion_picks_the_tier_and_says_so() -> None:
    router = Router({"auto": JUDGED}, groups(), PRICES)
    scored = router.decide(principal(), "auto", HARD)
    assert scored is not None and scored.tier == "complex"

    judged = router.judged(principal(), scored, "simple")

    assert (judged.tier, judged.model, judged.score, judged.fallback) == ("simple", "small", scored.score, False)
    assert judged.header() == f"auto -> small (simple, {scored.score:.2f}; second opinion: simple)"
    agreed = router.judged(principal(), scored, "complex")
    assert (agreed.tier, agreed.model) == ("complex", "large")
    assert agreed.header().endswith("; second opinion: complex)")
    down(router, "small")
    skipped = router.judged(principal(), scored, "simple")
    assert (skipped.model, skipped.fallback, skipped.served_tier) == ("large", True, "complex")
    assert skipped.header().endswith("; second opinion: simple; fallback: simple tier unavailable)")


def test_a_second_opinions_band_must_be_a_band() -> None:
    for band in ((0.5, 0.5), (0.7, 0.3), (-0.1, 0.5), (0.2, 1.1)):
        with pytest.raises(ValueError, match="band must be"):
            SecondOpinion(model="small", band=band)


def settings_with(routes: object, prices: dict[str, Any], tenants: list[dict[str, Any]] | None = None) -> None:
    endpoints = [{"name": f"p-{m}", "kind": "openai", "endpoint": "http://x", "model": m} for m in ("small", "large")]
    with environment({"AI_ENDPOINTS": json.dumps(endpoints), "COSMOS_ENDPOINT": "http://c", "TENANTS":
                      json.dumps(tenants or []), "ROUTES": json.dumps(routes), "MODEL_PRICES": json.dumps(prices)}):
        load_settings()


PRICED = {m: {"input_per_1m": 1, "output_per_1m": 1} for m in ("small", "large")}


@pytest.mark.parametrize(("routes", "prices", "says"), [
    ({"auto": {"simple": "small", "complex": "huge"}}, PRICED,
     "ROUTES route 'auto': its complex model 'huge' is not a model of AI_ENDPOINTS"),
    ({"auto": {"simple": "small", "complex": "large"}}, {"small": PRICED["small"]},
     "ROUTES route 'auto': its complex model 'large' has no price in MODEL_PRICES"),
    ({"small": {"simple": "small", "complex": "large"}}, PRICED,
     "ROUTES route 'small' has the name of a configured model, deployment or endpoint"),
    ({"auto": {"simple": "small", "complex": "small"}}, PRICED, "a route needs two"),
    ({"auto": {"simple": "small", "complex": "large", "second_opinion": {"model": "judge"}}}, PRICED,
     "ROUTES route 'auto': its second_opinion model 'judge' is not a model of AI_ENDPOINTS"),
    ({"auto": {"simple": "small", "complex": "large", "second_opinion": {"model": "small", "band": [0.9, 0.1]}}},
     PRICED, "band must be"),
])
def test_a_route_that_cannot_serve_refuses_the_start_naming_it(routes: object, prices: dict[str, Any],
                                                                 says: str) -> None:
    with pytest.raises(ConfigError, match=says.replace("(", r"\(")):
        settings_with(routes, prices)


def test_a_tenants_route_is_checked_at_start_too() -> None:
    tenant = {"tenant": "t", "keys": [{"id": "k", "sha256": "0" * 64}],
              "routes": {"auto": {"simple": "small", "complex": "gone"}}}
    with pytest.raises(ConfigError, match="TENANTS: tenant 't' route 'auto': its complex model 'gone'"):
        settings_with({}, PRICED, [tenant])
    settings_with({"auto": {"simple": "small", "complex": "large"}}, PRICED)  # and a good one starts
    settings_with({"auto": {"simple": "small", "complex": "large", "second_opinion": {"model": "small"}}}, PRICED)


async def test_the_routing_stage_says_where_it_went_and_counts_the_savings(
        telemetry_on: InMemorySpanExporter) -> None:  # noqa: F811
    router = Router({"auto": AUTO}, groups(), PRICES)
    decision = router.decide(principal(), "auto", EASY)
    assert decision is not None
    ex = Exchange(CallContext(Principal("savings-t", "k"), "cid"), "chat", decision.model, None, Estimate(10, 10),
                  _nothing, route=decision)

    async def nxt(_: Exchange) -> AsyncGenerator[Delta, None]:
        ex.meter.reported(Usage(prompt_tokens=1000, completion_tokens=500, total_tokens=1500))
        return _nothing()

    record = Record(route="v1/chat/completions")
    with tracing.active(record):
        await router.stage(ex, nxt)
        ex.finish()
    await asyncio.gather(*record.settling)

    assert ex.headers[ROUTE_HEADER] == decision.header()
    assert record.routing == {n.ROUTING_ROUTE: "auto", n.ROUTING_TIER: "simple",
                              n.ROUTING_SCORE: round(decision.score, 4), n.ROUTING_FALLBACK: False}
    points = [p for p in _points()[n.METRIC_ROUTING_SAVINGS] if p.attributes[n.TENANT] == "savings-t"]
    # large: 1000 x 2.5 + 500 x 10 = 7,500 micro-USD; small: 1000 x 0.15 + 500 x 0.6 = 450.
    assert [round(p.value, 6) for p in points] == [0.00705]
    assert points[0].attributes[n.ROUTING_ROUTE] == "auto" and points[0].attributes[n.GEN_AI_REQUEST_MODEL] == "small"


async def _nothing() -> AsyncGenerator[Delta, None]:
    return
    yield


def test_a_route_to_a_model_not_configured_is_not_a_tier_down() -> None:
    """A tenant's route changed at run time to a model this app does not serve: resolving the model
    names it (404), the request never slips silently to the other tier."""
    router = Router({}, groups(), PRICES)
    decision = router.decide(principal({"auto": Route(simple="gone", complex="large")}), "auto", EASY)
    assert decision is not None and (decision.model, decision.fallback) == ("gone", False)


async def _deltas(*items: Delta | Exception) -> AsyncGenerator[Delta, None]:
    for item in items:
        if isinstance(item, Exception):
            raise item
        yield item


async def _read(deltas: AsyncGenerator[Delta, None]) -> list[str]:
    return [d.content async for d in deltas]


async def test_a_stream_falls_back_only_before_its_answer_began() -> None:
    down = ServiceUnavailable("No model endpoint could answer right now.")
    other = _deltas(Delta(content="from the other tier"))

    assert await _read(stream_or_fallback(_deltas(Delta(), down), lambda: other)) == ["", "from the other tier"]
    with pytest.raises(ServiceUnavailable):  # content went out: a cut, never a second answer
        await _read(stream_or_fallback(_deltas(Delta(content="half"), down), lambda: _deltas(Delta(content="x"))))
    with pytest.raises(ServiceUnavailable):  # no other tier to go to
        await _read(stream_or_fallback(_deltas(down), lambda: None))


async def test_a_whole_answer_falls_back_once_on_a_503_only() -> None:
    router = Router({"auto": AUTO}, groups(), PRICES)
    first = router.decide(principal(), "auto", EASY)
    ran: list[str] = []

    async def run(decision: RouteDecision | None) -> str:
        assert decision is not None
        ran.append(decision.model)
        if decision.model == "small":
            raise ServiceUnavailable("down")
        return decision.model

    assert await whole_or_fallback(run, first, functools.partial(router.fallback, principal())) == "large"
    assert ran == ["small", "large"]

    async def refused(decision: RouteDecision | None) -> str:
        if decision is not None and decision.model == "small":
            raise Forbidden("no")
        return "large"

    with pytest.raises(Forbidden):  # only "could not answer" moves to the other tier
        await whole_or_fallback(refused, first, functools.partial(router.fallback, principal()))
