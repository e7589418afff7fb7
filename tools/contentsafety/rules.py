"""The local server's deterministic rules (README.md): what counts as an attack, a harm severity, a named entity."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Prompt Shields: an attack is one of these phrases (case-insensitive), or the marker `cs-attack`.
ATTACK_PHRASES = ("cs-attack", "ignore all previous instructions", "ignore previous instructions",
                  "disregard your instructions", "you are now in developer mode", "do anything now")
_ATTACK = re.compile("|".join(re.escape(p) for p in ATTACK_PHRASES), re.IGNORECASE)
# Harm: the marker `cs-<category>-<0..7>` sets that category's severity (the highest marker wins).
CATEGORIES = ("Hate", "Sexual", "Violence", "SelfHarm")
_MARKER = re.compile(r"cs-(hate|sexual|violence|selfharm)-([0-7])", re.IGNORECASE)
# PII: a first name of this list followed by a capitalised word is a Person; a house number, a
# capitalised word and a street type is an Address; a capitalised word before Inc/Ltd/LLC/GmbH an Organization.
FIRST_NAMES = ("Alice", "Ahmed", "Carlos", "Jane", "John", "Maria", "Olga", "Priya", "Wei", "Yuki")
_PII = (
    ("Person", re.compile(rf"\b(?:{'|'.join(FIRST_NAMES)}) [A-Z][a-z]+\b")),
    ("Address", re.compile(r"\b\d{1,5} [A-Z][a-z]+ (?:Street|St|Avenue|Ave|Road|Rd|Lane|Boulevard)\b")),
    ("Organization", re.compile(r"\b[A-Z][A-Za-z]+ (?:Inc|Ltd|LLC|GmbH)\b")),
)


def attack(text: str) -> bool:
    return _ATTACK.search(text) is not None


def severities(text: str, eight_levels: bool) -> dict[str, int]:
    """Each category's severity: 0 unless a marker sets it; four levels round down to 0, 2, 4, 6."""
    found = dict.fromkeys(CATEGORIES, 0)
    names = {c.lower(): c for c in CATEGORIES}
    for name, level in _MARKER.findall(text):
        category = names[name.lower()]
        found[category] = max(found[category], int(level))
    return found if eight_levels else {c: v - v % 2 for c, v in found.items()}


@dataclass(frozen=True)
class Entity:
    text: str
    category: str
    offset: int
    length: int


def entities(text: str, categories: set[str] | None) -> list[Entity]:
    """The entities of the categories asked for (all when None), in order, offsets in code points."""
    found = [Entity(m.group(), category, m.start(), len(m.group())) for category, pattern in _PII
             if categories is None or category in categories for m in pattern.finditer(text)]
    return sorted(found, key=lambda e: e.offset)


def utf16_offset(text: str, index: int) -> int:
    """A code-point index as UTF-16 code units (the service's default StringIndexType)."""
    return len(text[:index].encode("utf-16-le")) // 2
