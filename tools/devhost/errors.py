"""The one error the devhost raises for a bad app or bad settings: it stops the start, naming the cause."""

from __future__ import annotations


class StartupError(Exception):
    """The app, host.json or an app setting is wrong; the message names the function and setting."""


class FunctionLoadError(StartupError):
    """A function the Python worker would refuse to index (same wording as the worker's error)."""

    def __init__(self, function_name: str, msg: str) -> None:
        super().__init__(f"cannot load the {function_name} function: {msg}")
