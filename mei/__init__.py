"""Most exciting inputs (MEIs) for PyTorch models of neurons.

The engine (:mod:`mei.optimization`, :mod:`mei.methods` and the component modules) is pure PyTorch; its
internals are in :mod:`mei.engine`. Batched generation is :mod:`mei.batched`, objectives beyond one unit are in
:mod:`mei.targets`, analyses of finished MEIs in :mod:`mei.analysis`. The DataJoint pipeline is :mod:`mei.main`
and :mod:`mei.fabrik` on top of :mod:`mei.pipeline`; importing any of them opens no database connection. The
layers and their rules are in ``docs/architecture.md``.

The component allowlist (``docs/security.md``) is available here: :func:`allow_modules`,
:func:`disallow_modules`, :func:`allowed_prefixes`, :func:`validate_config` and their errors.
"""

from .engine.errors import ComponentNotAllowedError, ConfigError
from .engine.resolve import allow_modules, allowed_prefixes, disallow_modules, validate_config

__version__ = "0.2.0"

__all__ = ["ComponentNotAllowedError", "ConfigError", "allow_modules", "allowed_prefixes", "disallow_modules",
           "validate_config", "__version__"]
