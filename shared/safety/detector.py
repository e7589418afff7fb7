"""The built-in prompt-injection detector: rules read from injection_rules.toml, compiled once, offline."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from shared.safety.readings import LEET, ROT13, decoded_runs, despaced, is_word, normalize, tokens, unescaped

__all__ = ["FAMILIES", "RULES_FILE", "Detector", "Finding", "Rule", "detect_injection", "load_rules"]

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
    """Rules indexed by their triggers: a text runs only the rules whose triggers it holds, in file order."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._rules = tuple(rules)
        self._regexes = tuple(re.compile("|".join(f"(?:{p})" for p in r.patterns), re.MULTILINE) for r in self._rules)
        self._by_word: dict[bytes, list[int]] = {}
        self._by_text: list[tuple[str, int]] = []
        for i, rule in enumerate(self._rules):
            for trigger in rule.triggers:
                if is_word(trigger):
                    self._by_word.setdefault(trigger.encode(), []).append(i)
                else:
                    self._by_text.append((trigger, i))
        self._words = frozenset(self._by_word)
        # The trigger words as rot13 and reversed text would show them: the evidence that decoding is worth it.
        self._rot13 = frozenset(w.decode().translate(ROT13).encode() for w in self._words)
        self._reversed = frozenset(w[::-1] for w in self._words)

    def detect(self, text: str) -> Finding | None:
        """The first finding in the text as written, then in its obfuscated and encoded readings; None if clean."""
        folded = normalize(text)
        words = tokens(folded)
        found = self._match(text, folded, words)
        if found is not None:
            return found
        for reading in self._deobfuscated(folded, words):
            found = self._match(reading, reading, tokens(reading))
            if found is not None:
                return Finding(found.family, f"obfuscated:{found.rule}")
        for codec, decoded in self._decodings(text, folded, words):
            refolded = normalize(decoded)
            found = self._match(decoded, refolded, tokens(refolded))
            if found is not None:
                return Finding("encoded_payload", f"{codec}:{found.rule}")
        return None

    def _match(self, raw: str, folded: str, words: frozenset[bytes]) -> Finding | None:
        chosen = {i for w in words & self._words for i in self._by_word[w]}
        chosen.update(i for trigger, i in self._by_text if trigger in folded)
        for i in sorted(chosen):
            rule = self._rules[i]
            if self._regexes[i].search(raw if rule.case_sensitive else folded):
                return Finding(rule.family, rule.name)
        return None

    def _deobfuscated(self, folded: str, words: frozenset[bytes]) -> Iterator[str]:
        """Spaced-out letters joined up; digits and symbols standing in for letters read as letters."""
        joined = despaced(folded, words)
        if joined is not None:
            yield joined
        leet = {w.decode().translate(LEET).encode() for w in words if not w.isalpha() and not w.isdigit()}
        if leet & self._words:
            yield folded.translate(LEET)

    def _decodings(self, raw: str, folded: str, words: frozenset[bytes]) -> Iterator[tuple[str, str]]:
        yield from decoded_runs(raw, words)
        plain = unescaped(raw)
        if plain is not None:
            yield "escaped", plain
        if words & self._rot13:
            yield "rot13", folded.translate(ROT13)
        if words & self._reversed:
            yield "reversed", folded[::-1]


@lru_cache(maxsize=1)
def default_detector() -> Detector:
    return Detector(load_rules())


def detect_injection(text: str) -> Finding | None:
    """The first injection finding in a user or tool-result text, or None when it looks clean."""
    return default_detector().detect(text)
