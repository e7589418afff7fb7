"""The complexity score of a chat request: a logistic model over its features, weights from weights.json."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from shared.routing.features import features

WEIGHTS_PATH = Path(__file__).with_name("weights.json")


@dataclass(frozen=True)
class Score:
    """How complex a request is, 0 (simple) to 1 (complex), and the features it was computed from."""

    value: float
    features: Mapping[str, float]


@dataclass(frozen=True)
class Weights:
    """A fitted logistic model: score = sigmoid(bias + sum of weight x feature)."""

    weights: Mapping[str, float]
    bias: float
    meta: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Weights:
        """Weights from weights.json's shape: {"weights": {...}, "bias": b, "meta": {...}}."""
        return cls({k: float(v) for k, v in data["weights"].items()}, float(data["bias"]), dict(data.get("meta", {})))

    def to_json(self) -> dict[str, Any]:
        """The shape weights.json is written in."""
        return {"weights": dict(self.weights), "bias": self.bias, "meta": dict(self.meta)}

    def apply(self, values: Mapping[str, float]) -> float:
        """The score of these feature values; a feature the weights do not name counts for nothing."""
        z = self.bias + sum(weight * values.get(name, 0.0) for name, weight in self.weights.items())
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


@cache
def default_weights() -> Weights:
    """The shipped weights, read once per process (bench/routing_fit.py writes them)."""
    return Weights.from_json(json.loads(WEIGHTS_PATH.read_text(encoding="utf-8")))


def score_chat(messages: Sequence[Mapping[str, Any]], *, tools: int = 0, response_format: bool = False,
               weights: Weights | None = None) -> Score:
    """The complexity of an OpenAI-shaped chat (messages with a role and str or part-list content),
    given how many tools it offers and whether it asks for a response_format. Deterministic, offline."""
    values = features(messages, tools=tools, response_format=response_format)
    return Score((weights or default_weights()).apply(values), values)
