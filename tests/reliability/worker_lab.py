"""The reliability lab as a module ``mei worker --table tests.reliability.worker_lab.MEI`` can import.

Importing it connects through :func:`mei.pipeline.database.connect` (DataJoint's ``DJ_*`` settings or the embedded
default) and binds the lab to the schemas named in ``$MEI_TEST_SCHEMAS`` (``"<mei schema>,<lab schema>"``).
With ``$MEI_TEST_GO`` set, it then writes ``<go>.ready-<pid>`` and waits for the go file, so that several
workers start together.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mei.pipeline import database as db

from . import lab

_tables = lab.bind(db.connect(), *os.environ["MEI_TEST_SCHEMAS"].split(","))
MEI = _tables.MEI

_go = os.environ.get(lab.GO_ENV)
if _go:  # a start barrier: announce readiness, wait for the test's go
    Path(f"{_go}.ready-{os.getpid()}").touch()
    _deadline = time.monotonic() + lab.STALL_LIMIT_S
    while not Path(_go).exists() and time.monotonic() < _deadline:
        time.sleep(0.02)
