"""The built-in prompt-injection detector: rules read from injection_rules.toml, compiled once, offline."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from shared.safety.model import PLAIN, CueModel, load_model
from shared.safety.readings import (
    LEET,
    ROT13,
    decoded_runs,
    despaced,
    discussed,
    is_word,
    normalize,
    quoted_spans,
    tokens,
    unescaped,
)

__all__ = ["FAMILIES", "RULES_FILE", "Detector", "Finding", "Rule", "default_detector", "detect_injection",
           "load_rules"]

RULES_FILE = Path(__file__).with_name("injection_rules.toml")
FAMILIES = ("instruction_override", "prompt_extraction", "role_hijack", "delimiter_injection", "encoded_payload")


@dataclass(frozen=True)
class Finding:
    family: str
    rule: str


@dataclass(frozen=True)
class Rule:
    name: str
    family: str
    description: str
    patterns: tuple[str, ...]
    triggers: tuple[str, ...]
    case_sensitive: bool = False


def load_rules(path: Path = RULES_FILE) -> tuple[Rule, ...]:
    """The rules of a TOML file, each checked: a known family, a unique name, triggers, patterns that compile."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    rules: list[Rule] = []
    for i, raw in enumerate(data.get("rule", [])):
        where = f"{path.name}: rule {i + 1}"
        try:
            rule = Rule(name=raw["name"], family=raw["family"], description=raw["description"],
                        patterns=tuple(raw["patterns"]), triggers=tuple(raw["triggers"]),
                        case_sensitive=bool(raw.get("case_sensitive", False)))
        except KeyError as missing:
            raise ValueError(f"{where}: missing {missing}") from None
        if rule.family not in FAMILIES:
            raise ValueError(f"{where} ({rule.name}): family must be one of {', '.join(FAMILIES)}")
        if any(r.name == rule.name for r in rules):
            raise ValueError(f"{where}: the name {rule.name!r} is used twice")
        if not rule.triggers or not rule.patterns:
            raise ValueError(f"{where} ({rule.name}): needs patterns and triggers (a rule runs only on its triggers)")
        for pattern in rule.patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{where} ({rule.name}): pattern {pattern!r} does not compile: {exc}") from None
        rules.append(rule)
    return tuple(rules)


class Detector:
    """Rules indexed by their triggers: a text tries only the rules whose triggers it holds, in file order, and
    each only where a trigger stands, so a clean 4,000-character prompt costs a few hundred regex attempts."""

    def __init__(self, rules: Iterable[Rule], model: CueModel | None = None) -> None:
        self._rules = tuple(rules)
        self._model = model
        self._regexes = tuple(re.compile("|".join(f"(?:{p})" for p in r.patterns), re.MULTILINE) for r in self._rules)
        self._by_word: dict[bytes, list[tuple[int, str]]] = {}
        self._by_text: list[tuple[str, int]] = []
        for i, rule in enumerate(self._rules):
            for trigger in rule.triggers:
                if is_word(trigger):
                    self._by_word.setdefault(trigger.encode(), []).append((i, trigger))
                else:
                    self._by_text.append((trigger, i))
        self._words = frozenset(self._by_word)
        # Trigger words as leetspeak, rot13 and reversed text would show them: the evidence that a reading is worth
        # a pass. Short words ('no', 'ai') turn up by chance, so only words of four letters or more count.
        self._long = frozenset(w for w in self._words if len(w) >= 4)
        self._rot13 = frozenset(w.decode().translate(ROT13).encode() for w in self._long)
        self._reversed = frozenset(w[::-1] for w in self._long)

    def detect(self, text: str) -> Finding | None:
        """Without a model, the first rule's finding (see `rule_finding`). With one, the model's verdict on all the
        text's readings, a matching rule adding its weight: the rule's finding when one matched, else the model's;
        None if clean. The rules run only when their weight could tip the verdict or name a finding."""
        if self._model is None:
            return self.rule_finding(text)
        model = self._model
        score, fired = model.best(self.readings(text))
        if score + max(model.rule_weight, 0.0) < model.threshold:
            return None
        found = self.rule_finding(text)
        if found is not None:
            score += model.rule_weight
        if score < model.threshold:
            return None
        return found if found is not None else Finding(*model.name(fired))

    def rule_finding(self, text: str) -> Finding | None:
        """The first rule's finding in the text as written, then in its obfuscated and encoded readings."""
        folded = normalize(text)
        words = tokens(folded)
        found = self._match(text, folded, words)
        if found is not None:
            return found
        for reading in self._deobfuscated(text, folded, words):
            found = self._match(reading, reading, tokens(reading))
            if found is not None:
                return Finding(found.family, f"obfuscated:{found.rule}")
        for codec, decoded in self._decodings(text, folded, words):
            refolded = normalize(decoded)
            found = self._match(decoded, refolded, tokens(refolded))
            if found is not None:
                return Finding("encoded_payload", f"{codec}:{found.rule}")
        return None

    def readings(self, text: str) -> list[tuple[str, str]]:
        """Every reading the detector makes of a text, as (how, folded text): what the model reads."""
        folded = normalize(text)
        words = tokens(folded)
        out = [(PLAIN, folded)] + [("obfuscated", r) for r in self._deobfuscated(text, folded, words)]
        return out + [(codec, normalize(decoded)) for codec, decoded in self._decodings(text, folded, words)]

    def _match(self, raw: str, folded: str, words: frozenset[bytes]) -> Finding | None:
        present = self._present(folded, words)
        lowered = raw.lower() if any(self._rules[i].case_sensitive for i in present) else ""
        places: dict[tuple[str, bool, bool], list[int]] = {}  # a trigger's places, found once for all its rules
        quoted: dict[bool, list[tuple[int, int]]] = {}
        for i in sorted(present):
            rule, regex = self._rules[i], self._regexes[i]
            cased = rule.case_sensitive
            text, hay = (raw, lowered) if cased else (folded, folded)
            for trigger, word in present[i]:
                key = (trigger, word, cased)
                if key not in places:
                    places[key] = _occurrences(hay, trigger, word)
                for at in places[key]:
                    m = regex.match(text, at)
                    if m is None:
                        continue
                    if cased not in quoted:
                        quoted[cased] = quoted_spans(text)
                    if not discussed(text, m.start(), m.end(), quoted[cased]):  # a quoted attack under discussion
                        return Finding(rule.family, rule.name)
        return None

    def _present(self, folded: str, words: frozenset[bytes]) -> dict[int, list[tuple[str, bool]]]:
        """The rules whose triggers the text holds, each with those triggers (and whether each is a word)."""
        present: dict[int, list[tuple[str, bool]]] = {}
        for w in words & self._words:
            for i, trigger in self._by_word[w]:
                present.setdefault(i, []).append((trigger, True))
        if "<" in folded or "[" in folded:  # every text trigger is markup
            for trigger, i in self._by_text:
                if trigger in folded:
                    present.setdefault(i, []).append((trigger, False))
        return present

    def _deobfuscated(self, raw: str, folded: str, words: frozenset[bytes]) -> Iterator[str]:
        """Spaced-out letters joined up; digits and symbols standing in for letters read as letters."""
        joined = despaced(raw, words)
        if joined is not None:
            yield normalize(joined)
        leet = {w.decode().translate(LEET).encode() for w in words if not w.isalpha() and not w.isdigit()
                and not w.strip(_LEET_SYMBOLS)}  # left: words with a leet symbol among letters, '1gn0re', 'h4ck'
        if leet & self._long:
            yield folded.translate(LEET)

    def _decodings(self, raw: str, folded: str, words: frozenset[bytes]) -> Iterator[tuple[str, str]]:
        """(codec, text) for each decoding the text shows evidence of: encoded runs, escapes, rot13, reversal."""
        yield from decoded_runs(raw, words)
        plain = unescaped(raw)
        if plain is not None:
            yield "escaped", plain
        if len(words & self._rot13) >= 2:
            yield "rot13", folded.translate(ROT13)
        if len(words & self._reversed) >= 2:
            yield "reversed", folded[::-1]


def _occurrences(hay: str, trigger: str, word: bool) -> list[int]:
    """Where the trigger stands in the text; a word trigger only as a whole word ('do', not the 'do' of 'done')."""
    places = []
    size, end = len(trigger), len(hay)
    at = hay.find(trigger)
    while at >= 0:
        after = at + size
        if not word or ((at == 0 or not hay[at - 1].isalnum()) and (after == end or not hay[after].isalnum())):
            places.append(at)
        at = hay.find(trigger, after)
    return places


_LEET_SYMBOLS = b"abcdefghijklmnopqrstuvwxyz013457@$"


@lru_cache(maxsize=1)
def default_detector() -> Detector:
    """The detector of RULES_FILE and the fitted model, built once per process; building it compiles every rule
    (tens of milliseconds), so call it at start rather than on the first request."""
    return Detector(load_rules(), load_model(FAMILIES))


def detect_injection(text: str) -> Finding | None:
    """The first injection finding in a user or tool-result text, or None when it looks clean."""
    return default_detector().detect(text)
