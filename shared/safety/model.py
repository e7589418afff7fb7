"""The detector's model: a logistic regression over cue-word features (injection_cues.toml), word n-grams and
whether a rule matched, its weights fitted on the dev split (injection_model.json)."""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path
from typing import Any

from shared.safety.readings import SENTENCE_END, sentence_tokens

__all__ = ["CUES_FILE", "MODEL_FILE", "PLAIN", "UNIT_CHARS", "CueModel", "Cues", "Feature", "Gram", "gram_key",
           "grams", "load_model", "parse_gram", "units"]

CUES_FILE = Path(__file__).with_name("injection_cues.toml")
MODEL_FILE = Path(__file__).with_name("injection_model.json")
PLAIN = "plain"  # the reading of the text as written (folded); others are named by their codec or 'obfuscated'
# The model reads a text a unit at a time: a prompt up to this size whole (every text it was fitted on is shorter),
# a longer one cut at sentence ends into pieces of at most this size, each scored alone and the highest score
# kept. A bag of words over a 4,000-character prompt sums the faint evidence of every sentence in it; an attack is
# a sentence or two.
UNIT_CHARS = 600
_SENTENCE_ENDS = re.compile(r"[.!?;:\n]+")


@dataclass(frozen=True)
class Feature:
    name: str
    family: str  # "" when it belongs to no family alone


def _inflections(word: str) -> tuple[str, ...]:
    """A cue word and its regular English inflections (a word of four letters or more, ASCII letters only): the
    cue lists name a word once and the model still sees 'restrictions', 'ignored', 'overruling'."""
    if len(word) < 4 or not (word.isascii() and word.isalpha()):
        return (word,)
    stem = word[:-1] if word.endswith("e") else word
    return (word, word + "s", word + "es", stem + "ed", stem + "ing")


Gram = bytes | tuple[bytes, bytes]  # a word, or a pair of neighbours
_ZEROS = repeat(0.0)


def grams(words: list[bytes]) -> list[Gram]:
    """A sentence_tokens list's word n-grams: each word, and each pair of neighbours in one sentence ('your rules');
    a word that opens a sentence also pairs with SENTENCE_END ('| ignore', the imperative)."""
    out: list[Gram] = []
    before = SENTENCE_END
    for word in words:
        if word != SENTENCE_END:
            out += (word, (before, word))
        before = word
    return out


def _classed(gram: Gram) -> bool:
    """Whether a gram holds a cue's name ('#you'): words never hold '#'."""
    return any(part.startswith(b"#") for part in (gram if isinstance(gram, tuple) else (gram,)))


def gram_key(gram: Gram) -> str:
    """The gram as injection_model.json names it: 'word' or 'first second'."""
    return b" ".join(gram).decode() if isinstance(gram, tuple) else gram.decode()


def parse_gram(key: str) -> Gram:
    first, _, second = key.encode().partition(b" ")
    return (first, second) if second else first


def units(readings: Sequence[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The pieces of a text the model scores: all its readings together when the text as written fits a unit,
    else each UNIT_CHARS piece of it alone, then its other readings (decoded, de-obfuscated) together."""
    plain = readings[0][1]
    if len(plain) <= UNIT_CHARS:
        return [list(readings)]
    pieces: list[list[tuple[str, str]]] = []
    start, cut = 0, 0
    for end in [m.end() for m in _SENTENCE_ENDS.finditer(plain)] + [len(plain)]:
        while end - start > UNIT_CHARS:  # close the piece at the last sentence end, or cut a long sentence
            cut = cut if cut > start else start + UNIT_CHARS
            pieces.append([(PLAIN, plain[start:cut])])
            start = cut
        cut = end
    if start < len(plain):
        pieces.append([(PLAIN, plain[start:])])
    return pieces + ([list(readings[1:])] if len(readings) > 1 else [])


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
            for word in sorted({form for w in cue["words"] for form in _inflections(w)}):
                if i not in word_cues.get(word.encode(), ()):
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
        # A cue word also stands in the n-grams as its cues' names, so 'your guidelines' and 'your rules' share the
        # gram '#you #instruction_noun+setup_noun' (and 'skip the' is also '#override_verb the').
        self._classes = {word: ("#" + "+".join(cues[i][0] for i in c)).encode() for word, c in word_cues.items()}
        self._ids[SENTENCE_END] = -1
        self._combos = len(combos)
        self._cue_features = [tuple(2 * i for i in c) for c in combos]
        self._start_features = [tuple(2 * i + 1 for i in c) for c in combos]
        self._pair_features = [tuple(pair_at + i * len(cues) + j for i in a for j in b) for a in combos
                               for b in combos]

    def fire(self, readings: Sequence[tuple[str, str]]) -> dict[int, str]:
        """The features each reading (how, folded text) fires, each with the first reading that fired it."""
        return self.read(readings)[0]

    def read(self, readings: Sequence[tuple[str, str]]) -> tuple[dict[int, str], list[tuple[list[bytes], list[bytes]]]]:
        """The features the readings fire (as `fire`), and each reading's words, as they are and with every cue
        word replaced by its cues' name: what the n-grams are made of. Each reading is tokenized once."""
        fired: dict[int, str] = {}
        sequences = []
        classes = self._classes
        for how, folded in readings:
            if how != PLAIN:
                fired.setdefault(self._decoded + (how == "obfuscated"), how)
            words = sentence_tokens(folded)
            for index in self._fire_one(folded, words):
                fired.setdefault(index, how)
            sequences.append((words, list(map(classes.get, words, words))))
        return fired, sequences

    def grams_of(self, readings: Sequence[tuple[str, str]]) -> tuple[dict[int, str], list[Gram]]:
        """The features the readings fire and their n-grams: the words' (`grams`) and the pairs of the words with cue
        names that hold a cue name ('#override_verb the', '#you #instruction_noun+setup_noun'; a cue name alone
        is already a cue feature). What the fit counts."""
        fired, sequences = self.read(readings)
        found: list[Gram] = []
        for words, classed in sequences:
            found += grams(words)
            found += [g for g in grams(classed) if isinstance(g, tuple) and _classed(g)]
        return fired, found

    def _fire_one(self, folded: str, words: list[bytes]) -> set[int]:
        ids, window, openers, size = self._ids, self.window, self._openers, self._combos
        hits = [(at, ids[w]) for at, w in enumerate(words) if w in ids]  # sentence ends too, as id -1
        hits.append((len(words), -1))
        seen: set[int] = set()
        starts: set[int] = set()
        pairs: set[int] = set()
        sentence: list[tuple[int, int]] = []
        for at, combo in hits:
            if combo >= 0:
                sentence.append((at, combo))
                before = words[at - 1] if at else SENTENCE_END
                if before == SENTENCE_END or (before in openers and (at == 1 or words[at - 2] == SENTENCE_END)):
                    starts.add(combo)
            elif sentence:  # a sentence ends: its cues, and its pairs in order at most `window` words apart
                seen.update(combo for _, combo in sentence)
                pairs.update(first * size + then for k, (at, first) in enumerate(sentence)
                             for later, then in sentence[k + 1:k + 1 + window] if later - at <= window)
                sentence = []
        out = set(chain.from_iterable(map(self._cue_features.__getitem__, seen)))
        out.update(chain.from_iterable(map(self._start_features.__getitem__, starts)))
        out.update(chain.from_iterable(map(self._pair_features.__getitem__, pairs)))
        for texts, index in self._markers:  # substring scans: faster than one regex of the texts (no Aho-Corasick)
            if any(t in folded for t in texts):
                out.add(index)
        return out


class CueModel:
    """The fitted model: a unit of text scores bias + the weights of the cue features and word n-grams it holds; a
    text scores its best unit, plus `rule_weight` when a rule matched it. At the threshold or above it is an
    injection, reported under the matching rule, else under the family its fired cue features weigh most for."""

    def __init__(self, cues: Cues, weights: dict[str, float], *, gram_weights: dict[Gram, float],
                 rule_weight: float, bias: float, threshold: float) -> None:
        names = {f.name for f in cues.features}
        unknown, missing = sorted(set(weights) - names), sorted(names - set(weights))
        if unknown or missing:
            raise ValueError(f"{MODEL_FILE.name} does not fit {CUES_FILE.name}: weights for unknown features "
                             f"{unknown}, none for {missing} (refit: python -m bench.safety_fit)")
        self.cues = cues
        self.weights = tuple(weights[f.name] for f in cues.features)
        self.gram_weights = gram_weights
        # Two tables, so that a pair of plain words met again among the words with cue names counts once.
        self._words = {g: w for g, w in gram_weights.items() if not _classed(g)}
        self._classed = {g: w for g, w in gram_weights.items() if _classed(g)}
        self.rule_weight, self.bias, self.threshold = rule_weight, bias, threshold

    def score_unit(self, unit: Sequence[tuple[str, str]]) -> tuple[float, dict[int, str]]:
        """A unit's log-odds of injection (without the rule term) and the cue features it fired. The sum of the
        weights of `Cues.grams_of`, looked up a token and a neighbour pair at a time (no gram is built: a pair
        across a sentence end, or a SENTENCE_END alone, has no weight, and cue names alone have none)."""
        fired, sequences = self.cues.read(unit)
        total = self.bias + math.fsum(self.weights[i] for i in fired)
        words_get, classed_get = self._words.get, self._classed.get
        for words, classed in sequences:
            # `before` is one longer than the tokens: its last token pairs with nothing.
            pairs = zip(chain((SENTENCE_END,), words), words, strict=False)
            classed_pairs = zip(chain((SENTENCE_END,), classed), classed, strict=False)
            total += (sum(map(words_get, words, _ZEROS)) + sum(map(words_get, pairs, _ZEROS))
                      + sum(map(classed_get, classed_pairs, _ZEROS)))
        return total, fired

    def best(self, readings: Sequence[tuple[str, str]]) -> tuple[float, dict[int, str]]:
        """The highest-scoring unit of a text's readings: its score and the cue features it fired."""
        return max((self.score_unit(unit) for unit in units(readings)), key=lambda scored: scored[0])

    def name(self, fired: dict[int, str]) -> tuple[str, str]:
        """(family, rule) of a finding of the model alone: the family its fired cue features weigh most for and the
        feature that weighed most in it, as model:[<reading>:]<feature>."""
        by_family: dict[str, float] = {}
        for i in fired:
            family, w = self.cues.features[i].family, self.weights[i]
            if family and w > 0:
                by_family[family] = by_family.get(family, 0.0) + w
        if not by_family:  # the n-grams alone carried it
            return "instruction_override", "model:words"
        family = max(sorted(by_family), key=by_family.__getitem__)
        ranked = sorted((i for i in fired if self.cues.features[i].family == family),
                        key=lambda i: (-self.weights[i], self.cues.features[i].name))
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
    gram_weights = {parse_gram(gram): float(w) for gram, w in data["grams"].items()}
    return CueModel(load_cues(families, cues_path), weights, gram_weights=gram_weights,
                    rule_weight=float(data["rule_weight"]), bias=float(data["bias"]),
                    threshold=float(data["threshold"]))
