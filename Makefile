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

# ruff (lint, whole repo) and mypy (types, mei/) first; either failing fails the target. Then pytest:
# it exits 5 when it collects no test, which is not a failure (PYTEST_ARGS passes options, e.g. -k)
test: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "no tests were collected"; exit 0; fi; exit $$status

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info mei_output
