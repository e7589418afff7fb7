"""The exact cache's document of an answer (shared/state/cache.py): every field of Completion but
the provider's request id, and back."""

from __future__ import annotations

from dataclasses import fields, replace

from shared.core.models import Usage
from shared.core.values import Completion
from shared.state.cache import completion_doc, completion_from


def test_an_answer_round_trips_through_its_cache_document_without_its_request_id() -> None:
    answer = Completion("Paris.", "stop", "gpt-4o-mini", Usage(prompt_tokens=9, completion_tokens=2, total_tokens=11),
                        "primary", raw={"id": "chatcmpl-1", "choices": [{"index": 0}]}, request_id="req-1")
    doc = completion_doc(answer)
    assert set(doc) == {f.name for f in fields(Completion)} - {"request_id"}, "a new field is cached, or named here"
    assert completion_from(doc) == replace(answer, request_id=None)
