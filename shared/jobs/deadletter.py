"""Dead letters: a queue message that cannot be a job, kept in Cosmos for an operator (never its full text)."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from shared.state.cosmos import CosmosState

log = logging.getLogger(__name__)
# Partitions of the app's own in the jobs container start with '!', which no tenant name can hold
# (TenantConfig allows letters, digits, '_', '.', '-'), so no API key and no job ever reads them.
RESERVED_PREFIX = "!"
DEADLETTER_PARTITION = RESERVED_PREFIX + "deadletter"
HEAD_CHARS = 256  # bytes of the message kept, escaped
NOT_A_JOB = "is not a job"
NAMES_RESERVED = f"names a reserved partition as its tenant (one starting with {RESERVED_PREFIX!r})"


def reserved(tenant: str) -> bool:
    """A partition the app keeps for itself: a message naming it as its tenant is never run."""
    return tenant.startswith(RESERVED_PREFIX)


def dead_letter(raw: bytes, *, queue: str, message_id: str, dequeue_count: int,
                reason: str = NOT_A_JOB) -> dict[str, Any]:
    """What an operator needs to find and judge the message: why, its size, hash and first bytes, escaped."""
    digest = hashlib.sha256(raw).hexdigest()
    # Python's bytes escaping: printable ASCII as is, anything else (line breaks, control characters,
    # non-ASCII) as \xNN or \n, so nothing can be forged where the record is shown. At most 4 x 256 chars.
    escaped = repr(raw[:HEAD_CHARS])[2:-1]
    return {"id": digest, "tenant": DEADLETTER_PARTITION, "kind": "deadletter", "reason": reason, "queue": queue,
            "message_id": message_id, "dequeue_count": dequeue_count, "size_bytes": len(raw), "sha256": digest,
            "head": escaped, "head_truncated": len(raw) > HEAD_CHARS, "recorded_at": time.time()}


class CosmosDeadLetters:
    """In the `jobs` container under their own partition: one record per distinct message text."""

    def __init__(self, state: CosmosState) -> None:
        self._state = state

    async def record(self, raw: bytes, *, queue: str, message_id: str, dequeue_count: int,
                     reason: str = NOT_A_JOB) -> dict[str, Any]:
        doc = dead_letter(raw, queue=queue, message_id=message_id, dequeue_count=dequeue_count, reason=reason)
        container = await self._state.container("jobs")
        await container.upsert_item(doc)
        # No content in the log: the size and hash let an operator find the record.
        log.error("dead letter: a message on %s %s and was removed (size=%d bytes, sha256=%s, "
                  "message_id=%s); it is kept in Cosmos jobs, partition %s", queue, reason, doc["size_bytes"],
                  doc["sha256"], message_id, DEADLETTER_PARTITION)
        return doc
