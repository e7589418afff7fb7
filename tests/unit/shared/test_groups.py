"""Model groups without Semantic Kernel, and the kernel engine built once, on first use."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx2
import pytest
from pydantic import SecretStr

from shared.core.errors import ConfigError
from shared.core.settings import EndpointConfig
from shared.identity.secrets import LocalSecrets
from shared.upstream.endpoints import Endpoint
from shared.upstream.engine import LazyEngine
from shared.upstream.groups import ModelGroups
from tests.unit.resilience.helpers import FakeClock, policy


def _endpoint(name: str, model: str, priority: int, deployment: str = "") -> Endpoint:
    config = EndpointConfig(name=name, kind="azure_openai" if deployment else "openai", endpoint=f"http://{name}",
                            model=model, priority=priority, deployment=deployment, api_key_secret="key")
    # Nothing here sends: the wire is only the transport the kernel's SDK client is built over.
    return Endpoint(config=config, wire=SimpleNamespace(transport=httpx2.AsyncHTTPTransport()))  # type: ignore[arg-type]


def _groups() -> ModelGroups:
    endpoints = [_endpoint("west", "gpt-4o", 1, "chat-west"), _endpoint("east", "gpt-4o", 0, "chat-east"),
                 _endpoint("mini", "gpt-4o-mini", 2)]
    return ModelGroups(endpoints, policy(FakeClock(), [e.name for e in endpoints]))


def test_groups_resolve_models_deployments_and_endpoint_names_best_priority_first() -> None:
    groups = _groups()
    assert [e.name for e in groups.group("gpt-4o")] == ["east", "west"]
    assert groups.default_model == "gpt-4o"  # the best-priority endpoint's model
    assert [groups.resolve_model(r) for r in (None, "gpt-4o-mini", "chat-west", "mini", "gpt-5")] == [
        "gpt-4o", "gpt-4o-mini", "gpt-4o", "gpt-4o-mini", None]


async def test_the_kernel_is_built_once_on_first_use_and_a_failed_build_is_tried_again() -> None:
    values: dict[str, SecretStr] = {}
    engine = LazyEngine(_groups(), credential=None, secrets=LocalSecrets(values), timeout_s=5)
    assert not engine.loaded and engine.resolve_model("mini") == "gpt-4o-mini"  # no kernel needed
    with pytest.raises(ConfigError, match="'key'"):
        await engine.kernel()  # the endpoints' key is missing: nothing is kept
    assert not engine.loaded
    values["key"] = SecretStr("k")
    first, second = await asyncio.gather(engine.kernel(), engine.kernel())
    assert first is second and engine.loaded
    assert {r.ai_model_id for r in first.kernel.services.values()} == {"gpt-4o", "gpt-4o-mini"}
    await engine.close()
