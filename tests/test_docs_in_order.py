"""Every page's code runs as a reader runs it: each page's Python blocks in order, as one new script in a fresh
empty folder, the pages one after the other in the order the README lists them, all on the one embedded
database a reader's machine would have (so a page that inserts what an earlier page inserted fails here).

A block a reader cannot run as it stands (it needs the lab's own servers, or continues a program of another
page) is marked ``<!-- skip -->`` on the line above it; a block marked ``<!-- file: name -->`` is a file the
page asks the reader to write (it is written into the folder, not run). The per-page tests
(``tests/*/test_docs.py``, ``tests/test_readme.py``) check what each page's code prints and makes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def reading_order() -> tuple[str, ...]:
    """README.md, then the docs pages in the order the README's list of documentation names them, then pages
    the README names elsewhere (in the order it names them), then any other page."""
    readme = (ROOT / "README.md").read_text()
    documentation = readme.split("## Documentation", 1)[-1].split("\n## ", 1)[0]
    named = re.findall(r"(docs/\w+\.md)", documentation) + re.findall(r"(docs/\w+\.md)", readme)
    pages = sorted(f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md"))
    return ("README.md", *dict.fromkeys([page for page in named if page in pages] + pages))


READING_ORDER = reading_order()
"""The pages in the order a reader of the README follows them."""
BLOCK = re.compile(r"(<!-- (?P<marker>skip|file: [\w.]+)[^>]*-->\n)?```(?P<lang>\w*)(?P<info>[^\n]*)\n(?P<code>.*?)```",
                   re.S)
OWN_RUNNERS = {"docs/meitorch.md": "tests/meitorch/test_docs.py",
               "docs/feature_visualization.md": "tests/optim/test_docs.py"}
"""Pages whose own test runs all their code in a fresh folder already (they train and draw for minutes, touch
no database, so their place in the order does not matter); not run a second time here."""


@pytest.fixture
def private_tmp():
    """A temporary folder outside pytest's shared base (the embedded server's socket path must stay short)."""
    path = Path(tempfile.mkdtemp(prefix="mei-docs-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def page_program(page: str) -> tuple[dict[str, str], str, int]:
    """The files a page has the reader write, its runnable Python blocks joined in order, and how many it skips."""
    files, blocks, skipped = {}, [], 0
    for match in BLOCK.finditer((ROOT / page).read_text()):
        marker = match.group("marker") or ""
        if match.group("lang") != "python":
            continue
        if marker == "skip" or "skip" in match.group("info"):
            skipped += 1
        elif marker.startswith("file: "):
            files[marker[len("file: "):]] = match.group("code")
        else:
            blocks.append(match.group("code"))
    return files, "\n".join(blocks), skipped


def test_the_reading_order_lists_every_page_and_the_readme_names_each():
    pages = {"README.md", *(f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md"))}
    assert set(READING_ORDER) == pages and len(READING_ORDER) == len(pages)
    assert READING_ORDER[:4] == ("README.md", "docs/engine.md", "docs/pipeline.md", "docs/demo.md")
    readme = (ROOT / "README.md").read_text()
    assert [page for page in READING_ORDER[1:] if page not in readme] == []  # a reader finds every page


def run_page(page: str, folder: Path, data: Path) -> subprocess.CompletedProcess[str]:
    """Run ``page``'s program as a new script in ``folder`` (fresh), on the embedded database in ``data``."""
    files, script, _ = page_program(page)
    folder.mkdir(parents=True)
    for name, code in files.items():
        (folder / name).write_text(code)
    (folder / "page.py").write_text(script)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJ_", "MEI_"))}
    env.update(MEI_DATA_DIR=str(data), PYTHONPATH=f"{folder}{os.pathsep}{ROOT}", MPLBACKEND="Agg")
    try:
        return subprocess.run([sys.executable, "page.py"], cwd=folder, env=env, capture_output=True, text=True,
                              timeout=600)
    except subprocess.TimeoutExpired as error:
        return subprocess.CompletedProcess(error.cmd, -9, str(error.stdout), f"timed out after {error.timeout} s")


@pytest.mark.slow  # every page's code once, the pipeline page on a fresh embedded database
def test_every_page_runs_in_a_fresh_folder_in_reading_order(private_tmp):
    data = private_tmp / "data"
    failures, ran = [], []
    try:
        for i, page in enumerate(READING_ORDER):
            if page in OWN_RUNNERS or not page_program(page)[1].strip():
                continue
            result = run_page(page, private_tmp / f"{i:02d}_{Path(page).stem}", data)
            ran.append(page)
            if result.returncode != 0:
                failures.append(f"{page}:\n{result.stderr[-2500:]}")
    finally:
        subprocess.run([sys.executable, "-c", "import mei.pipeline.database as d; d.stop_embedded(delete=True)"],
                       env={**os.environ, "MEI_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)}, capture_output=True,
                       timeout=120)
    assert not failures, "\n\n".join(failures)
    assert {"README.md", "docs/engine.md", "docs/pipeline.md", "docs/demo.md", "docs/video.md", "docs/batched.md",
            "docs/architecture.md", "docs/security.md"} <= set(ran)
    assert ran == [page for page in READING_ORDER if page in ran]


def test_pages_with_their_own_runner_run_in_a_fresh_folder():
    """Their runners change into a new temporary folder, and the pages save their pictures there (a reader's
    folder has no docs/images)."""
    for page, runner in OWN_RUNNERS.items():
        code = (ROOT / runner).read_text()
        assert "os.chdir(directory)" in code and "mkdir" not in code, runner
        assert "docs/images/" not in page_program(page)[1], page
