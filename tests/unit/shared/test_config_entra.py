"""TENANTS with Entra principals: each names one identifier, belongs to one tenant (issue 13)."""

from __future__ import annotations

import json

import pytest

from shared.core.errors import ConfigError
from shared.core.settings import EntraPrincipal, TenantConfig, load_settings
from tests.conftest import environment

TID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
APP = "11111111-1111-1111-1111-111111111111"
BASE = {"AI_ENDPOINTS": json.dumps([{"name": "e", "kind": "openai", "endpoint": "http://m", "model": "m"}]),
        "COSMOS_ENDPOINT": "http://c"}


def test_a_tenant_may_have_only_entra_principals_but_not_nothing() -> None:
    assert TenantConfig(tenant="t", entra=[EntraPrincipal(tid=TID, client_id=APP)]).keys == []
    with pytest.raises(ValueError, match="neither keys nor entra"):
        TenantConfig(tenant="t")


@pytest.mark.parametrize("fields", [{}, {"client_id": APP, "oid": APP}, {"client_id": "not-a-guid"}])
def test_a_principal_names_exactly_one_valid_identifier(fields: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        EntraPrincipal(tid=TID, **fields)


def test_one_principal_in_two_tenants_fails_at_start_naming_it() -> None:
    tenants = [{"tenant": name, "entra": [{"tid": TID, "client_id": APP.upper()}]} for name in ("a", "b")]
    with environment({**BASE, "TENANTS": json.dumps(tenants)}), pytest.raises(ConfigError) as err:
        load_settings()
    assert "TENANTS" in str(err.value) and APP in str(err.value)


def test_entra_defaults() -> None:
    with environment(BASE):
        settings = load_settings()
    assert settings.entra_authority == "https://login.microsoftonline.com"
    assert settings.entra_required_role == "AI.User" and settings.entra_audiences == []
    assert settings.secret_ttl_s == 300
