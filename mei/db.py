"""Moved to :mod:`mei.pipeline.database`; this path re-exports it for one release."""

from .pipeline.database import *  # noqa: F403
from .pipeline.database import __all__  # noqa: F401
