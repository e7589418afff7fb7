"""A tenant's content-safety policy (`safety` in TENANTS): what is screened, blocked and redacted (docs/safety.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, WithJsonSchema, field_validator

# The kinds the offline redactor knows (shared/safety/redact.KINDS: a unit test holds the two equal;
# core sits below the safety package, so the names are repeated here for validation at start).
BUILTIN_KINDS = ("secrets", "email", "phone", "credit_card", "iban", "ip", "us_ssn")
# Named entities only Azure AI Language finds: the PII categories of its API, by our kind names.
LANGUAGE_KINDS: dict[str, str] = {
    "person": "Person",
    "address": "Address",
    "organization": "Organization",
    "person_type": "PersonType",
    "date_of_birth": "DateOfBirth",
    "passport": "USUKPassportNumber",
    "drivers_license": "USDriversLicenseNumber",
}
HARM_CATEGORIES = ("hate", "sexual", "violence", "self_harm")


class HarmThresholds(BaseModel):
    """Per category, the severity (0-7, Azure AI Content Safety's eight levels) to block at; null: off."""

    model_config = {"extra": "forbid", "frozen": True}

    hate: int | None = Field(default=None, ge=0, le=7)
    sexual: int | None = Field(default=None, ge=0, le=7)
    violence: int | None = Field(default=None, ge=0, le=7)
    self_harm: int | None = Field(default=None, ge=0, le=7)

    def active(self) -> dict[str, int]:
        """The categories with a threshold, and their thresholds."""
        return {c: v for c in HARM_CATEGORIES if (v := getattr(self, c)) is not None}


class SafetyPolicy(BaseModel):
    """Defaults: injection blocked, harm off, secrets redacted, input as it came, served when a service is down."""

    model_config = {"extra": "forbid", "frozen": True}

    prompt_shield: Literal["block", "annotate", "off"] = "block"
    harm: HarmThresholds = Field(default_factory=HarmThresholds)
    # Described as an enum, checked by _known_kinds (whose message lists the kinds).
    redact: tuple[Annotated[str, WithJsonSchema({"type": "string", "enum": [*BUILTIN_KINDS, *LANGUAGE_KINDS]})],
                  ...] = ("secrets",)
    redact_input: bool = False
    on_error: Literal["open", "closed"] = "open"

    @field_validator("redact")
    @classmethod
    def _known_kinds(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [k for k in kinds if k not in BUILTIN_KINDS and k not in LANGUAGE_KINDS]
        if unknown:
            known = ", ".join([*BUILTIN_KINDS, *LANGUAGE_KINDS])
            raise ValueError(f"unknown redaction kind(s) {', '.join(map(repr, unknown))}; known: {known}")
        return tuple(dict.fromkeys(kinds))

    @property
    def builtin_kinds(self) -> tuple[str, ...]:
        return tuple(k for k in self.redact if k in BUILTIN_KINDS)

    @property
    def language_kinds(self) -> tuple[str, ...]:
        return tuple(k for k in self.redact if k in LANGUAGE_KINDS)


def language_kinds_without_endpoint(tenants: dict[str, SafetyPolicy], language_endpoint: str | None) -> str | None:
    """The refusal naming the tenants and kinds, when a policy asks for Language kinds without LANGUAGE_ENDPOINT."""
    if language_endpoint:
        return None
    asking = {t: p.language_kinds for t, p in tenants.items() if p.language_kinds}
    if not asking:
        return None
    named = "; ".join(f"tenant {t!r}: {', '.join(kinds)}" for t, kinds in asking.items())
    return (f"redaction kinds found only by Azure AI Language need LANGUAGE_ENDPOINT ({named}): set "
            "LANGUAGE_ENDPOINT, or remove these kinds from the tenant's safety.redact")
