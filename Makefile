# Two commands a newcomer needs: `make demo` and `make test`. Each makes its own .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The pinned CPU build of torch; an unpinned torch would pull a multi-GB CUDA build. The pin is repeated in
	# the package install: without it pip's resolver may replace the CPU build with a newer CUDA one.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[all,dev]" torch==2.13.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mei demo

# ruff (lint, whole repo) and mypy (types, mei/) first; either failing fails the target. Then pytest, on
# PYTEST_WORKERS processes (pytest-xdist; default one per CPU the system reports, at most 4; 0: all in one):
# each worker has its own embedded database, and each file's tests stay on one worker (tests/conftest.py).
# pytest exits 5 when it collects no test, which is not a failure (PYTEST_ARGS passes options, e.g. -k)
PYTEST_WORKERS ?= logical
test: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadgroup $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "no tests were collected"; exit 0; fi; exit $$status

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info mei_output
