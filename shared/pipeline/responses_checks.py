"""What a Responses API request may ask of this gateway: each refusal a 400 naming the field and
saying why (docs/responses.md, "Refused"), decided before anything is reserved or sent."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared.core.errors import BadRequest, ResponseNotFound
from shared.core.responses_policy import ResponsesPolicy, hosted

# A response id as providers write them (resp_...): anything else names no response of ours.
RESPONSE_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")


def check_request(body: Mapping[str, Any], policy: ResponsesPolicy) -> None:
    """Refuse what the gateway does not proxy, and what the tenant's policy does not allow."""
    if body.get("background") is True:
        raise BadRequest("background: true is not supported here: a background response outlives the request "
                         "that started it, and its usage could not be settled. Send the request without it "
                         "(stream: true for long answers).", param="background")
    if body.get("conversation") is not None:
        raise BadRequest("conversation is not supported here: the Conversations API is not proxied. Chain turns "
                         "with previous_response_id, or send the whole input.", param="conversation")
    if body.get("prompt") is not None:
        raise BadRequest("prompt (a stored prompt template) is not supported here: its text lives at the provider, "
                         "out of this gateway's sight for estimates and screening. Send the instructions and "
                         "input themselves.", param="prompt")
    tools = body.get("tools")
    for index, tool in enumerate(tools if isinstance(tools, list) else []):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str) and hosted(kind) and not policy.hosted_allowed(kind):
            raise BadRequest(f"tools[{index}]: the hosted tool {kind!r} is not enabled for this tenant (hosted tools "
                             "run at the provider and bill apart from tokens). Use a function tool, or ask your "
                             "administrator to list it in allowed_hosted_tools.", param=f"tools[{index}].type")
    if policy.store == "deny" and body.get("store") is not False:
        raise BadRequest("This tenant does not allow stored responses: send store: false (the provider stores a "
                         "response unless told not to).", param="store")
    if body.get("stream") not in (None, True, False):
        raise BadRequest("stream must be true or false.", param="stream")
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise BadRequest("previous_response_id must be a string.", param="previous_response_id")
    cap = body.get("max_output_tokens")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
        raise BadRequest("max_output_tokens must be a positive integer.", param="max_output_tokens")


def response_id(value: str) -> str:
    """A response id from a path: one that cannot be an id names no response (the same 404)."""
    if not RESPONSE_ID.fullmatch(value):
        raise ResponseNotFound(f"No response {value[:64]!r} of this tenant exists.")
    return value


def not_found(value: str) -> ResponseNotFound:
    return ResponseNotFound(f"No response {value!r} of this tenant exists (another tenant's id, a deleted or "
                            "expired response).")
