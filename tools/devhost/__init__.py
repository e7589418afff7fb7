"""A local Functions host (`python -m tools.devhost`) that serves function_app.app like `func start`."""

from tools.devhost.errors import StartupError

__all__ = ["StartupError"]
