"""The budget lease, its slot width and the rate window: validated settings, defaults unchanged."""

from __future__ import annotations

import json

import pytest

from shared.core.errors import ConfigError
from shared.core.settings import load_settings
from tests.conftest import environment

BASE = {"AI_ENDPOINTS": json.dumps([{"name": "e", "kind": "openai", "endpoint": "http://m", "model": "m"}]),
        "COSMOS_ENDPOINT": "http://c"}


def test_the_defaults_are_a_60_s_lease_in_20_s_slots_and_one_minute_rate_windows() -> None:
    with environment(BASE):
        settings = load_settings()
    assert (settings.budget_lease_s, settings.budget_slot_s, settings.rate_window_s) == (60.0, 20, 60)


def test_short_windows_for_a_test_stack_are_valid() -> None:
    short = {"REQUEST_DEADLINE_S": "10", "BUDGET_LEASE_MARGIN_S": "5", "BUDGET_SLOT_S": "4", "RATE_WINDOW_S": "5"}
    with environment({**BASE, **short}):
        settings = load_settings()
    assert (settings.budget_lease_s, settings.budget_slot_s, settings.rate_window_s) == (15.0, 4, 5)


def test_a_lease_longer_than_the_ring_of_slots_fails_at_start_naming_the_settings() -> None:
    # 14 x 4 s of ring cannot tell a live lease of 30 + 30 s from one that ended a ring ago.
    with environment({**BASE, "BUDGET_SLOT_S": "4"}), pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value) == ("invalid app settings: BUDGET_SLOT_S x 14 must be longer than the budget lease, "
                              "REQUEST_DEADLINE_S + BUDGET_LEASE_MARGIN_S (60 s): raise BUDGET_SLOT_S or lower "
                              "the other two")


@pytest.mark.parametrize(("name", "value"), [("RATE_WINDOW_S", "7"), ("RATE_WINDOW_S", "120"),
                                             ("BUDGET_SLOT_S", "0"), ("BUDGET_LEASE_MARGIN_S", "0")])
def test_a_bad_window_fails_at_start_naming_its_setting(name: str, value: str) -> None:
    with environment({**BASE, name: value}), pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value).startswith(f"invalid app settings: {name}: ")
    assert name in err.value.settings
