"""The audit record: one structured log line per request or job on AUDIT_LOGGER (App Insights `traces`).

Its fields are AUDIT_FIELDS (customDimensions in App Insights). Never a key, a token or a secret:
the principal is its key id. Never the prompt or the answer, unless the tenant set `log_content`.
Every string is sanitised (no line break or control character, bounded length), whatever its source.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from shared.observability import names as n

if TYPE_CHECKING:
    from shared.observability.record import Record

log = logging.getLogger(n.AUDIT_LOGGER)
log.setLevel(logging.INFO)  # an audit line is written whatever the root logger's level
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_MAX_FIELD = 256
_MAX_CONTENT = 32_000


def sanitise(value: str, limit: int = _MAX_FIELD) -> str:
    """One line of at most `limit` characters: control characters and line breaks become spaces."""
    return _UNSAFE.sub(" ", value)[:limit]


def fields(record: Record) -> dict[str, Any]:
    """The audit fields of a record (also set on its server span)."""
    out: dict[str, Any] = {
        n.TENANT: sanitise(record.tenant),
        n.KEY_ID: sanitise(record.key_id),
        n.GEN_AI_REQUEST_MODEL: sanitise(record.model),
        n.ENDPOINT: sanitise(record.endpoint),
        n.GEN_AI_USAGE_INPUT_TOKENS: record.input_tokens,
        n.GEN_AI_USAGE_OUTPUT_TOKENS: record.output_tokens,
        n.COST_USD: round(record.cost_micros / 1_000_000, 6),
        n.DURATION_MS: record.duration_ms,
        n.STATUS: record.status,
        n.CACHE_RESULT: record.cache_result,
        n.CORRELATION_ID: sanitise(record.correlation_id),
        n.ROUTE: sanitise(record.route),
    }
    if record.refusal:
        out[n.REFUSAL_TYPE] = record.refusal
    if record.outcome:
        out[n.OUTCOME] = record.outcome
    out.update(record.routing)
    for name, value in ((n.AUDIT_SAFETY_BLOCKED, record.safety_blocked),
                        (n.AUDIT_SAFETY_FLAGGED, record.safety_flagged),
                        (n.AUDIT_SAFETY_UNCHECKED, record.safety_unchecked)):
        if value:
            out[name] = sanitise(",".join(value))
    if record.safety_redacted:
        out[n.AUDIT_SAFETY_REDACTED] = sanitise(",".join(f"{k}:{v}" for k, v in sorted(record.safety_redacted.items())))
    return out


def write(record: Record, audit_fields: dict[str, Any]) -> None:
    """The line itself: its message is readable on a console, its fields are the structured record."""
    extra = dict(audit_fields)
    if record.log_content:
        # Opted in by the tenant (TENANTS log_content): the content, sanitised like every field.
        extra[n.AUDIT_PROMPT] = sanitise(record.prompt, _MAX_CONTENT)
        extra[n.AUDIT_ANSWER] = sanitise("".join(record.answer), _MAX_CONTENT)
    log.info("%s tenant=%s route=%s status=%s model=%s tokens=%s+%s cache=%s correlation_id=%s", n.AUDIT_EVENT,
             extra[n.TENANT] or "-", extra[n.ROUTE], extra[n.STATUS], extra[n.GEN_AI_REQUEST_MODEL] or "-",
             extra[n.GEN_AI_USAGE_INPUT_TOKENS], extra[n.GEN_AI_USAGE_OUTPUT_TOKENS], extra[n.CACHE_RESULT] or "-",
             extra[n.CORRELATION_ID], extra=extra)


def admin_action(caller_tenant: str, caller_id: str, action: str, *, tenant: str, key_id: str | None,
                 correlation_id: str, details: dict[str, Any]) -> None:
    """One audit line per admin API change (docs/admin.md): who (a key id and its tenant, or an
    Entra principal), what, on which tenant and key, when (the record's time). Never a secret: the
    callers pass ids and counts only."""
    extra = {n.ADMIN_ACTION: sanitise(action), n.TENANT: sanitise(tenant), n.KEY_ID: sanitise(key_id or ""),
             n.ADMIN_CALLER: sanitise(f"{caller_tenant}/{caller_id}" if caller_tenant else caller_id),
             n.CORRELATION_ID: sanitise(correlation_id),
             **{f"{n.ADMIN_ACTION}.{k}": sanitise(str(v)) for k, v in details.items()}}
    log.info("%s action=%s tenant=%s key=%s by=%s correlation_id=%s", n.ADMIN_EVENT, extra[n.ADMIN_ACTION],
             extra[n.TENANT], extra[n.KEY_ID] or "-", extra[n.ADMIN_CALLER], extra[n.CORRELATION_ID], extra=extra)
