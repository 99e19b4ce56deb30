"""The errors of configs and components, shared by every layer."""

from __future__ import annotations

class ConfigError(ValueError):
    """A method config (or one of its components) is invalid.

    ``key`` names where in the config the problem is, e.g. ``"stopper.kwargs"``.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


class ComponentNotAllowedError(ConfigError):
    """A dotted path names something that is not an allowed component (for that slot)."""
