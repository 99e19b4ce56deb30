"""A real headless browser for the report tests: Debian's ``chromium-headless-shell`` (or any Chromium on the
machine). A test asks for it with :func:`browser_or_skip`, which installs the Debian package when it can (as
root, with apt-get) and otherwise skips, visibly, with the reason. ``MEI_TEST_BROWSER=off`` skips without
trying; ``MEI_TEST_BROWSER=/path/to/chromium`` names the browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

NAMES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "headless_shell")
PACKAGE = "chromium-headless-shell"
CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\] (.*)")


def find_browser() -> str | None:
    """The path of a Chromium on this machine, or ``None``."""
    named = os.environ.get("MEI_TEST_BROWSER", "")
    if named and named != "off":
        return named if Path(named).is_file() else None
    return next((path for path in map(shutil.which, NAMES) if path), None)


def _install() -> str:
    """Try to install Debian's headless Chromium; returns what went wrong ("" if nothing)."""
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return "apt-get is not here or this is not root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", PACKAGE]
    try:
        if subprocess.run(install, env=env, capture_output=True, timeout=600).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=300)
            result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
            if result.returncode != 0:
                return f"apt-get install {PACKAGE} failed: {result.stderr.strip().splitlines()[-1:]}"
    except subprocess.TimeoutExpired:
        return f"apt-get install {PACKAGE} timed out"
    return ""


def browser_or_skip() -> str:
    """A headless Chromium's path; installs Debian's package first if none is here, else skips the test."""
    if os.environ.get("MEI_TEST_BROWSER") == "off":
        pytest.skip("headless browser switched off (MEI_TEST_BROWSER=off)")
    path = find_browser()
    if path is None and not os.environ.get("MEI_TEST_BROWSER"):
        problem = _install()
        path = find_browser()
        if path is None:
            pytest.skip(f"no headless browser on this machine and none could be installed ({problem or 'unknown'}); "
                        f"apt-get install {PACKAGE}, or set MEI_TEST_BROWSER to a Chromium")
    if path is None:
        pytest.skip(f"MEI_TEST_BROWSER={os.environ['MEI_TEST_BROWSER']} is not a file")
    return path


def _run(browser: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    flags = ["--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--allow-file-access-from-files",
             "--enable-logging=stderr", "--v=0"]
    return subprocess.run([browser, *flags, *arguments], capture_output=True, text=True, timeout=120)


def screenshot(browser: str, url: str, png: Path, width: int = 1300, height: int = 2400) -> list[str]:
    """Load ``url`` and save a ``width`` x ``height`` screenshot at ``png``; returns the page's console lines."""
    result = _run(browser, f"--screenshot={png}", f"--window-size={width},{height}", url)
    if not png.is_file():
        raise AssertionError(f"no screenshot: {result.stderr[-2000:]}")
    return CONSOLE.findall(result.stderr)


def dom(browser: str, url: str) -> tuple[str, list[str]]:
    """The page's DOM after its scripts ran, and its console lines."""
    result = _run(browser, "--dump-dom", url)
    return result.stdout, CONSOLE.findall(result.stderr)


def assert_not_blank(png: Path, width: int, height: int) -> None:
    """The screenshot has the size asked for and shows something: many colours, not mostly one."""
    from PIL import Image

    with Image.open(png) as image:
        assert image.size == (width, height)
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 50, f"{len(colours)} colours: a blank page?"
        assert max(count for count, _ in colours) < 0.97 * width * height, "one colour fills the page"
