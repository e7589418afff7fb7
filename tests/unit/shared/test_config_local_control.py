"""LOCAL_CONTROL (docs/breakers.md, "A local reset"): off by default, and refused in Azure."""

from __future__ import annotations

import pytest

from shared.core.errors import ConfigError
from shared.core.settings import load_settings
from tests.conftest import environment
from tests.unit.shared.test_config_windows import BASE


def test_local_control_is_off_by_default_and_on_when_asked() -> None:
    with environment(BASE):
        assert load_settings().local_control is False
    with environment({**BASE, "LOCAL_CONTROL": "true"}):
        assert load_settings().local_control is True


def test_local_control_where_azure_runs_the_app_fails_at_start_naming_it() -> None:
    with environment({**BASE, "LOCAL_CONTROL": "true", "WEBSITE_INSTANCE_ID": "a1b2c3"}), \
            pytest.raises(ConfigError) as err:
        load_settings()
    assert "LOCAL_CONTROL" in str(err.value) and "never on in Azure" in str(err.value)
    with environment({**BASE, "WEBSITE_INSTANCE_ID": "a1b2c3"}):
        assert load_settings().local_control is False, "off, it is no reason to refuse a start"
