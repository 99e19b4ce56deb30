"""Malformed and malicious method configs are refused by ``validate_config`` with an error naming the key."""

from __future__ import annotations

import pytest

from mei.engine import resolve as resolver
from mei.engine.resolve import ComponentNotAllowedError, ConfigError, validate_config

from .bad_configs import CASES, good


def test_catalogue_is_large_and_distinct():
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 30
    print(f"\nconfigs rejected: {len(ids)} malformed configs in the catalogue")


def test_good_config_passes():
    validate_config(good())


@pytest.mark.parametrize("config, key, fragment, security", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_config_is_refused_naming_the_key(config, key, fragment, security):
    with pytest.raises(ConfigError) as caught:
        validate_config(config)
    error = caught.value
    assert error.key == key or (key and error.key.startswith(key)), (error.key, str(error))
    assert fragment in str(error)
    if key:
        assert str(error).startswith(error.key + ": ")
    if security:
        assert isinstance(error, ComponentNotAllowedError)


def test_refusal_leaves_the_package_state_alone():
    """A path to a method of a module-level dict used to run it (``dict.update``) during validation."""
    before = dict(resolver.OPTIONAL_KEYS)
    config = good()
    config["transform"] = {"path": "mei.engine.resolve.OPTIONAL_KEYS.update", "kwargs": {"evil": "x"}}
    with pytest.raises(ComponentNotAllowedError):
        validate_config(config)
    assert resolver.OPTIONAL_KEYS == before
    config["transform"] = {"path": "mei.engine.resolve.OPTIONAL_KEYS.clear"}
    with pytest.raises(ComponentNotAllowedError):
        validate_config(config)
    assert resolver.OPTIONAL_KEYS == before
