"""Nothing outside the allowlist is ever imported: throwaway modules on ``sys.path`` record their import."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from mei.engine.resolve import (
    ComponentNotAllowedError,
    ConfigError,
    allow_modules,
    disallow_modules,
    resolve,
    validate_config,
)

from .bad_configs import good

RECORDER = "from pathlib import Path\nPath(__file__).with_suffix('.imported').touch()\n"


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A package ``<pkg>`` with an allowed ``safe`` module, recording siblings and a recording top-level module."""
    tag = uuid.uuid4().hex[:8]
    pkg, evil = f"labpkg{tag}", f"evilmod{tag}"
    root = tmp_path / pkg
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "safe.py").write_text(RECORDER + "import os\nfrom mei.cli import main\n\n"
                                  "class Ok:\n    def __call__(self, *args):\n        return 1\n")
    for name in ("evil", "safex"):
        (root / f"{name}.py").write_text(RECORDER + "class Thing:\n    pass\n")
    (root / "sub").mkdir()
    (root / "sub" / "__init__.py").write_text(RECORDER)
    (tmp_path / f"{evil}.py").write_text(RECORDER + "def x():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("MEI_ALLOWED_MODULES", raising=False)
    allow_modules(f"{pkg}.safe")
    yield pkg, evil, tmp_path
    disallow_modules(f"{pkg}.safe")
    for name in [m for m in sys.modules if m.startswith((pkg, evil))]:
        del sys.modules[name]


def imported(tmp_path: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path).with_suffix("")) for p in tmp_path.rglob("*.imported"))


REFUSED = [
    "{evil}.x", "{evil}.sub.x", "{pkg}.evil.Thing", "{pkg}.safex.Thing", "{pkg}.sub.Thing", "{pkg}.evil",
    "{pkg}x.safe.Ok", "{pkg}.Safe.Ok", "{evil}", "{pkg}.evil.__init__",
]


def test_refused_paths_are_never_imported(sandbox, monkeypatch):
    pkg, evil, tmp_path = sandbox
    for template in REFUSED:
        path = template.format(pkg=pkg, evil=evil)
        with pytest.raises(ConfigError):
            resolve(path)
        config = good()
        config["transform"] = {"path": path}
        with pytest.raises(ConfigError, match="transform.path"):
            validate_config(config)
    # a look-alike prefix in the environment variable allows nothing extra
    monkeypatch.setenv("MEI_ALLOWED_MODULES", f"{evil[:-1]},{pkg}.ev")
    for path in (f"{evil}.x", f"{pkg}.evil.Thing"):
        with pytest.raises(ComponentNotAllowedError):
            resolve(path)
    assert imported(tmp_path) == [], "a refused path was imported"
    assert not [m for m in sys.modules if m.startswith(evil) or m.startswith(f"{pkg}.evil")]
    # positive control: the allowed module is imported, and only it
    assert callable(resolve(f"{pkg}.safe.Ok")())
    assert imported(tmp_path) == [f"{pkg}/safe"]
    with pytest.raises(ComponentNotAllowedError, match="from module 'os'"):
        resolve(f"{pkg}.safe.os.system")
    with pytest.raises(ComponentNotAllowedError, match="from module 'mei.cli', which is not allowed \\(and it is not a "
                                                      "declared component of the package\\)"):
        resolve(f"{pkg}.safe.main")  # a re-export of the package's machinery


def test_environment_variable_allows_whole_module_names(sandbox, monkeypatch):
    pkg, evil, tmp_path = sandbox
    monkeypatch.setenv("MEI_ALLOWED_MODULES", f" {evil} , {pkg}.sub")
    assert resolve(f"{evil}.x").__name__ == "x"
    assert imported(tmp_path) == [evil]
    with pytest.raises(ComponentNotAllowedError):
        resolve(f"{pkg}.evil.Thing")
    assert imported(tmp_path) == [evil]
    monkeypatch.setenv("MEI_ALLOWED_MODULES", "os;system")
    with pytest.raises(ValueError, match="invalid module prefix"):
        resolve(f"{evil}.x")


def test_malformed_prefixes_are_refused():
    for prefix in ("", ".mei", "mei.", "os system", "mei.*", "1abc", "lab-models"):
        with pytest.raises(ValueError, match="invalid module prefix"):
            allow_modules(prefix)
