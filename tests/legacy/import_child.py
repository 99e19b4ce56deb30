"""Run an import in a process of its own (``python -m tests.legacy.import_child request.json``), slowed down
after each trained model so that the test can SIGKILL it mid-import. Prints ``copied <table>`` per row."""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

from mei.engine.resolve import allow_modules
from mei.pipeline.legacy_bridge import LegacyFabrik
from mei.pipeline.legacy_bridge.importer import import_fabrik
from tests.legacy.test_import import open_target


def main() -> None:
    request = json.loads(Path(sys.argv[1]).read_text())

    allow_modules("tests")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance, trained = open_target(request)

    def on_row(table: str, key: dict) -> None:
        print(f"copied {table}", flush=True)
        if table == "TrainedModel":
            time.sleep(float(request["pause"]))

    with LegacyFabrik(request["legacy"], host=request["host"], port=request["port"],
                      stores=request["stores"]) as legacy:
        import_fabrik(legacy, trained, progress=False, on_row=on_row)
    print("done", flush=True)


if __name__ == "__main__":
    main()
