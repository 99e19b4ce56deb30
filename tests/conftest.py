"""Shared fixtures. Tests run with one torch thread so that timings and results do not depend on the box."""

import os

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def allow_tests_modules():
    """Allow components defined in the ``tests`` package (custom stoppers, transforms …) for one test."""
    from mei.engine.resolve import allow_modules, disallow_modules

    allow_modules("tests")
    yield
    disallow_modules("tests")
