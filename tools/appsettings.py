"""The app settings a local start sees: local.settings.json read as Core Tools reads it, the
environment winning over it, validated by shared.core.settings before anything starts."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from tools.devhost.errors import StartupError
from tools.devhost.settings import read_values

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SETTINGS = ROOT / "local.settings.example.json"
LOCAL_SETTINGS = ROOT / "local.settings.json"


class SettingsProblem(Exception):
    """A setting the app would refuse; the message is one line naming it, never its value."""


def file_values(path: Path) -> dict[str, str]:
    """The Values of a local.settings.json file; a value that is not a string is a SettingsProblem."""
    try:
        return read_values(path)
    except StartupError as exc:
        raise SettingsProblem(str(exc)) from None


def effective(file: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """What the app sees: the file's values, with every variable already in `environ` winning (Core
    Tools and the Functions host never override an existing environment variable)."""
    return {**file, **environ}


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Put `values` into os.environ for the block (pydantic-settings reads only os.environ)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def validate(values: Mapping[str, str]) -> None:
    """Raise SettingsProblem with the app's own one-line message when it would refuse `values`."""
    from shared.core.errors import ConfigError
    from shared.core.settings import load_settings  # the app's validation, not a copy of it

    with environment(values):
        try:
            load_settings()
        except ConfigError as exc:
            raise SettingsProblem(str(exc)) from None
