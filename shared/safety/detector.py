"""The built-in prompt-injection detector: rules read from injection_rules.toml, compiled once, offline."""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
import tomllib
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["FAMILIES", "RULES_FILE", "Detector", "Finding", "Rule", "detect_injection", "load_rules"]

RULES_FILE = Path(__file__).with_name("injection_rules.toml")
FAMILIES = ("instruction_override", "prompt_extraction", "role_hijack", "delimiter_injection", "encoded_payload")

# Decoding is bounded: a prompt stuffed with base64-looking runs costs no more than this many decodes.
MAX_CANDIDATES = 6
MAX_CANDIDATE_CHARS = 4096


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
    case_sensitive: bool = False


def load_rules(path: Path = RULES_FILE) -> tuple[Rule, ...]:
    """The rules of a TOML file, each checked: a known family, a unique name, patterns that compile."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    rules: list[Rule] = []
    for i, raw in enumerate(data.get("rule", [])):
        where = f"{path.name}: rule {i + 1}"
        try:
            rule = Rule(name=raw["name"], family=raw["family"], description=raw["description"],
                        patterns=tuple(raw["patterns"]), case_sensitive=bool(raw.get("case_sensitive", False)))
        except KeyError as missing:
            raise ValueError(f"{where}: missing {missing}") from None
        if rule.family not in FAMILIES:
            raise ValueError(f"{where} ({rule.name}): family must be one of {', '.join(FAMILIES)}")
        if any(r.name == rule.name for r in rules):
            raise ValueError(f"{where}: the name {rule.name!r} is used twice")
        for pattern in rule.patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{where} ({rule.name}): pattern {pattern!r} does not compile: {exc}") from None
        rules.append(rule)
    return tuple(rules)


# Characters that render as nothing or as a Latin letter, used to slip a phrase past a plain match.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"))
# Cyrillic a c e o p x y i j s, Komi de, script g, palochka.
_CONFUSABLE = str.maketrans("\u0430\u0441\u0435\u043e\u0440\u0445\u0443\u0456\u0458\u0455\u0501\u0261\u04cf",
                            "aceopxyijsdgl")
_LEET = str.maketrans("013457@$|", "oieastasi")
_SPACE = re.compile(r"[^\S\n]+")
_SPACED = re.compile(r"\b(\w)[ .*_\-](?=\w\b)")
_HAS_SPACED = re.compile(r"(?:\b\w[ .*_\-]){4}\w\b")
_HAS_LEET = re.compile(r"[a-z][013457@$|][a-z]|[0134@$][a-z]{2}")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{20,}={0,2}")
_HEX = re.compile(r"(?:(?:0x|\\x)?[0-9a-fA-F]{2}[\s:,]?){12,}")
_BINARY = re.compile(r"(?:[01]{8}\s?){6,}")
_ESCAPED = re.compile(r"\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}|&#x?[0-9a-fA-F]{2,6};|%[0-9a-fA-F]{2}")
_REVERSE_HINT = re.compile(r"revers|backwards|right[ -]to[ -]left|mirror")


def normalize(text: str) -> str:
    """What the folded rules read: compatibility forms, no invisible characters, look-alike letters folded."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    return _SPACE.sub(" ", text.casefold().translate(_CONFUSABLE))


class Detector:
    """Rules compiled into one alternation per case mode; the first rule that matches names the finding."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._rules = tuple(rules)
        self._folded = self._alternation([r for r in self._rules if not r.case_sensitive])
        self._cased = self._alternation([r for r in self._rules if r.case_sensitive])

    def _alternation(self, rules: list[Rule]) -> tuple[re.Pattern[str] | None, list[Rule]]:
        if not rules:
            return None, []
        body = "|".join(f"(?P<r{i}>{'|'.join(f'(?:{p})' for p in r.patterns)})" for i, r in enumerate(rules))
        return re.compile(body, re.MULTILINE), rules

    def _match(self, raw: str, folded: str) -> Finding | None:
        for (regex, rules), text in ((self._folded, folded), (self._cased, raw)):
            m = regex.search(text) if regex is not None else None
            if m is not None:
                rule = rules[int(m.lastgroup[1:])]  # type: ignore[index]
                return Finding(rule.family, rule.name)
        return None

    def detect(self, text: str) -> Finding | None:
        """The first finding in the text as written, then in its obfuscated and encoded readings; None if clean."""
        folded = normalize(text)
        found = self._match(text, folded)
        if found is not None:
            return found
        for reading in _deobfuscated(folded):
            found = self._match(reading, reading)
            if found is not None:
                return Finding(found.family, f"obfuscated:{found.rule}")
        for codec, decoded in _decodings(text, folded):
            refolded = normalize(decoded)
            found = self._match(decoded, refolded)
            if found is not None:
                return Finding("encoded_payload", f"{codec}:{found.rule}")
        return None


def _deobfuscated(folded: str) -> Iterator[str]:
    """Spaced-out letters joined up; digits and symbols standing in for letters read as letters."""
    if _HAS_SPACED.search(folded):
        yield _SPACED.sub(r"\1", folded)
    if _HAS_LEET.search(folded):
        yield folded.translate(_LEET)


def _decodings(raw: str, folded: str) -> Iterator[tuple[str, str]]:
    """Bounded decodings of the text: each candidate run decoded once, the escaped text unescaped, rot13."""
    tried = 0
    for codec, regex, decode in _RUNS:
        for m in regex.finditer(raw):
            if tried >= MAX_CANDIDATES:
                break
            candidate = m.group()[:MAX_CANDIDATE_CHARS]
            tried += 1
            decoded = decode(candidate)
            if decoded is not None and _readable(decoded):
                yield codec, decoded
    if _ESCAPED.search(raw):
        yield "escaped", _unescape(raw)
    yield "rot13", codecs.decode(folded, "rot13")
    if _REVERSE_HINT.search(folded):
        yield "reversed", folded[::-1]


def _from_base64(candidate: str) -> str | None:
    padded = candidate + "=" * (-len(candidate) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _from_hex(candidate: str) -> str | None:
    digits = re.sub(r"0x|\\x|[\s:,]", "", candidate)
    try:
        return bytes.fromhex(digits).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def _from_binary(candidate: str) -> str | None:
    bits = candidate.split() if " " in candidate else re.findall("[01]{8}", candidate)
    try:
        return bytes(int(b, 2) for b in bits).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


_RUNS: tuple[tuple[str, re.Pattern[str], Callable[[str], str | None]], ...] = (
    ("binary", _BINARY, _from_binary),
    ("hex", _HEX, _from_hex),
    ("base64", _BASE64, _from_base64),
)


def _unescape(raw: str) -> str:
    text = re.sub(r"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1) or m.group(2), 16)), raw)
    return urllib.parse.unquote(html.unescape(text))


def _readable(decoded: str) -> bool:
    printable = sum(ch.isprintable() or ch in "\n\t" for ch in decoded)
    return len(decoded) >= 8 and printable >= 0.9 * len(decoded)


@lru_cache(maxsize=1)
def default_detector() -> Detector:
    return Detector(load_rules())


def detect_injection(text: str) -> Finding | None:
    """The first injection finding in a user or tool-result text, or None when it looks clean."""
    return default_detector().detect(text)
