"""A tenant's Responses API policy: whether responses may be stored, and which hosted tools pass."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# The Responses API's hosted tools (run by the provider, billed by it apart from tokens, reaching
# outside the request): refused unless the tenant lists them. A type matches a listed name or a
# listed family (`web_search` lets `web_search_preview` pass, `computer_use` `computer_use_preview`).
HOSTED_TOOLS = ("web_search", "file_search", "code_interpreter", "image_generation", "computer_use", "mcp",
                "shell", "local_shell")


class ResponsesPolicy(BaseModel):
    """`TENANTS[].responses` (docs/responses.md): `store` allow|deny, `allowed_hosted_tools`."""

    model_config = {"extra": "forbid", "frozen": True}

    # deny: a request must send `store: false` (never silently rewritten: a 400 says so).
    store: Literal["allow", "deny"] = "allow"
    allowed_hosted_tools: tuple[str, ...] = Field(default=())

    def hosted_allowed(self, tool_type: str) -> bool:
        return any(tool_type == name or tool_type.startswith(f"{name}_") for name in self.allowed_hosted_tools)


def hosted(tool_type: str) -> bool:
    """Whether a tool type is one of the provider's hosted tools (function and custom tools are not)."""
    return any(tool_type == name or tool_type.startswith(f"{name}_") for name in HOSTED_TOOLS)
