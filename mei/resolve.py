"""Moved to :mod:`mei.engine.resolve` (the allowlist's user functions are also ``mei.allow_modules`` …); this path
re-exports it for one release."""

from .engine.resolve import *  # noqa: F403
from .engine.resolve import __all__  # noqa: F401
