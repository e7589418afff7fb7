"""The detector's second layer: a logistic model over cue-word features (injection_cues.toml, injection_model.json)."""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.safety.readings import SENTENCE_END, sentence_tokens

__all__ = ["CUES_FILE", "MODEL_FILE", "PLAIN", "CueModel", "Cues", "Feature", "load_model"]

CUES_FILE = Path(__file__).with_name("injection_cues.toml")
MODEL_FILE = Path(__file__).with_name("injection_model.json")
PLAIN = "plain"  # the reading of the text as written (folded); others are named by their codec or 'obfuscated'


@dataclass(frozen=True)
class Feature:
    name: str
    family: str  # "" when it belongs to no family alone


class Cues:
    """The features of injection_cues.toml and how a text's readings fire them."""

    def __init__(self, data: dict[str, Any], families: Sequence[str], where: str = CUES_FILE.name) -> None:
        self.window = int(data["window"])
        self._openers = frozenset(w.encode() for w in data["openers"])
        features: list[Feature] = []
        cues: list[tuple[str, str]] = []
        word_cues: dict[bytes, tuple[int, ...]] = {}
        for i, cue in enumerate(data["cue"]):
            name, family = cue["name"], cue["family"]
            if family and family not in families:
                raise ValueError(f"{where}: cue {name!r}: family must be one of {', '.join(families)} or \"\"")
            if any(name == known for known, _ in cues):
                raise ValueError(f"{where}: the cue {name!r} is defined twice")
            cues.append((name, family))
            for word in cue["words"]:
                word_cues[word.encode()] = (*word_cues.get(word.encode(), ()), i)
            features += [Feature(f"cue:{name}", family), Feature(f"start:{name}", family)]  # 2i and 2i + 1
        pair_at = len(features)  # pair:<i>+<j> is feature pair_at + i * len(cues) + j
        for first, family in cues:
            features += [Feature(f"pair:{first}+{then}", family or then_family) for then, then_family in cues]
        self._markers: list[tuple[tuple[str, ...], int]] = []
        for marker in data["marker"]:
            self._markers.append((tuple(marker["texts"]), len(features)))
            features.append(Feature(f"marker:{marker['name']}", marker["family"]))
        self._decoded = len(features)
        features += [Feature("reading:decoded", "encoded_payload"), Feature("reading:obfuscated", "")]
        self.features = tuple(features)
        # Words with the same cues share an id, so a text's work is a set of ids and of id pairs, each turned into
        # features once at the end: a 4,000-character prompt dense in cue words holds about 150 of them.
        combos = sorted(set(word_cues.values()))
        self._ids = {word: combos.index(c) for word, c in word_cues.items()}
        self._ids[SENTENCE_END] = -1
        self._combos = len(combos)
        self._cue_features = [tuple(2 * i for i in c) for c in combos]
        self._start_features = [tuple(2 * i + 1 for i in c) for c in combos]
        self._pair_features = [tuple(pair_at + i * len(cues) + j for i in a for j in b) for a in combos
                               for b in combos]

    def fire(self, readings: Sequence[tuple[str, str]]) -> dict[int, str]:
        """The features each reading (how, folded text) fires, each with the first reading that fired it."""
        fired: dict[int, str] = {}
        for how, folded in readings:
            if how != PLAIN:
                fired.setdefault(self._decoded + (how == "obfuscated"), how)
            for index in self._fire_one(folded):
                fired.setdefault(index, how)
        return fired

    def _fire_one(self, folded: str) -> set[int]:
        words = sentence_tokens(folded)
        ids, window, openers, size = self._ids, self.window, self._openers, self._combos
        hits = [(at, ids[w]) for at, w in enumerate(words) if w in ids]  # sentence ends too, as id -1
        seen: set[int] = set()
        starts: set[int] = set()
        pairs: set[int] = set()
        for k, (at, combo) in enumerate(hits):
            if combo < 0:
                continue
            seen.add(combo)
            before = words[at - 1] if at else SENTENCE_END
            if before == SENTENCE_END or (before in openers and (at == 1 or words[at - 2] == SENTENCE_END)):
                starts.add(combo)
            for later, then in hits[k + 1:k + 1 + window]:
                if then < 0 or later - at > window:
                    break
                pairs.add(combo * size + then)
        out: set[int] = set()
        for combo in seen:
            out.update(self._cue_features[combo])
        for combo in starts:
            out.update(self._start_features[combo])
        for pair in pairs:
            out.update(self._pair_features[pair])
        for texts, index in self._markers:
            if any(t in folded for t in texts):
                out.add(index)
        return out


class CueModel:
    """Cues with fitted weights: a text's readings score bias + the weights of the features they fire; at the
    threshold or above, the text is an injection, reported under the family its fired features weigh most for."""

    def __init__(self, cues: Cues, weights: dict[str, float], bias: float, threshold: float) -> None:
        names = {f.name for f in cues.features}
        unknown, missing = sorted(set(weights) - names), sorted(names - set(weights))
        if unknown or missing:
            raise ValueError(f"{MODEL_FILE.name} does not fit {CUES_FILE.name}: weights for unknown features "
                             f"{unknown}, none for {missing} (refit: python -m bench.safety_fit)")
        self.cues = cues
        self.weights = tuple(weights[f.name] for f in cues.features)
        self.bias, self.threshold = bias, threshold

    def score(self, fired: dict[int, str]) -> float:
        """The log-odds of injection."""
        return self.bias + math.fsum(self.weights[i] for i in fired)

    def judge(self, readings: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
        """(family, rule) when the readings score at the threshold or above, else None."""
        fired = self.cues.fire(readings)
        if self.score(fired) < self.threshold:
            return None
        by_family: dict[str, float] = {}
        for i in fired:
            family, w = self.cues.features[i].family, self.weights[i]
            if family and w > 0:
                by_family[family] = by_family.get(family, 0.0) + w
        ranked = sorted(fired, key=lambda i: (-self.weights[i], self.cues.features[i].name))
        if by_family:
            family = max(sorted(by_family), key=by_family.__getitem__)
            ranked = [i for i in ranked if self.cues.features[i].family == family]
        else:  # only family-less features fired (cannot happen with a sane bias, but say something true)
            family = "instruction_override"
        top = ranked[0]
        how = fired[top]
        where = "" if how == PLAIN else f"{how}:"
        return ("encoded_payload" if how not in (PLAIN, "obfuscated") else family,
                f"model:{where}{self.cues.features[top].name}")


def load_cues(families: Sequence[str], path: Path = CUES_FILE) -> Cues:
    return Cues(tomllib.loads(path.read_text(encoding="utf-8")), families, path.name)


def load_model(families: Sequence[str], cues_path: Path = CUES_FILE, path: Path = MODEL_FILE) -> CueModel:
    """The cues with the weights fitted for them, checked to match one another."""
    data = json.loads(path.read_text(encoding="utf-8"))
    weights = {f["name"]: float(f["weight"]) for f in data["features"]}
    return CueModel(load_cues(families, cues_path), weights, float(data["bias"]), float(data["threshold"]))
