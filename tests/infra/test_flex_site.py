"""The Function App's site properties as Flex Consumption accepts them, and its root page off."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Site properties ARM refuses on a Flex Consumption app (the platform's validation error names them).
REJECTED_ON_FLEX = {"ftpsState", "linuxFxVersion", "windowsFxVersion"}


@pytest.fixture(scope="module")
def site(infra_dir: Path, parse_bicep: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    tree = parse_bicep(infra_dir / "app" / "api.bicep")
    found: dict[str, Any] = next(r["config"] for r in tree["resources"].values()
                                 if r["type"] == "Microsoft.Web/sites" and not r["existing"])
    return found


def test_site_config_has_no_property_flex_rejects(site: dict[str, Any]) -> None:
    site_config = site["properties"]["siteConfig"]
    assert not REJECTED_ON_FLEX & site_config.keys(), sorted(REJECTED_ON_FLEX & site_config.keys())


def test_tls_stays_at_1_2_for_the_site_and_scm(site: dict[str, Any]) -> None:
    site_config = site["properties"]["siteConfig"]
    assert site_config["minTlsVersion"] == site_config["scmMinTlsVersion"] == "1.2"


def test_ftp_stays_off_through_the_publishing_credentials_policy(infra_dir: Path,
                                                                 parse_bicep: Callable[[Path], dict[str, Any]]) -> None:
    tree = parse_bicep(infra_dir / "app" / "api.bicep")
    policies = {r["config"]["name"]: r["config"]["properties"]["allow"] for r in tree["resources"].values()
                if r["type"] == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"}
    assert policies == {"ftp": False, "scm": False}


def test_the_host_home_page_is_off(infra_dir: Path, parse_bicep: Callable[[Path], dict[str, Any]]) -> None:
    settings = parse_bicep(infra_dir / "app" / "api.bicep")["variables"]["appSettings"]["value"]
    assert settings.get("AzureWebJobsDisableHomepage") == "true"
