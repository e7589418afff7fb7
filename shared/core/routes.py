"""Model routes (`ROUTES`, a tenant's `routes`): a name clients ask for as the model, and the two
tiers a request's complexity chooses between (docs/routing.md). Also what a decision says."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

Tier = Literal["simple", "complex"]
RouteName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
ROUTE_HEADER = "x-aigw-route"


class SecondOpinion(BaseModel):
    """`{"model": "gpt-4o-mini", "band": [0.3, 0.7]}`: a request scored inside the band (low
    inclusive, high exclusive) is also judged by `model`, whose verdict picks the tier; the call is
    charged to the tenant like any other (docs/routing.md#a-second-opinion)."""

    model_config = {"extra": "forbid", "frozen": True}

    model: str = Field(min_length=1)
    band: tuple[float, float] = (0.3, 0.7)

    @model_validator(mode="after")
    def _a_band(self) -> SecondOpinion:
        low, high = self.band
        if not 0 <= low < high <= 1:
            raise ValueError("band must be [low, high] with 0 <= low < high <= 1")
        return self

    def covers(self, score: float) -> bool:
        return self.band[0] <= score < self.band[1]


class Route(BaseModel):
    """`{"simple": "gpt-4o-mini", "complex": "gpt-4o", "threshold": 0.5}`: a request scored at or
    above `threshold` goes to `complex`, any other to `simple`."""

    model_config = {"extra": "forbid", "frozen": True}

    simple: str = Field(min_length=1)
    complex: str = Field(min_length=1)
    threshold: float = Field(default=0.5, ge=0, le=1)
    # When every endpoint of the chosen tier is down, the other tier answers (and the header says so).
    fallback_across_tiers: bool = True
    # Off unless set: a model's verdict on the requests the scorer is least sure of.
    second_opinion: SecondOpinion | None = None

    @model_validator(mode="after")
    def _two_tiers(self) -> Route:
        if self.simple == self.complex:
            raise ValueError("simple and complex name the same model: a route needs two")
        return self

    def model(self, tier: Tier) -> str:
        return self.simple if tier == "simple" else self.complex


Routes = dict[RouteName, Route]


def closed_names(schema: dict[str, Any]) -> None:
    """A routes map's JSON Schema as validation reads it: pydantic describes constrained keys with
    patternProperties, which lets any other key through; propertyNames and additionalProperties do not."""
    for node in [schema, *schema.get("anyOf", [])]:
        pattern = node.pop("patternProperties", None)
        if pattern:
            ((names, value),) = pattern.items()
            node["propertyNames"] = {"pattern": names, "minLength": 1, "maxLength": 64}
            node["additionalProperties"] = value


def route_problems(routes: Mapping[str, Route], owner: str, models: Iterable[str], names: Iterable[str],
                   priced: Iterable[str]) -> list[str]:
    """Why these routes cannot serve: a target that is no configured model or has no price, or a
    route named like a model, deployment or endpoint (a client could not tell which it meant)."""
    known, taken, prices = set(models), set(names), set(priced)
    problems = []
    for name, route in routes.items():
        if name in taken:
            problems.append(f"{owner} route {name!r} has the name of a configured model, deployment or endpoint")
        targets = [("simple", route.simple), ("complex", route.complex)]
        if route.second_opinion is not None:
            targets.append(("second_opinion", route.second_opinion.model))
        for role, target in targets:
            if target not in known:
                problems.append(f"{owner} route {name!r}: its {role} model {target!r} is not a model of AI_ENDPOINTS")
            elif target not in prices:
                problems.append(f"{owner} route {name!r}: its {role} model {target!r} has no price in MODEL_PRICES")
    return problems


@dataclass(frozen=True)
class RouteDecision:
    """Where a route sent one request: the tier its score chose, and the model that runs it
    (the other tier's, when `fallback` says the chosen one was down)."""

    route: str
    tier: Tier  # the tier the score chose
    score: float
    model: str  # the model the request runs on
    complex_model: str  # what the savings are measured against
    fallback: bool = False  # the chosen tier was down: the other tier's model runs it
    second_opinion: Tier | None = None  # the judging model's verdict, which chose `tier`, when one was asked

    @property
    def served_tier(self) -> Tier:
        if not self.fallback:
            return self.tier
        return "complex" if self.tier == "simple" else "simple"

    def header(self) -> str:
        """`auto -> gpt-4o (complex, 0.82)`; after a fallback, `auto -> gpt-4o (complex, 0.31;
        fallback: simple tier unavailable)`; judged, `auto -> gpt-4o (complex, 0.41; second opinion:
        complex)`."""
        judged = f"; second opinion: {self.second_opinion}" if self.second_opinion is not None else ""
        why = f"; fallback: {self.tier} tier unavailable" if self.fallback else ""
        return f"{self.route} -> {self.model} ({self.served_tier}, {self.score:.2f}{judged}{why})"
