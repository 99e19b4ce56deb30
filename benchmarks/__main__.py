"""Run every benchmark script in this folder (``python -m benchmarks``)."""

import runpy
import sys
from pathlib import Path

here = Path(__file__).parent
names = sys.argv[1:] or sorted(p.stem for p in here.glob("*.py") if not p.stem.startswith("_"))
for name in names:
    print(f"== benchmarks/{name}.py", flush=True)
    runpy.run_path(str(here / f"{name}.py"), run_name="__main__")
