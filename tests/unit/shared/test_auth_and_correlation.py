"""Who is calling, and under which correlation id."""

from __future__ import annotations

import re

import pytest

from shared.core.correlation import correlation_id, safe_correlation_id
from shared.core.errors import Unauthorized
from shared.core.settings import TenantConfig, TenantKey, hash_api_key
from shared.identity.auth import Authenticator
from shared.identity.tenants import SettingsTenants

AUTH = Authenticator(SettingsTenants([
    TenantConfig(tenant="acme", keys=[TenantKey(id="k1", sha256=hash_api_key("acme-secret"))]),
    TenantConfig(tenant="globex", keys=[TenantKey(id="k2", sha256=hash_api_key("globex-secret"))]),
]))


@pytest.mark.parametrize("headers", [
    {"x-api-key": "acme-secret"},
    {"api-key": "acme-secret"},
    {"authorization": "Bearer acme-secret"},
    {"authorization": "bearer   acme-secret "},
])
async def test_each_documented_header_carries_the_key(headers: dict[str, str]) -> None:
    principal = await AUTH.authenticate(headers)
    assert (principal.tenant, principal.key_id) == ("acme", "k1")


@pytest.mark.parametrize(("headers", "detail"), [
    ({}, "Send an API key"),
    ({"authorization": "Basic abc"}, "Send an API key"),
    ({"x-api-key": "acme-secre"}, "not valid"),
    ({"x-api-key": "globex-secret "}, None),
])
async def test_missing_or_wrong_keys_are_401(headers: dict[str, str], detail: str | None) -> None:
    if detail is None:  # surrounding whitespace is trimmed, so this one is valid
        assert (await AUTH.authenticate(headers)).tenant == "globex"
        return
    with pytest.raises(Unauthorized) as err:
        await AUTH.authenticate(headers)
    assert detail in err.value.detail and "acme-secre" not in err.value.detail
    # RFC 9110: every 401 names the schemes it accepts.
    assert err.value.headers["WWW-Authenticate"].startswith("Bearer ")
    assert 'ApiKey realm="aigw", header="x-api-key"' in err.value.headers["WWW-Authenticate"]


async def test_queue_jobs_run_as_their_tenant_and_unknown_tenants_get_none() -> None:
    principal = await AUTH.principal_for_tenant("globex")
    assert principal is not None and principal.tenant == "globex"
    assert await AUTH.principal_for_tenant("nobody") is None


def test_correlation_id_prefers_the_callers_then_the_trace_id() -> None:
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert correlation_id({"x-correlation-id": "order-42", "traceparent": trace}) == "order-42"
    assert correlation_id({"traceparent": trace}) == "4bf92f3577b34da6a3ce929d0e0e4736"
    generated = correlation_id({"x-correlation-id": "bad id\r\nSet-Cookie: x"})
    assert len(generated) == 32 and "\n" not in generated
    assert correlation_id({}) != correlation_id({})


@pytest.mark.parametrize("sent", [
    "abc\r\nERROR forged line", "abc\nx", "abc\x1b[31m", "a b", "ü-id", "x" * 129, "", None, 42, ["id"],
])
def test_unsafe_correlation_ids_are_dropped_not_echoed(sent: object) -> None:
    assert safe_correlation_id(sent) is None


def test_safe_correlation_ids_pass_as_sent() -> None:
    assert safe_correlation_id(" order-42:a.b_c ") == "order-42:a.b_c"


@pytest.mark.parametrize("traceparent", [
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nforged",
    "00-00000000000000000000000000000000-b7ad6b7169203331-01",
    "zz-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
])
def test_a_bad_traceparent_gives_a_new_id(traceparent: str) -> None:
    cid = correlation_id({"traceparent": traceparent, "x-correlation-id": "bad\nid"})
    assert re.fullmatch(r"[0-9a-f]{32}", cid) and cid != "0af7651916cd43dd8448eb211c80319c"
